-- 0002: audit views derived from the journal, and the partial indexes that keep them from
-- scanning the whole history.
CREATE INDEX journal_stop_requested ON journal (execution_id)
  WHERE kind = 'execution.stop_requested';

CREATE INDEX journal_orphan_found ON journal (execution_id)
  WHERE kind = 'orphan.found';

CREATE VIEW executions AS
SELECT
  c.execution_id AS id,
  c.execution_id AS execution_id,
  json_extract(c.payload, '$.name') AS name,
  (SELECT CASE s.kind
            WHEN 'execution.created' THEN 'idle'
            WHEN 'execution.started' THEN 'running'
            WHEN 'execution.paused' THEN 'paused'
            WHEN 'execution.resumed' THEN 'running'
            WHEN 'execution.stop_requested' THEN 'stopping'
            WHEN 'execution.stopped' THEN 'stopped'
            WHEN 'execution.completed' THEN 'completed'
            WHEN 'execution.failed' THEN 'failed'
          END
     FROM journal s
    WHERE s.execution_id = c.execution_id
      AND s.kind IN ('execution.created', 'execution.started', 'execution.paused',
                     'execution.resumed', 'execution.stop_requested', 'execution.stopped',
                     'execution.completed', 'execution.failed')
    ORDER BY s.seq DESC
    LIMIT 1) AS status,
  c.at_ms AS created_at,
  (SELECT min(s.at_ms) FROM journal s
    WHERE s.execution_id = c.execution_id AND s.kind = 'execution.started') AS started_at,
  (SELECT t.at_ms FROM journal t
    WHERE t.execution_id = c.execution_id
      AND t.kind IN ('execution.stopped', 'execution.completed', 'execution.failed')) AS ended_at,
  (SELECT json_extract(t.payload, '$.costUsd') FROM journal t
    WHERE t.execution_id = c.execution_id
      AND t.kind IN ('execution.stopped', 'execution.completed', 'execution.failed')) AS cost_usd
FROM journal c
WHERE c.kind = 'execution.created';

CREATE VIEW stops AS
SELECT
  r.execution_id AS execution_id,
  r.seq AS stop_seq,
  r.at_ms AS requested_at,
  json_extract(r.payload, '$.requestedBy') AS requested_by,
  json_extract(r.payload, '$.reason') AS reason,
  json_extract(r.payload, '$.note') AS note,
  json_extract(r.payload, '$.graceMs') AS grace_ms,
  d.at_ms AS completed_at,
  json_extract(d.payload, '$.status') AS status,
  json_extract(d.payload, '$.finalCostUsd') AS final_cost_usd,
  json_extract(d.payload, '$.nodesCompleted') AS nodes_completed,
  json_extract(d.payload, '$.nodesFailed') AS nodes_failed,
  json_extract(d.payload, '$.nodesTotal') AS nodes_total,
  json_extract(d.payload, '$.durationMs') AS duration_ms,
  (SELECT count(DISTINCT k.node_id) FROM journal k
    WHERE k.execution_id = r.execution_id AND k.seq > r.seq AND k.kind = 'node.signalled'
      AND json_extract(k.payload, '$.signal') = 'SIGKILL') AS nodes_killed,
  (SELECT count(DISTINCT u.node_id) FROM journal u
    WHERE u.execution_id = r.execution_id AND u.seq > r.seq
      AND u.kind = 'node.unkillable') AS nodes_unkillable,
  json_extract(d.payload, '$.journaled') AS journaled
FROM journal r
LEFT JOIN journal d
  ON d.execution_id = r.execution_id AND d.kind = 'execution.stop_completed' AND d.seq > r.seq
WHERE r.kind = 'execution.stop_requested';

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
         THEN f.at_ms END) AS finished_at
FROM journal f
WHERE f.kind = 'orphan.found';
