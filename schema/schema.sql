-- Warden's current database schema, documented column by column.
--
-- This file is what applying every file of migrations/ to an empty database yields
-- (tests/journal/migrations_test.cc checks it, comments and layout aside). It is
-- documentation and a reference for tools; Warden itself only ever runs migrations/.
-- Event kinds and their payload fields: schema/README.md.
--
-- Durability: WAL mode with synchronous=NORMAL. Every committed transaction survives a
-- crash of the daemon; changes acknowledged to a client are committed with
-- synchronous=FULL, which fsyncs the WAL and so also makes every earlier commit survive
-- power loss. Internal transitions (a node started, a node exited) therefore cost no fsync
-- of their own. PRAGMA user_version holds the schema version (the last migration applied).

-- journal: one row per record or transition, never updated, never deleted.
CREATE TABLE journal (
  seq INTEGER PRIMARY KEY,        -- global order of events (rowid; only ever grows)
  at_ms INTEGER NOT NULL          -- when it happened, ms since the Unix epoch
    CHECK (at_ms >= 0),
  execution_id TEXT,              -- the execution it belongs to; NULL for daemon events
  node_id TEXT,                   -- the node, for node and orphan events; else NULL
  attempt INTEGER                 -- the node's attempt, counting from 1; else NULL
    CHECK (attempt IS NULL OR attempt >= 1),
  kind TEXT NOT NULL              -- the event's name, e.g. 'execution.stop_requested'
    CHECK (length(kind) > 0),
  payload TEXT NOT NULL DEFAULT '{}'  -- a JSON object; fields per kind in schema/README.md
    CHECK (json_valid(payload))
) STRICT;

-- An execution's events in order (seq is the rowid, so the index is ordered by it too).
CREATE INDEX journal_by_execution ON journal (execution_id);

-- Partial indexes: the "executions not terminal" query at start-up and the audit views
-- read these instead of the whole history.
CREATE INDEX journal_created ON journal (execution_id)
  WHERE kind = 'execution.created';
CREATE INDEX journal_terminal ON journal (execution_id)
  WHERE kind IN ('execution.stopped', 'execution.completed', 'execution.failed');
CREATE INDEX journal_stop_requested ON journal (execution_id)
  WHERE kind = 'execution.stop_requested';
CREATE INDEX journal_orphan_found ON journal (execution_id)
  WHERE kind = 'orphan.found';
-- Start-up reads executions created from daemon.started's scanFrom on, in seq order, and
-- finds the last daemon.started without reading the history.
CREATE INDEX journal_created_seq ON journal (seq)
  WHERE kind = 'execution.created';
CREATE INDEX journal_daemon_started ON journal (seq)
  WHERE kind = 'daemon.started';
-- A create that repeats a requestId finds the execution it made, also after a restart.
CREATE INDEX journal_request_id ON journal (json_extract(payload, '$.requestId'))
  WHERE kind = 'execution.created';

-- Append-only: UPDATE and DELETE abort, whoever runs them, and so does an insert that names
-- an existing seq (INSERT OR REPLACE and REPLACE delete the old row without firing DELETE
-- triggers).
CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
BEGIN
  SELECT RAISE(ABORT, 'journal is append-only');
END;
CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
BEGIN
  SELECT RAISE(ABORT, 'journal is append-only');
END;
CREATE TRIGGER journal_no_replace BEFORE INSERT ON journal
WHEN NEW.seq IN (SELECT seq FROM journal)
BEGIN
  SELECT RAISE(ABORT, 'journal is append-only');
END;

-- executions: one row per execution (every execution.created event).
--   id, execution_id  the execution's id (the same value twice: id as api.md names it,
--                     execution_id for joins with stops and orphans)
--   name              the spec's name (NULL when the spec has none)
--   status            idle | running | paused | stopping | stopped | completed | failed:
--                     from the latest execution state event
--   created_at        when it was created (ms since the epoch)
--   started_at        when it first started; NULL if never started
--   ended_at          when it reached stopped, completed or failed; NULL before
--   cost_usd          its final cost in USD, once ended; NULL before
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

