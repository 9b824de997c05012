-- 0008: an orphan examined by a recovery that was itself killed half-way gets its action
-- from what the next recovery found: a tree gone (or its pid taken by another process) by
-- then ended while nobody watched, so the first row says gone instead of staying NULL.
DROP VIEW orphans;
CREATE VIEW orphans AS
SELECT
  f.execution_id AS execution_id,
  f.node_id AS node_id,
  f.attempt AS attempt,
  json_extract(f.payload, '$.pid') AS pid,
  f.at_ms AS found_at,
  CASE
    WHEN json_extract(f.payload, '$.verdict') IN ('gone', 'zombie') THEN 'gone'
    WHEN json_extract(f.payload, '$.verdict') IN ('pid_reused', 'host_rebooted')
      THEN json_extract(f.payload, '$.verdict')
    WHEN o.kind = 'orphan.found' THEN 'gone'
    ELSE substr(o.kind, 8)
  END AS action,
  CASE
    WHEN json_extract(f.payload, '$.verdict')
           IN ('gone', 'zombie', 'pid_reused', 'host_rebooted') THEN f.at_ms
    ELSE o.at_ms
  END AS finished_at,
  coalesce(json_extract(f.payload, '$.detection'), 'pid') AS detection,
  json_extract(f.payload, '$.startTime') AS recorded_start_time,
  json_extract(f.payload, '$.observedStartTime') AS observed_start_time,
  json_extract(f.payload, '$.graceMs') AS grace_ms
FROM journal f
LEFT JOIN journal o ON o.seq = (
  SELECT a.seq FROM journal a
   WHERE a.execution_id = f.execution_id AND a.node_id IS f.node_id
     AND a.attempt IS f.attempt AND a.seq > f.seq
     AND (a.kind IN ('orphan.terminated', 'orphan.killed', 'orphan.unkillable')
          OR (a.kind = 'orphan.found'
              AND json_extract(a.payload, '$.verdict') IN ('gone', 'zombie', 'pid_reused')))
   ORDER BY a.seq LIMIT 1)
WHERE f.kind = 'orphan.found';
