-- 0006: start-up reads only the executions created since the oldest one that had not ended
-- when the daemon last started (daemon.started's scanFrom), in seq order, instead of every
-- execution in the history.
CREATE INDEX journal_created_seq ON journal (seq)
  WHERE kind = 'execution.created';
CREATE INDEX journal_daemon_started ON journal (seq)
  WHERE kind = 'daemon.started';
