-- 0007: the stop audit node by node. stop_nodes says, per node attempt a stop met, when it
-- got SIGTERM and SIGKILL, when it ended, how and under which grace (node.signalled now
-- carries graceMs); stops.grace_ms is the grace in force, with its range beside it, and
-- who asked in full: the requesting process's name and the execution's requestId.
CREATE VIEW stop_nodes AS
SELECT
  r.execution_id AS execution_id,
  r.seq AS stop_seq,
  n.node_id AS node_id,
  n.attempt AS attempt,
  (SELECT json_extract(s.payload, '$.pid') FROM journal s
    WHERE s.execution_id = n.execution_id AND s.node_id = n.node_id
      AND s.attempt = n.attempt AND s.kind = 'node.started'
    ORDER BY s.seq LIMIT 1) AS pid,
  json_extract(n.payload, '$.graceMs') AS grace_ms,
  CASE WHEN n.kind = 'node.signalled' THEN n.at_ms END AS sigterm_at,
  k.at_ms AS sigkill_at,
  coalesce(e.at_ms, CASE WHEN n.kind = 'node.lost' THEN n.at_ms END) AS ended_at,
  json_extract(e.payload, '$.exitCode') AS exit_code,
  json_extract(e.payload, '$.signal') AS signal,
  CASE
    WHEN n.kind = 'node.stopped' THEN 'not_started'
    WHEN n.kind = 'node.lost' OR e.kind = 'node.lost' THEN 'lost'
    WHEN EXISTS (SELECT 1 FROM journal u
                  WHERE u.execution_id = n.execution_id AND u.node_id = n.node_id
                    AND u.attempt = n.attempt AND u.kind = 'node.unkillable'
                    AND u.seq > n.seq) THEN 'unkillable'
    WHEN k.seq IS NOT NULL THEN 'killed'
    WHEN e.seq IS NOT NULL THEN 'graceful'
  END AS outcome,
  CASE WHEN n.kind = 'node.stopped' THEN 0 ELSE json_extract(e.payload, '$.costUsd') END
    AS cost_usd,
  CASE WHEN n.kind = 'node.signalled' THEN e.at_ms - n.at_ms END AS term_to_end_ms
FROM journal r
JOIN journal n
  ON n.execution_id = r.execution_id AND n.seq > r.seq
 AND (n.kind = 'node.stopped'
      OR (n.kind IN ('node.signalled', 'node.lost')
          AND (n.kind = 'node.lost' OR (json_extract(n.payload, '$.signal') = 'SIGTERM'
                                       AND json_extract(n.payload, '$.why') <> 'timeout'))
          -- one row per attempt: its first SIGTERM of this stop; a node.lost only when no
          -- SIGTERM came before it (then it is the end of that row instead)
          AND NOT EXISTS (SELECT 1 FROM journal p
                           WHERE p.execution_id = n.execution_id AND p.node_id = n.node_id
                             AND p.attempt = n.attempt AND p.kind = 'node.signalled'
                             AND json_extract(p.payload, '$.signal') = 'SIGTERM'
                             AND p.seq > r.seq AND p.seq < n.seq)))
LEFT JOIN journal k
  ON k.seq = (SELECT min(x.seq) FROM journal x
               WHERE x.execution_id = n.execution_id AND x.node_id = n.node_id
                 AND x.attempt = n.attempt AND x.kind = 'node.signalled'
                 AND json_extract(x.payload, '$.signal') = 'SIGKILL' AND x.seq > n.seq)
LEFT JOIN journal e
  ON e.seq = (SELECT min(x.seq) FROM journal x
               WHERE x.execution_id = n.execution_id AND x.node_id = n.node_id
                 AND x.attempt = n.attempt AND x.kind IN ('node.exited', 'node.lost')
                 AND x.seq > n.seq)
WHERE r.kind = 'execution.stop_requested'
  AND coalesce(json_extract(r.payload, '$.joined'), 0) = 0;

DROP VIEW stops;
CREATE VIEW stops AS
SELECT
  r.execution_id AS execution_id,
  r.seq AS stop_seq,
  r.at_ms AS requested_at,
  json_extract(r.payload, '$.requestedBy') AS requested_by,
  json_extract(r.payload, '$.reason') AS reason,
  json_extract(r.payload, '$.note') AS note,
  coalesce(json_extract(r.payload, '$.graceMs'),
    (SELECT CASE WHEN min(g.grace_ms) = max(g.grace_ms) THEN min(g.grace_ms) END
       FROM stop_nodes g WHERE g.execution_id = r.execution_id)) AS grace_ms,
  (SELECT min(g.grace_ms) FROM stop_nodes g WHERE g.execution_id = r.execution_id)
    AS grace_ms_min,
  (SELECT max(g.grace_ms) FROM stop_nodes g WHERE g.execution_id = r.execution_id)
    AS grace_ms_max,
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
  coalesce(json_extract(r.payload, '$.joined'), 0) AS joined,
  json_extract(r.payload, '$.requestedByComm') AS requested_by_comm,
  (SELECT json_extract(c.payload, '$.requestId') FROM journal c
    WHERE c.execution_id = r.execution_id AND c.kind = 'execution.created') AS request_id
FROM journal r
LEFT JOIN journal d
  ON d.execution_id = r.execution_id AND d.kind = 'execution.stop_completed' AND d.seq > r.seq
WHERE r.kind = 'execution.stop_requested';
