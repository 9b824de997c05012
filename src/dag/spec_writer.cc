#include "dag/spec_writer.h"

#include <boost/json.hpp>

namespace warden::dag {
namespace {

namespace json = boost::json;

json::array StringArray(const std::vector<std::string>& strings) {
  json::array array;
  array.reserve(strings.size());
  for (const std::string& s : strings) array.emplace_back(s);
  return array;
}

json::object NodeToJson(const NodeSpec& node) {
  json::object object;
  object["id"] = node.id;
  object["argv"] = StringArray(node.argv);
  if (!node.needs.empty()) object["needs"] = StringArray(node.needs);
  if (node.cwd != "/") object["cwd"] = node.cwd;
  if (!node.env.empty()) {
    json::object env;
    for (const auto& [name, value] : node.env) env[name] = value;
    object["env"] = std::move(env);
  }
  if (node.timeout_ms != 0) object["timeoutMs"] = node.timeout_ms;
  if (node.retries != 0) object["retries"] = node.retries;
  if (node.cost_per_second_usd != 0) object["costPerSecondUsd"] = node.cost_per_second_usd;
  if (node.grace_ms) object["graceMs"] = *node.grace_ms;
  if (node.user) {
    if (node.user->uid) {
      object["user"] = *node.user->uid;
    } else {
      object["user"] = node.user->name;
    }
  }
  return object;
}

}  // namespace

json::value ExecutionSpecToJson(const ExecutionSpec& spec) {
  json::object object;
  if (spec.name) object["name"] = *spec.name;
  if (spec.request_id) object["requestId"] = *spec.request_id;
  object["maxParallel"] = spec.max_parallel;
  if (spec.grace_ms) object["graceMs"] = *spec.grace_ms;
  if (spec.timeout_ms != 0) object["timeoutMs"] = spec.timeout_ms;
  object["onFailure"] = OnFailureName(spec.on_failure);
  object["onRecovery"] = OnRecoveryName(spec.on_recovery);
  json::array nodes;
  nodes.reserve(spec.nodes.size());
  for (const NodeSpec& node : spec.nodes) nodes.emplace_back(NodeToJson(node));
  object["nodes"] = std::move(nodes);
  return object;
}

}  // namespace warden::dag
