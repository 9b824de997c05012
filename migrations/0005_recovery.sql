-- 0005: crash recovery. The orphans view says how each tree was found and what was
-- recorded against what /proc showed; an index finds an execution by its requestId, so a
-- create that repeats one is answered from the journal after a restart.
CREATE INDEX journal_request_id ON journal (json_extract(payload, '$.requestId'))
  WHERE kind = 'execution.created';

DROP VIEW orphans;
CREATE VIEW orphans AS
SELECT
  f.execution_id AS execution_id,
  f.node_id AS node_id,
  f.attempt AS attempt,
  json_extract(f.payload, '$.pid') AS pid,
  f.at_ms AS found_at,
  coalesce(
    (SELECT substr(a.kind, 8) FROM journal a
      WHERE a.execution_id = f.execution_id AND a.node_id IS f.node_id
        AND a.attempt IS f.attempt AND a.seq > f.seq
        AND a.kind IN ('orphan.terminated', 'orphan.killed', 'orphan.unkillable')
      ORDER BY a.seq LIMIT 1),
    CASE json_extract(f.payload, '$.verdict')
      WHEN 'gone' THEN 'gone'
      WHEN 'zombie' THEN 'gone'
      WHEN 'pid_reused' THEN 'pid_reused'
      WHEN 'host_rebooted' THEN 'host_rebooted'
    END) AS action,
  coalesce(
    (SELECT a.at_ms FROM journal a
      WHERE a.execution_id = f.execution_id AND a.node_id IS f.node_id
        AND a.attempt IS f.attempt AND a.seq > f.seq
        AND a.kind IN ('orphan.terminated', 'orphan.killed', 'orphan.unkillable')
      ORDER BY a.seq LIMIT 1),
    CASE WHEN json_extract(f.payload, '$.verdict')
                IN ('gone', 'zombie', 'pid_reused', 'host_rebooted')
         THEN f.at_ms END) AS finished_at,
  coalesce(json_extract(f.payload, '$.detection'), 'pid') AS detection,
  json_extract(f.payload, '$.startTime') AS recorded_start_time,
  json_extract(f.payload, '$.observedStartTime') AS observed_start_time,
  json_extract(f.payload, '$.graceMs') AS grace_ms
FROM journal f
WHERE f.kind = 'orphan.found';
