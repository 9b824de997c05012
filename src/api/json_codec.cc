#include "api/json_codec.h"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "base/json_text.h"

namespace warden::api {

namespace json = boost::json;

namespace {

template <typename T>
json::value OrNull(const std::optional<T>& v) {
  if (!v) return nullptr;
  return json::value(*v);
}

json::value NodeToJson(const lifecycle::NodeView& node, const std::vector<std::string>* needs) {
  json::object o;
  o.reserve(10);
  o.emplace("id", node.id);
  o.emplace("status", lifecycle::NodeStatusName(node.status));
  o.emplace("attempt", node.attempt);
  o.emplace("pid", OrNull(node.pid));
  o.emplace("exitCode", OrNull(node.exit_code));
  o.emplace("signal", OrNull(node.signal));
  o.emplace("startedAt", OrNull(node.started_at));
  o.emplace("endedAt", OrNull(node.ended_at));
  o.emplace("costUsd", node.cost_usd);
  json::array needed;
  if (needs) {
    needed.reserve(needs->size());
    for (const std::string& id : *needs) needed.emplace_back(id);
  }
  o.emplace("needs", std::move(needed));
  return o;
}

}  // namespace

json::value ExecutionToJson(const lifecycle::ExecutionView& execution) {
  json::object o;
  o.reserve(9);
  o.emplace("executionId", execution.id);
  o.emplace("name", OrNull(execution.name));
  o.emplace("status", lifecycle::ExecutionStateName(execution.status));
  o.emplace("createdAt", execution.created_at);
  o.emplace("startedAt", OrNull(execution.started_at));
  o.emplace("endedAt", OrNull(execution.ended_at));
  o.emplace("costUsd", execution.cost_usd);
  o.emplace("asOfSeq", execution.as_of_seq);
  json::array nodes;
  nodes.reserve(execution.nodes.size());
  const auto* needs = execution.needs.get();
  for (size_t i = 0; i < execution.nodes.size(); ++i) {
    nodes.push_back(
        NodeToJson(execution.nodes[i], needs && i < needs->size() ? &(*needs)[i] : nullptr));
  }
  o.emplace("nodes", std::move(nodes));
  return o;
}

json::value StopResultToJson(const lifecycle::StopResult& result) {
  json::object summary;
  summary["nodesCompleted"] = result.summary.nodes_completed;
  summary["nodesFailed"] = result.summary.nodes_failed;
  summary["nodesTotal"] = result.summary.nodes_total;
  summary["durationMs"] = result.summary.duration_ms;
  json::object o;
  o["status"] = lifecycle::ExecutionStateName(result.status);
  o["executionId"] = result.execution_id;
  o["reason"] = lifecycle::StopReasonName(result.reason);
  o["finalCostUsd"] = result.final_cost_usd;
  o["stoppedAt"] = result.stopped_at;
  o["summary"] = std::move(summary);
  o["nodesKilled"] = result.nodes_killed;
  o["nodesUnkillable"] = result.nodes_unkillable;
  o["journaled"] = result.journaled;
  return o;
}

json::value EventToJson(const journal::Event& event) {
  json::object o;
  o.reserve(7);
  o.emplace("seq",
            event.seq == 0 ? json::value(nullptr) : json::value(event.seq));  // 0: not journaled
  o.emplace("at_ms", event.at_ms);
  o.emplace("execution_id",
            event.execution_id.empty() ? json::value(nullptr) : json::value(event.execution_id));
  o.emplace("node_id", event.node_id.empty() ? json::value(nullptr) : json::value(event.node_id));
  o.emplace("attempt", event.attempt == 0 ? json::value(nullptr) : json::value(event.attempt));
  o.emplace("kind", event.kind);
  boost::system::error_code ec;
  json::value payload = ParseJson(event.payload, ec);
  o.emplace("payload", ec ? json::value(event.payload) : std::move(payload));
  return o;
}

bool IsTerminalEventKind(std::string_view kind) {
  return kind == journal::kind::kExecutionStopped || kind == journal::kind::kExecutionCompleted ||
         kind == journal::kind::kExecutionFailed;
}

}  // namespace warden::api
