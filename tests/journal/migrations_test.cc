#include "journal/migrations.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "journal/journal.h"
#include "journal_test_util.h"

namespace warden::journal {
namespace {

// sqlite_master keeps each statement's text as written; comments and layout differ between
// migrations/ and schema/, so compare with comments dropped and white space folded.
std::string Normalize(const std::string& sql) {
  std::string out;
  bool space = false;
  for (size_t i = 0; i < sql.size(); ++i) {
    if (sql.compare(i, 2, "--") == 0) {
      while (i < sql.size() && sql[i] != '\n') ++i;
      space = true;
      continue;
    }
    if (std::isspace(static_cast<unsigned char>(sql[i]))) {
      space = true;
      continue;
    }
    if (space && !out.empty() && out.back() != '(' && sql[i] != ')' && sql[i] != ',') out += ' ';
    space = false;
    out += sql[i];
  }
  return out;
}

std::map<std::string, std::string> SchemaOf(SQLite::Database& db) {
  std::map<std::string, std::string> objects;
  SQLite::Statement q(db,
                      "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL "
                      "AND name NOT LIKE 'sqlite_%'");
  while (q.executeStep()) {
    objects[q.getColumn(0).getString() + " " + q.getColumn(1).getString()] =
        Normalize(q.getColumn(2).getString());
  }
  return objects;
}

TEST(MigrationsTest, AreNumberedFromOneWithoutGaps) {
  const auto& all = EmbeddedMigrations();
  ASSERT_FALSE(all.empty());
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].version, static_cast<int>(i) + 1);
  EXPECT_EQ(LatestSchemaVersion(), static_cast<int>(all.size()));
}

TEST(MigrationsTest, EmptyDatabaseReachesTheLatestVersion) {
  ScratchDir dir;
  SQLite::Database db(dir.File("m.db"), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  ASSERT_TRUE(Migrate(db).ok());
  EXPECT_EQ(*SchemaVersion(db), LatestSchemaVersion());
  ASSERT_TRUE(Migrate(db).ok()) << "migrating again is a no-op";
  EXPECT_EQ(*SchemaVersion(db), LatestSchemaVersion());
}

TEST(MigrationsTest, AllMigrationsYieldExactlyTheDocumentedSchema) {
  ScratchDir dir;
  SQLite::Database migrated(dir.File("migrated.db"), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  ASSERT_TRUE(Migrate(migrated).ok());

  std::ifstream file(WARDEN_SOURCE_DIR "/schema/schema.sql");
  ASSERT_TRUE(file) << "schema/schema.sql is missing";
  std::stringstream text;
  text << file.rdbuf();
  SQLite::Database documented(dir.File("documented.db"),
                              SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  documented.exec(text.str());

  auto want = SchemaOf(documented);
  auto got = SchemaOf(migrated);
  for (const auto& [name, sql] : got) {
    auto it = want.find(name);
    if (it == want.end()) {
      ADD_FAILURE() << name << " is made by migrations but not documented in schema/schema.sql";
    } else {
      EXPECT_EQ(sql, it->second) << name << " differs between migrations/ and schema/";
    }
  }
  for (const auto& [name, sql] : want) {
    EXPECT_TRUE(got.count(name)) << name << " is documented but no migration makes it";
  }
}

class FromOlderVersionTest : public testing::TestWithParam<int> {};

TEST_P(FromOlderVersionTest, KeepsItsEventsAndReachesTheLatestVersion) {
  const int start = GetParam();
  ScratchDir dir;
  std::string path = dir.File("old.db");
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    ASSERT_TRUE(Migrate(db, start).ok());
    EXPECT_EQ(*SchemaVersion(db), start);
    // Every version has the journal table (migration 1 makes it).
    db.exec(
        "INSERT INTO journal (at_ms, execution_id, kind, payload) "
        "VALUES (7, 'old', 'execution.created', '{\"name\":\"from v" +
        std::to_string(start) + "\"}')");
  }
  auto journal = Journal::Open(path);
  ASSERT_TRUE(journal.ok()) << journal.status().ToString();
  auto events = (*journal)->ReadExecution("old");
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ(events->front().payload, "{\"name\":\"from v" + std::to_string(start) + "\"}");
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  EXPECT_EQ(*SchemaVersion(db), LatestSchemaVersion());
  EXPECT_EQ(db.execAndGet("SELECT name FROM executions WHERE id = 'old'").getString(),
            "from v" + std::to_string(start));
}

INSTANTIATE_TEST_SUITE_P(EachOlderVersion, FromOlderVersionTest,
                         testing::Range(1, LatestSchemaVersion()));

TEST(MigrationsTest, DatabaseFromANewerWardenIsRefusedNamingBothVersions) {
  ScratchDir dir;
  std::string path = dir.File("newer.db");
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec("PRAGMA user_version = 999");
  }
  auto journal = Journal::Open(path);
  ASSERT_FALSE(journal.ok());
  const std::string m = journal.status().message();
  EXPECT_NE(m.find("999"), std::string::npos) << m;
  EXPECT_NE(m.find("version " + std::to_string(LatestSchemaVersion())), std::string::npos) << m;
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  EXPECT_EQ(*SchemaVersion(db), 999) << "the newer database was left untouched";
}

}  // namespace
}  // namespace warden::journal
