// Every record kind reads back as written, through the same Encode/Decode pair that the
// lifecycle and recovery use; bad payloads are named, unknown kinds skipped.
#include "journal/records.h"

#include <gtest/gtest.h>

#include <set>

namespace warden::journal {
namespace {

// One filled-in example of every alternative, with every optional field set.
std::vector<Record> Examples() {
  return {
      ExecutionCreated{"nightly", "req-7", "uid:0 pid:12", R"({"nodes":[{"id":"a"}]})"},
      ExecutionStarted{"lib"},
      ExecutionPaused{"token:ops"},
      ExecutionResumed{"warden", 1500},
      ExecutionStopRequested{"uid:1000 pid:4", "sh", "user_abort", "bad data", 250, true},
      ExecutionStopCompleted{"failed", "error", 0.25, 3, 1, 7, 5120, 1764000000000, false},
      ExecutionStopped{0.5},
      ExecutionCompleted{1.25},
      ExecutionFailed{2.0, "crash_recovery"},
      ExecutionRecovered{"warden", {"b", "c"}},
      NodeIntent{{"sh", "-c", "echo hi"},
                 "/srv",
                 "e1",
                 "extract",
                 2,
                 "/sys/fs/cgroup/warden/node-1-2",
                 "cgroup"},
      NodeStarted{4242, 123456789, "b00t", 4242, 4242, "/sys/fs/cgroup/x", "cgroup"},
      NodeLaunchFailed{"exec x: No such file or directory", 127},
      NodeSignalled{"SIGTERM", "stop", 2000},
      NodeExited{std::nullopt, "SIGKILL", false, true, 0.125, 2100, 300, "stopped"},
      NodeTimedOut{60000},
      NodeRetryScheduled{3},
      NodeSkipped{"extract"},
      NodeStopped{"timeout"},
      NodeLost{"host_rebooted"},
      NodeUnkillable{{17, 18}},
      CostReported{0.75},
      OrphanFound{4242, 100, 101, "pid_reused", "pid", 2000, {1, 2}},
      OrphanTerminated{4242},
      OrphanKilled{4243},
      OrphanUnkillable{4244, {4244, 4245}},
      DaemonStarted{99, "0.1.0", "b00t", "pgroup", "/sys/fs/cgroup/warden", 42},
      DaemonStopped{99, "0.1.0"},
      RecoveryStarted{{"e1", "e2"}},
      RecoveryFinished{2, 5, 840},
  };
}

// Records compare by their encoding: equal payloads mean equal records.
std::string Encoded(const Record& r) {
  Event e;
  EncodeTo(r, e);
  return e.kind + " " + e.payload;
}

TEST(RecordsTest, EveryKindReadsBackAsWritten) {
  std::set<std::string_view> kinds;
  for (const Record& record : Examples()) {
    Event e;
    EncodeTo(record, e);
    EXPECT_EQ(e.kind, KindOf(record));
    kinds.insert(KindOf(record));
    auto back = DecodeFrom(e);
    ASSERT_TRUE(back.ok()) << e.kind << ": " << back.status().ToString();
    EXPECT_EQ(back->index(), record.index()) << e.kind;
    EXPECT_EQ(Encoded(*back), Encoded(record));
  }
  EXPECT_EQ(kinds.size(), std::variant_size_v<Record>) << "an example per kind";
}

TEST(RecordsTest, OptionalFieldsLeftOutReadBackAsAbsent) {
  Event e;
  EncodeTo(ExecutionStopRequested{"lib", "", "timeout", "", std::nullopt, false}, e);
  EXPECT_EQ(e.payload, R"({"requestedBy":"lib","reason":"timeout","graceMs":null})");
  auto back = DecodeFrom(e);
  ASSERT_TRUE(back.ok());
  const auto& r = std::get<ExecutionStopRequested>(*back);
  EXPECT_FALSE(r.grace_ms);
  EXPECT_FALSE(r.joined);
  EXPECT_TRUE(r.note.empty());
}

TEST(RecordsTest, PayloadWithAMissingFieldIsCorruptionNamingKindAndField) {
  Event e{0, 0, "e1", "a", 1, "node.started", R"({"pid":1,"bootId":"b","pgid":1,"sid":1})"};
  auto back = DecodeFrom(e);
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.status().code(), StatusCode::kCorruption);
  EXPECT_NE(back.status().message().find("node.started"), std::string::npos);
  EXPECT_NE(back.status().message().find("startTime"), std::string::npos);
}

TEST(RecordsTest, MistypedFieldAndNonObjectPayloadAreCorruption) {
  Event e{0, 0, "e1", "", 0, "execution.started", R"({"requestedBy":7})"};
  EXPECT_EQ(DecodeFrom(e).status().code(), StatusCode::kCorruption);
  e.payload = "[1,2]";
  EXPECT_EQ(DecodeFrom(e).status().code(), StatusCode::kCorruption);
  e.payload = "{not json";
  EXPECT_EQ(DecodeFrom(e).status().code(), StatusCode::kCorruption);
}

TEST(RecordsTest, IntegerFieldBeyondInt64IsCorruption) {
  for (const char* pid : {"1e300", "-1e300", "9223372036854775808.0", "1.5"}) {
    Event e{0, 0, "", "", 0, "orphan.terminated", std::string(R"({"pid":)") + pid + "}"};
    EXPECT_EQ(DecodeFrom(e).status().code(), StatusCode::kCorruption) << pid;
  }
  Event e{0, 0, "", "", 0, "orphan.terminated", R"({"pid":-9223372036854775808.0})"};
  auto back = DecodeFrom(e);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(std::get<OrphanTerminated>(*back).pid, INT64_MIN);
}

TEST(RecordsTest, UnknownKindIsNotFoundSoReadersCanSkipIt) {
  Event e{0, 0, "e1", "", 0, "execution.teleported", "{}"};
  EXPECT_EQ(DecodeFrom(e).status().code(), StatusCode::kNotFound);
}

TEST(RecordsTest, UnknownFieldsAreIgnored) {
  Event e{0,
          0,
          "e1",
          "a",
          1,
          "node.signalled",
          R"({"signal":"SIGTERM","why":"stop","addedLater":{"x":1}})"};
  auto back = DecodeFrom(e);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(std::get<NodeSignalled>(*back).why, "stop");
}

TEST(RecordsTest, CostsAreWrittenAsShortestDecimalsAndReadBackBitIdentical) {
  Event e;
  EncodeTo(ExecutionStopCompleted{"stopped", "user_abort", 0.10198063705999999, 0, 0, 1, 0,
                                  1764000000000, true},
           e);
  EXPECT_EQ(e.payload,
            R"({"status":"stopped","reason":"user_abort","finalCostUsd":0.10198063705999999,)"
            R"("nodesCompleted":0,"nodesFailed":0,"nodesTotal":1,"durationMs":0,)"
            R"("stoppedAt":1764000000000,"journaled":true})");
  auto back = DecodeFrom(e);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(std::get<ExecutionStopCompleted>(*back).final_cost_usd, 0.10198063705999999);

  EncodeTo(CostReported{0.0}, e);
  EXPECT_EQ(e.payload, R"({"costUsd":0})");
  EncodeTo(ExecutionStopped{0.01}, e);
  EXPECT_EQ(e.payload, R"({"costUsd":0.01})");
}

TEST(RecordsTest, JournalsWrittenInExponentFormReadBackExactly) {
  // Boost.JSON's own spelling, as earlier journals hold it.
  Event e{0, 0, "e1", "", 0, "execution.stopped", R"({"costUsd":1.0198063705999999E-1})"};
  auto back = DecodeFrom(e);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(std::get<ExecutionStopped>(*back).cost_usd, 0.10198063705999999);
}

TEST(RecordsTest, TheJournaledSpecSpellsItsNumbersPlainlyAndKeepsThemExact) {
  Event e;
  // The spec text as Boost.JSON writes it (1.2005E-2), with a 17-digit cost.
  EncodeTo(ExecutionCreated{std::nullopt, std::nullopt, "lib",
                            R"({"maxParallel":1,"nodes":[{"id":"a","argv":["x"],)"
                            R"("costPerSecondUsd":1.2005E-2},{"id":"b","argv":["x"],)"
                            R"("costPerSecondUsd":1.0198063705999999E-1}]})"},
           e);
  EXPECT_EQ(e.payload, R"({"name":null,"requestedBy":"lib","spec":{"maxParallel":1,"nodes":[)"
                       R"({"id":"a","argv":["x"],"costPerSecondUsd":0.012005},)"
                       R"({"id":"b","argv":["x"],"costPerSecondUsd":0.10198063705999999}]}})");
  auto back = DecodeFrom(e);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(std::get<ExecutionCreated>(*back).spec_json,
            R"({"maxParallel":1,"nodes":[{"id":"a","argv":["x"],"costPerSecondUsd":0.012005},)"
            R"({"id":"b","argv":["x"],"costPerSecondUsd":0.10198063705999999}]})");
}

}  // namespace
}  // namespace warden::journal
