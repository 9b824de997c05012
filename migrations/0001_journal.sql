-- 0001: the append-only journal, the source of truth for every record and transition.
CREATE TABLE journal (
  seq INTEGER PRIMARY KEY,
  at_ms INTEGER NOT NULL CHECK (at_ms >= 0),
  execution_id TEXT,
  node_id TEXT,
  attempt INTEGER CHECK (attempt IS NULL OR attempt >= 1),
  kind TEXT NOT NULL CHECK (length(kind) > 0),
  payload TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(payload))
) STRICT;

CREATE INDEX journal_by_execution ON journal (execution_id);

CREATE INDEX journal_created ON journal (execution_id)
  WHERE kind = 'execution.created';

CREATE INDEX journal_terminal ON journal (execution_id)
  WHERE kind IN ('execution.stopped', 'execution.completed', 'execution.failed');

CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
BEGIN
  SELECT RAISE(ABORT, 'journal is append-only');
END;

CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
BEGIN
  SELECT RAISE(ABORT, 'journal is append-only');
END;
