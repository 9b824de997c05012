-- 0004: a stop request that joins a stop already in progress is journaled as well
-- (execution.stop_requested with "joined": true), so stops has a row for it. Every row of
-- one stop reports the same outcome: kills and unkillable nodes count from the stop's
-- first request.
DROP VIEW stops;
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
    WHERE k.execution_id = r.execution_id AND k.kind = 'node.signalled'
      AND k.seq > (SELECT min(f.seq) FROM journal f
                    WHERE f.execution_id = r.execution_id
                      AND f.kind = 'execution.stop_requested')
      AND json_extract(k.payload, '$.signal') = 'SIGKILL') AS nodes_killed,
  (SELECT count(DISTINCT u.node_id) FROM journal u
    WHERE u.execution_id = r.execution_id AND u.kind = 'node.unkillable'
      AND u.seq > (SELECT min(f.seq) FROM journal f
                    WHERE f.execution_id = r.execution_id
                      AND f.kind = 'execution.stop_requested')) AS nodes_unkillable,
  json_extract(d.payload, '$.journaled') AS journaled,
  coalesce(json_extract(r.payload, '$.joined'), 0) AS joined
FROM journal r
LEFT JOIN journal d
  ON d.execution_id = r.execution_id AND d.kind = 'execution.stop_completed' AND d.seq > r.seq
WHERE r.kind = 'execution.stop_requested';
