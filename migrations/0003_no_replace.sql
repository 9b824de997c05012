-- 0003: INSERT OR REPLACE (and REPLACE) removes the row it replaces without firing DELETE
-- triggers, so it could rewrite history: an insert that names an existing seq aborts.
CREATE TRIGGER journal_no_replace BEFORE INSERT ON journal
WHEN NEW.seq IN (SELECT seq FROM journal)
BEGIN
  SELECT RAISE(ABORT, 'journal is append-only');
END;
