// Journal append throughput beside a raw SQLite insert loop into the same table (same
// CHECKs, indexes and triggers, same WAL and synchronous settings) in the same run.
// Prints rows/s for each and the Journal/raw ratios. Run: build/tests/journal/journal_perftest
#include <SQLiteCpp/SQLiteCpp.h>
#include <benchmark/benchmark.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "journal/journal.h"
#include "journal/migrations.h"

namespace warden::journal {
namespace {

const std::string kPayload =
    R"({"pid":12345,"startTime":987654,"pgid":12345,"cgroup":"/warden/e/n"})";

std::string FreshPath() {
  std::string dir = (std::filesystem::temp_directory_path() / "warden-perf-XXXXXX").string();
  if (!mkdtemp(dir.data())) std::abort();
  return dir + "/warden.db";
}

void Cleanup(const std::string& path) {
  std::filesystem::remove_all(std::filesystem::path(path).parent_path());
}

std::vector<Event> MakeBatch(int n) {
  std::vector<Event> events(n);
  for (int i = 0; i < n; ++i) {
    events[i].execution_id = "01JD0000000000000000000000";
    events[i].node_id = "node-" + std::to_string(i % 100);
    events[i].attempt = 1;
    events[i].kind = "node.started";
    events[i].payload = kPayload;
  }
  return events;
}

void BM_JournalAppend(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  std::string path = FreshPath();
  {
    auto journal = Journal::Open(path);
    if (!journal.ok()) {
      state.SkipWithError(journal.status().ToString().c_str());
      return;
    }
    std::vector<Event> events = MakeBatch(batch);
    for (auto _ : state) {
      for (auto& e : events) e.at_ms = 0;
      auto r = (*journal)->Append(events, Durability::kCrashSafe);
      if (!r.ok()) state.SkipWithError(r.status().ToString().c_str());
    }
    state.SetItemsProcessed(state.iterations() * batch);
  }
  Cleanup(path);
}

// The floor: the plainest loop over SQLite's C API, one prepared INSERT, rows in one
// explicit transaction per batch (autocommit when the batch is one row).
void BM_RawSqliteInsert(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  std::string path = FreshPath();
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = NORMAL");
    if (!Migrate(db).ok()) std::abort();
    sqlite3* h = db.getHandle();
    sqlite3_stmt* insert;
    sqlite3_prepare_v2(h,
                       "INSERT INTO journal (at_ms, execution_id, node_id, attempt, kind, "
                       "payload) VALUES (?, ?, ?, ?, ?, ?)",
                       -1, &insert, nullptr);
    std::vector<Event> events = MakeBatch(batch);
    for (auto _ : state) {
      if (batch > 1) sqlite3_exec(h, "BEGIN", nullptr, nullptr, nullptr);
      for (const Event& e : events) {
        sqlite3_bind_int64(insert, 1, 1764000000000);
        sqlite3_bind_text(insert, 2, e.execution_id.c_str(), -1, SQLITE_STATIC);
        sqlite3_bind_text(insert, 3, e.node_id.c_str(), -1, SQLITE_STATIC);
        sqlite3_bind_int64(insert, 4, e.attempt);
        sqlite3_bind_text(insert, 5, e.kind.c_str(), -1, SQLITE_STATIC);
        sqlite3_bind_text(insert, 6, e.payload.c_str(), -1, SQLITE_STATIC);
        if (sqlite3_step(insert) != SQLITE_DONE) state.SkipWithError(sqlite3_errmsg(h));
        sqlite3_reset(insert);
      }
      if (batch > 1) sqlite3_exec(h, "COMMIT", nullptr, nullptr, nullptr);
    }
    sqlite3_finalize(insert);
    state.SetItemsProcessed(state.iterations() * batch);
  }
  Cleanup(path);
}

// Wall time: appending is I/O, and the journal's cost shows up in elapsed time.
BENCHMARK(BM_JournalAppend)->Arg(1)->Arg(100)->MinTime(1.0)->UseRealTime();
BENCHMARK(BM_RawSqliteInsert)->Arg(1)->Arg(100)->MinTime(1.0)->UseRealTime();

// Keeps each run's rows/s so main() can print the ratios.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      auto it = r.counters.find("items_per_second");
      // Keyed by "<function>/<batch size>", without the options suffixes.
      std::string name = r.benchmark_name();
      std::string key = name.substr(0, name.find('/', name.find('/') + 1));
      if (it != r.counters.end()) rate[key] = it->second;
    }
  }
  std::map<std::string, double> rate;
};

}  // namespace
}  // namespace warden::journal

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  warden::journal::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  std::printf("\n%-28s %14s %14s %8s\n", "append", "Journal rows/s", "raw rows/s", "ratio");
  for (const char* arg : {"1", "100"}) {
    double journal = reporter.rate[std::string("BM_JournalAppend/") + arg];
    double raw = reporter.rate[std::string("BM_RawSqliteInsert/") + arg];
    std::printf("%-28s %14.0f %14.0f %8.2f\n",
                (std::string(arg) == "1" ? "single events" : "batches of 100"), journal, raw,
                raw > 0 ? journal / raw : 0.0);
  }
  return 0;
}
