#include "journal/migrations.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <string>

namespace warden::journal {

int LatestSchemaVersion() {
  const auto& all = EmbeddedMigrations();
  return all.empty() ? 0 : all.back().version;
}

Result<int> SchemaVersion(SQLite::Database& db) {
  try {
    return db.execAndGet("PRAGMA user_version").getInt();
  } catch (const SQLite::Exception& e) {
    return Status::IoError(std::string("reading the schema version: ") + e.what());
  }
}

Status Migrate(SQLite::Database& db, int target) {
  Result<int> current = SchemaVersion(db);
  if (!current.ok()) return current.status();
  if (*current > target) {
    return Status::InvalidArgument(
        "database " + db.getFilename() + " has schema version " + std::to_string(*current) +
        ", newer than version " + std::to_string(target) +
        " that this Warden supports; use a newer Warden or another data directory");
  }
  for (const Migration& m : EmbeddedMigrations()) {
    if (m.version <= *current || m.version > target) continue;
    try {
      // BEGIN IMMEDIATE: a second daemon migrating the same file waits instead of racing.
      SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
      db.exec(std::string(m.sql));
      // PRAGMA takes no bound parameters; the version is our own integer.
      db.exec("PRAGMA user_version = " + std::to_string(m.version));
      tx.commit();
    } catch (const SQLite::Exception& e) {
      return Status::IoError("migration " + std::string(m.name) + " failed: " + e.what());
    }
  }
  return Status::Ok();
}

}  // namespace warden::journal
