// Schema migrations: the numbered SQL files of migrations/, embedded at build time and
// applied in order, each in its own transaction. The version reached is PRAGMA user_version.
#pragma once

#include <string_view>
#include <vector>

#include "base/status.h"

namespace SQLite {
class Database;
}

namespace warden::journal {

struct Migration {
  int version;            // 1, 2, 3, ... (the file's number)
  std::string_view name;  // file name without ".sql", e.g. "0001_journal"
  std::string_view sql;   // the whole file
};

// Every migration of this build, in version order. Defined in the generated source.
const std::vector<Migration>& EmbeddedMigrations();

// The version a fully migrated database has with this build.
int LatestSchemaVersion();

// Brings `db` from its recorded version up to `target` (default: the latest), each
// migration in one transaction together with its version number, so a crash leaves the
// database at a whole version. Returns InvalidArgument naming both versions when the
// database is newer than `target` (made by a newer Warden), IoError when a migration fails.
Status Migrate(SQLite::Database& db, int target = LatestSchemaVersion());

// Returns the recorded schema version of `db` (0 for an empty database).
Result<int> SchemaVersion(SQLite::Database& db);

}  // namespace warden::journal
