// The JSON shapes of api.md: Execution, StopResponse and journal rows, built from the
// lifecycle's plain values. Field names are the contract; see docs/api.md.
#pragma once

#include <boost/json/value.hpp>
#include <string>

#include "journal/event.h"
#include "lifecycle/execution_view.h"

namespace warden::api {

// An Execution object: executionId, name, status, createdAt, startedAt, endedAt, costUsd,
// nodes[{id, status, attempt, pid, exitCode, signal, startedAt, endedAt, costUsd}]. Absent
// optional values are null.
boost::json::value ExecutionToJson(const lifecycle::ExecutionView& execution);

// A StopResponse: status, executionId, reason, finalCostUsd, stoppedAt, summary{...},
// journaled, plus nodesKilled and nodesUnkillable.
boost::json::value StopResultToJson(const lifecycle::StopResult& result);

// One journal row with the table's column names: seq, at_ms, execution_id, node_id (null
// when empty), attempt (null when 0), kind, payload (the parsed object, its numbers read
// exactly (ParseJson), so that SerializeJson gives back the double the journal holds; the
// raw text as a string if it is not valid JSON).
boost::json::value EventToJson(const journal::Event& event);

// True for the kinds that end an execution: execution.stopped, .completed, .failed.
bool IsTerminalEventKind(std::string_view kind);

}  // namespace warden::api