-- stop_nodes: one row per (stop, node attempt that was running or pending when the stop
-- began): what the stop did to it. One stop per execution (joined requests share it).
--   execution_id, stop_seq   the execution and the seq of the request that began the stop
--   node_id, attempt  the node attempt
--   pid               its leader's pid (NULL when it never started)
--   grace_ms          the grace in force when it was sent SIGTERM (a joining request's
--                     shorter grace can bring SIGKILL forward); NULL for a pending node
--   sigterm_at        when SIGTERM was sent (NULL: pending, never started)
--   sigkill_at        when SIGKILL was sent; NULL when not needed
--   ended_at          when its tree was empty; NULL while the stop runs
--   exit_code, signal how its leader ended (both NULL when crash recovery ended it: the
--                     restarted daemon is not its parent)
--   outcome           graceful (ended within the grace) | killed (needed SIGKILL) |
--                     unkillable (survived SIGKILL) | not_started (pending, marked stopped) |
--                     lost (crash recovery found nothing of it alive); NULL while running
--   cost_usd          what the attempt cost (0 for not_started)
--   term_to_end_ms    from SIGTERM to the tree's end
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

-- stops: one row per stop request (execution.stop_requested) and the outcome of the stop
-- it began or joined.
--   execution_id      the execution stopped
--   stop_seq          the journal seq of the stop request
--   requested_at      when the stop was requested (ms since the epoch)
--   requested_by      'uid:UID pid:PID' (Unix socket), 'token:NAME' (TCP) or 'warden'
--                     (stops the daemon decided itself: timeout, error, shutdown, recovery)
--   reason            user_abort | timeout | error | server_shutdown | crash_recovery
--   note              the free-text note given with the request, or NULL
--   grace_ms          the grace in force: the one this request named, else the one every
--                     node of the stop had (stop_nodes); NULL when they differed
--   grace_ms_min, grace_ms_max   the smallest and largest grace in force among its nodes
--   completed_at      when cleanup finished (every tree ended); NULL while stopping
--   status            stopped | failed (a tree was unkillable, or reason error)
--   final_cost_usd    the execution's cost at the end of the stop, partial nodes included
--   nodes_completed   nodes that succeeded
--   nodes_failed      nodes that failed (timed out and unkillable included)
--   nodes_total       nodes in the execution
--   duration_ms       from the execution's start to completed_at
--   nodes_killed      nodes that needed SIGKILL during the stop (from its first request)
--   nodes_unkillable  nodes with a process that survived SIGKILL during the stop
--   journaled         1 when every step of the stop was journaled as it happened; 0 when
--                     the journal failed during it (then this row exists only if the
--                     journal took the record later); NULL while the stop runs
--   joined            1 when the request came while the execution was already stopping:
--                     it joined that stop and shares its outcome; the first request's
--                     reason stands, and a shorter grace brought SIGKILL forward. 0 for
--                     the request that began the stop
--   requested_by_comm the requesting process's name (/proc/PID/comm of the Unix socket
--                     peer, read by the daemon, never taken from the request); NULL for
--                     TCP (requested_by names the token) and for the daemon's own stops
--   request_id        the requestId the execution was created with, or NULL
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

-- orphans: one row per recorded node process that crash recovery examined (orphan.found).
--   execution_id, node_id, attempt   which node attempt the process belonged to
--   pid               the recorded pid (0 when the daemon died between the intent and the
--                     identity, and recovery found the tree by its cgroup or cookie)
--   found_at          when recovery examined it
--   action            terminated (ended inside the grace after SIGTERM) | killed (needed
--                     SIGKILL) | unkillable (survived SIGKILL) | gone (ended, or a zombie,
--                     while the daemon was down) | pid_reused (another process has the pid
--                     now: never signalled) | host_rebooted (different boot: never
--                     signalled); NULL while recovery is still acting on it. A row of a
--                     recovery killed half-way takes the next recovery's outcome, or gone
--                     when the next one found the tree gone (or its pid reused)
--   finished_at       when the action finished (found_at for the never-signalled ones)
--   detection         how the tree was found: pid (the recorded identity), cgroup (the
--                     recorded cgroup's members) or cookie (WARDEN_* in /proc/PID/environ)
--   recorded_start_time   the start time journaled at launch (/proc/PID/stat field 22,
--                     clock ticks since boot); NULL when no identity was recorded
--   observed_start_time   what /proc showed for that pid at recovery; NULL when no process
--                     had it
--   grace_ms          the grace recovery gave the tree between SIGTERM and SIGKILL
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
