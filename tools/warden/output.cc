#include "output.h"

#include <chrono>
#include <cstdio>
#include <ctime>

#include "base/json_text.h"

namespace warden::cli {

namespace json = boost::json;

namespace {

const json::value* Field(const json::value& v, std::string_view name) {
  if (!v.is_object()) return nullptr;
  const json::value* field = v.as_object().if_contains(name);
  return field && !field->is_null() ? field : nullptr;
}

std::string Text(const json::value& v, std::string_view name) {
  const json::value* f = Field(v, name);
  if (!f) return "-";
  if (f->is_string()) return std::string(f->as_string());
  return SerializeJson(*f);
}

int64_t Int(const json::value& v, std::string_view name, int64_t fallback = 0) {
  const json::value* f = Field(v, name);
  if (!f) return fallback;
  if (f->is_int64()) return f->as_int64();
  if (f->is_uint64()) return static_cast<int64_t>(f->as_uint64());
  if (f->is_double()) return static_cast<int64_t>(f->as_double());
  return fallback;
}

double Number(const json::value& v, std::string_view name) {
  const json::value* f = Field(v, name);
  if (!f) return 0;
  if (f->is_double()) return f->as_double();
  if (f->is_int64()) return static_cast<double>(f->as_int64());
  if (f->is_uint64()) return static_cast<double>(f->as_uint64());
  return 0;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string LocalTime(int64_t ms, bool with_millis) {
  time_t seconds = static_cast<time_t>(ms / 1000);
  tm local{};
  localtime_r(&seconds, &local);
  char buf[64];
  size_t n = strftime(buf, sizeof buf, with_millis ? "%H:%M:%S" : "%Y-%m-%d %H:%M:%S", &local);
  std::string text(buf, n);
  if (with_millis) {
    char millis[8];
    snprintf(millis, sizeof millis, ".%03d", static_cast<int>(ms % 1000));
    text += millis;
  }
  return text;
}

bool IsDone(std::string_view status) {
  return status == "succeeded" || status == "failed" || status == "skipped" ||
         status == "stopped" || status == "lost" || status == "unkillable";
}

const json::array* Nodes(const json::value& execution) {
  const json::value* nodes = Field(execution, "nodes");
  return nodes && nodes->is_array() ? &nodes->as_array() : nullptr;
}

}  // namespace

void Table::Print(std::ostream& out) const {
  std::vector<size_t> width;
  for (const auto& row : rows_) {
    if (width.size() < row.size()) width.resize(row.size());
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows_) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    out << line << "\n";
  }
}

std::string FormatCost(double usd) {
  char buf[32];
  snprintf(buf, sizeof buf, usd != 0 && usd < 0.0001 ? "$%.8f" : "$%.4f", usd);
  return buf;
}

std::string FormatDuration(int64_t ms) {
  char buf[32];
  if (ms < 0) ms = 0;
  if (ms < 1000) {
    snprintf(buf, sizeof buf, "%lldms", static_cast<long long>(ms));
  } else if (ms < 60'000) {
    snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000);
  } else if (ms < 3'600'000) {
    snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(ms / 60'000),
             static_cast<long long>(ms / 1000 % 60));
  } else {
    snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(ms / 3'600'000),
             static_cast<long long>(ms / 60'000 % 60));
  }
  return buf;
}

std::string FormatTimestamp(int64_t ms) {
  char millis[8];
  snprintf(millis, sizeof millis, ".%03d", static_cast<int>(ms % 1000));
  return LocalTime(ms, false) + millis;
}

Progress ProgressOf(const json::value& execution) {
  Progress progress;
  progress.status = Text(execution, "status");
  progress.cost_usd = Number(execution, "costUsd");
  if (const json::array* nodes = Nodes(execution)) {
    for (const auto& node : *nodes) {
      std::string status = Text(node, "status");
      ++progress.total;
      if (IsDone(status)) ++progress.done;
      if (status == "succeeded") ++progress.completed;
      if (status == "running" || status == "stopping") ++progress.running;
    }
  }
  return progress;
}

std::string FormatProgress(const Progress& progress) {
  return std::to_string(progress.done) + "/" + std::to_string(progress.total) + " done, " +
         std::to_string(progress.running) + " running, " + FormatCost(progress.cost_usd);
}

void PrintExecutionList(const json::value& executions, std::ostream& out) {
  // Completed, as in a stop summary: a stopped node is done but did not complete.
  Table table({"ID", "NAME", "STATUS", "COMPLETED", "COST", "AGE"});
  int64_t now = NowMs();
  if (executions.is_array()) {
    for (const auto& execution : executions.as_array()) {
      Progress progress = ProgressOf(execution);
      table.Add({Text(execution, "executionId"), Text(execution, "name"), progress.status,
                 std::to_string(progress.completed) + "/" + std::to_string(progress.total),
                 FormatCost(progress.cost_usd),
                 FormatDuration(now - Int(execution, "createdAt", now))});
    }
  }
  table.Print(out);
}

void PrintExecution(const json::value& execution, std::ostream& out) {
  out << "execution  " << Text(execution, "executionId") << "\n";
  out << "name       " << Text(execution, "name") << "\n";
  out << "status     " << Text(execution, "status") << "\n";
  out << "created    " << LocalTime(Int(execution, "createdAt"), false) << "\n";
  if (Field(execution, "startedAt")) {
    out << "started    " << LocalTime(Int(execution, "startedAt"), false) << "\n";
  }
  if (Field(execution, "endedAt")) {
    out << "ended      " << LocalTime(Int(execution, "endedAt"), false) << " (after "
        << FormatDuration(Int(execution, "endedAt") -
                          Int(execution, "startedAt", Int(execution, "createdAt")))
        << ")\n";
  }
  out << "cost       " << FormatCost(Number(execution, "costUsd")) << "\n\n";
  Table table({"NODE", "STATUS", "ATTEMPT", "PID", "EXIT", "DURATION", "COST"});
  int64_t now = NowMs();
  if (const json::array* nodes = Nodes(execution)) {
    for (const auto& node : *nodes) {
      std::string exit = Field(node, "signal")     ? Text(node, "signal")
                         : Field(node, "exitCode") ? Text(node, "exitCode")
                                                   : "-";
      std::string duration = "-";
      if (Field(node, "startedAt")) {
        duration = FormatDuration(Int(node, "endedAt", now) - Int(node, "startedAt"));
      }
      table.Add({Text(node, "id"), Text(node, "status"), Text(node, "attempt"), Text(node, "pid"),
                 exit, duration, FormatCost(Number(node, "costUsd"))});
    }
  }
  table.Print(out);
}

void PrintStopResult(const json::value& stop, std::ostream& out) {
  const json::value* summary = Field(stop, "summary");
  json::value none;
  const json::value& s = summary ? *summary : none;
  out << "execution " << Text(stop, "executionId") << " " << Text(stop, "status") << " ("
      << Text(stop, "reason") << ") after " << FormatDuration(Int(s, "durationMs")) << ": "
      << Int(s, "nodesCompleted") << " of " << Int(s, "nodesTotal") << " nodes completed, "
      << Int(s, "nodesFailed") << " failed, cost " << FormatCost(Number(stop, "finalCostUsd"))
      << "\n";
  if (const json::value* journaled = Field(stop, "journaled");
      journaled && journaled->is_bool() && !journaled->as_bool()) {
    out << "warning: the journal could not record this stop (see wardend's log)\n";
  }
}

std::string FormatEvent(const json::value& event) {
  std::string node = Text(event, "node_id");
  if (Field(event, "attempt")) node += "#" + Text(event, "attempt");
  std::string payload = Field(event, "payload") ? SerializeJson(*Field(event, "payload")) : "";
  return Text(event, "seq") + "  " + LocalTime(Int(event, "at_ms"), true) + "  " + node + "  " +
         Text(event, "kind") + "  " + payload;
}

}  // namespace warden::cli
