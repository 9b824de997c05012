// The stop audit node by node: the stop_nodes view and the grace in force in stops, read
// with SQLite as an operator would.
#include <SQLiteCpp/SQLiteCpp.h>

#include "lifecycle_test_util.h"

namespace warden::lifecycle_test {
namespace {

struct StopNodeRow {
  std::string node_id;
  std::optional<int64_t> pid, grace_ms, sigterm_at, sigkill_at, ended_at, exit_code, term_to_end_ms;
  std::optional<std::string> signal, outcome;
};

std::vector<StopNodeRow> StopNodes(const std::string& db_path, const std::string& id) {
  SQLite::Database db(db_path, SQLite::OPEN_READONLY);
  SQLite::Statement q(db,
                      "SELECT node_id, pid, grace_ms, sigterm_at, sigkill_at, ended_at, "
                      "exit_code, term_to_end_ms, signal, outcome FROM stop_nodes "
                      "WHERE execution_id = ? ORDER BY node_id");
  q.bind(1, id);
  auto opt_int = [](const SQLite::Column& c) {
    return c.isNull() ? std::optional<int64_t>() : c.getInt64();
  };
  auto opt_text = [](const SQLite::Column& c) {
    return c.isNull() ? std::optional<std::string>() : c.getString();
  };
  std::vector<StopNodeRow> rows;
  while (q.executeStep()) {
    rows.push_back({q.getColumn(0).getString(), opt_int(q.getColumn(1)), opt_int(q.getColumn(2)),
                    opt_int(q.getColumn(3)), opt_int(q.getColumn(4)), opt_int(q.getColumn(5)),
                    opt_int(q.getColumn(6)), opt_int(q.getColumn(7)), opt_text(q.getColumn(8)),
                    opt_text(q.getColumn(9))});
  }
  return rows;
}

TEST_F(RealTimeLifecycleTest, StopNodesShowsGracefulKilledAndNotStartedUnderTheGraceInForce) {
  runner_->SetTermBehavior("stubborn", TermBehavior::kIgnoreTerm);
  std::string id = Create(Dag({Node("coop"), Node("stubborn"), Node("later", {"coop"})},
                              R"("maxParallel": 2, "graceMs": 150)"));
  Settle();
  auto stop = StopAndWait(id);
  ASSERT_TRUE(stop.done && stop.done->ok());

  auto rows = StopNodes(journal_->path(), id);
  ASSERT_EQ(rows.size(), 3u);
  const StopNodeRow& coop = rows[0];
  const StopNodeRow& later = rows[1];
  const StopNodeRow& stubborn = rows[2];
  ASSERT_EQ(coop.node_id, "coop");
  EXPECT_EQ(coop.outcome, "graceful");
  EXPECT_EQ(coop.grace_ms, 150);
  EXPECT_TRUE(coop.pid && coop.sigterm_at && coop.ended_at);
  EXPECT_FALSE(coop.sigkill_at);
  EXPECT_EQ(coop.signal, "SIGTERM");
  EXPECT_LT(*coop.term_to_end_ms, 150);

  ASSERT_EQ(stubborn.node_id, "stubborn");
  EXPECT_EQ(stubborn.outcome, "killed");
  EXPECT_EQ(stubborn.grace_ms, 150);
  ASSERT_TRUE(stubborn.sigterm_at && stubborn.sigkill_at && stubborn.ended_at);
  EXPECT_GE(*stubborn.sigkill_at - *stubborn.sigterm_at, 150) << "SIGKILL after the grace";
  EXPECT_LT(*stubborn.sigkill_at - *stubborn.sigterm_at, 1000);
  EXPECT_LE(*stubborn.sigkill_at, *stubborn.ended_at);
  EXPECT_EQ(stubborn.signal, "SIGKILL");

  ASSERT_EQ(later.node_id, "later");
  EXPECT_EQ(later.outcome, "not_started");
  EXPECT_FALSE(later.pid || later.sigterm_at || later.grace_ms);

  auto stops = StopRows(id);
  ASSERT_EQ(stops.size(), 1u);
  EXPECT_EQ(stops[0].grace_ms, 150) << "the grace in force, though the request named none";
}

TEST_F(LifecycleTest, StopsGraceIsNullWhenNodesHadDifferentGracesAndTheRangeIsBeside) {
  std::string id =
      Create(Dag({Node("a", {}, R"("graceMs": 100)"), Node("b", {}, R"("graceMs": 300)")},
                 R"("maxParallel": 2)"));
  Settle();
  auto stop = StopAndWait(id);
  ASSERT_TRUE(stop.done && stop.done->ok());
  SQLite::Database db(journal_->path(), SQLite::OPEN_READONLY);
  SQLite::Statement q(db,
                      "SELECT grace_ms, grace_ms_min, grace_ms_max FROM stops "
                      "WHERE execution_id = ?");
  q.bind(1, id);
  ASSERT_TRUE(q.executeStep());
  EXPECT_TRUE(q.getColumn(0).isNull());
  EXPECT_EQ(q.getColumn(1).getInt64(), 100);
  EXPECT_EQ(q.getColumn(2).getInt64(), 300);
}

TEST_F(LifecycleTest, StopNodesAnswersFromIndexesNotTheWholeJournal) {
  SQLite::Database db(journal_->path(), SQLite::OPEN_READONLY);
  for (const char* view : {"stop_nodes", "stops"}) {
    SQLite::Statement plan(
        db, std::string("EXPLAIN QUERY PLAN SELECT * FROM ") + view + " WHERE execution_id = ?");
    std::string details;
    while (plan.executeStep()) details += plan.getColumn(3).getString() + "\n";
    EXPECT_EQ(details.find("SCAN r\n"), std::string::npos) << view << ":\n" << details;
    EXPECT_EQ(details.find("SCAN journal\n"), std::string::npos) << view << ":\n" << details;
    EXPECT_NE(details.find("USING INDEX"), std::string::npos) << view << ":\n" << details;
  }
}

}  // namespace
}  // namespace warden::lifecycle_test
