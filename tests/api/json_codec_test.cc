#include "api/json_codec.h"

#include <gtest/gtest.h>

#include "api/error_response.h"
#include "base/json_text.h"

namespace warden::api {
namespace {

using lifecycle::ExecutionState;
using lifecycle::NodeStatus;

TEST(JsonCodecTest, ExecutionHasApiFieldsAndNullsForWhatIsUnknown) {
  lifecycle::ExecutionView view;
  view.id = "e1";
  view.status = ExecutionState::kRunning;
  view.created_at = 10;
  view.started_at = 11;
  view.cost_usd = 0.5;
  lifecycle::NodeView killed;
  killed.id = "a";
  killed.status = NodeStatus::kStopped;
  killed.attempt = 1;
  killed.pid = 42;
  killed.signal = "SIGKILL";
  view.nodes.push_back(killed);
  view.as_of_seq = 7;
  view.needs = std::make_shared<std::vector<std::vector<std::string>>>(
      std::vector<std::vector<std::string>>{{"x", "y"}});
  EXPECT_EQ(SerializeJson(ExecutionToJson(view)),
            R"({"executionId":"e1","name":null,"status":"running","createdAt":10,)"
            R"("startedAt":11,"endedAt":null,"costUsd":0.5,"asOfSeq":7,"nodes":[{"id":"a",)"
            R"("status":"stopped","attempt":1,"pid":42,"exitCode":null,"signal":"SIGKILL",)"
            R"("startedAt":null,"endedAt":null,"costUsd":0,"needs":["x","y"]}]})");
}

TEST(JsonCodecTest, ANodeWithoutKnownNeedsHasAnEmptyNeedsArray) {
  lifecycle::ExecutionView view;
  view.id = "e1";
  lifecycle::NodeView node;
  node.id = "a";
  view.nodes.push_back(node);
  auto json = ExecutionToJson(view);
  EXPECT_EQ(json.at("asOfSeq").as_int64(), 0);
  EXPECT_TRUE(json.at("nodes").at(0).at("needs").as_array().empty());
}

TEST(JsonCodecTest, StopResultCarriesSummaryAndJournaledFlag) {
  lifecycle::StopResult result;
  result.execution_id = "e1";
  result.reason = lifecycle::StopReason::kServerShutdown;
  result.stopped_at = 99;
  result.summary.nodes_total = 7;
  result.journaled = false;
  auto json = ExecutionToJson({});  // unrelated; keeps the includes honest
  auto stop = StopResultToJson(result).as_object();
  EXPECT_EQ(stop.at("status").as_string(), "stopped");
  EXPECT_EQ(stop.at("reason").as_string(), "server_shutdown");
  EXPECT_EQ(stop.at("stoppedAt").as_int64(), 99);
  EXPECT_EQ(stop.at("summary").at("nodesTotal").as_int64(), 7);
  EXPECT_FALSE(stop.at("journaled").as_bool());
  (void)json;
}

TEST(JsonCodecTest, EventUsesJournalColumnNamesAndParsedPayload) {
  journal::Event event;
  event.seq = 5;
  event.at_ms = 1000;
  event.execution_id = "e1";
  event.kind = "execution.started";
  event.payload = R"({"by":"uid:0 pid:1"})";
  EXPECT_EQ(SerializeJson(EventToJson(event)),
            R"({"seq":5,"at_ms":1000,"execution_id":"e1","node_id":null,"attempt":null,)"
            R"("kind":"execution.started","payload":{"by":"uid:0 pid:1"}})");
  EXPECT_TRUE(IsTerminalEventKind("execution.completed"));
  EXPECT_FALSE(IsTerminalEventKind("execution.stop_completed"));
}

TEST(JsonCodecTest, EventPayloadNumbersComeBackAsTheJournalHoldsThem) {
  journal::Event event;
  event.seq = 6;
  event.kind = "cost.reported";
  event.payload = R"({"costUsd":0.10198063705999999})";
  EXPECT_EQ(SerializeJson(EventToJson(event).at("payload")), event.payload);
  EXPECT_EQ(EventToJson(event).at("payload").at("costUsd").as_double(), 0.10198063705999999);
  // An earlier journal's spelling is read exactly and written the way answers write numbers.
  event.payload = R"({"costUsd":1.0198063705999999E-1,"zero":0E0})";
  EXPECT_EQ(SerializeJson(EventToJson(event).at("payload")),
            R"({"costUsd":0.10198063705999999,"zero":0})");
}

TEST(ErrorResponseTest, StatusCodesMapToHttpInOnePlace) {
  EXPECT_EQ(HttpStatusFor(StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFor(StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFor(StatusCode::kConflict), 409);
  EXPECT_EQ(HttpStatusFor(StatusCode::kTooLarge), 413);
  EXPECT_EQ(HttpStatusFor(StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusFor(StatusCode::kIoError), 500);
  Response r = ErrorResponse(Status::Conflict("pause refused: execution e1 is stopped"));
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(r.body,
            R"({"error":{"code":"conflict","message":"pause refused: execution e1 is stopped"}})");
}

}  // namespace
}  // namespace warden::api
