#include "audit.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <boost/json.hpp>
#include <optional>
#include <sstream>
#include <utility>
#include <vector>

#include "base/json_text.h"
#include "output.h"

namespace warden::cli {

namespace {

// Widest cell of the table, in characters: a long note must not widen the whole table.
constexpr size_t kMaxCellChars = 40;

// Characters of UTF-8 `text` (bytes that do not continue a sequence).
size_t CharCount(std::string_view text) {
  return static_cast<size_t>(
      std::count_if(text.begin(), text.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

// `text` on one line and at most kMaxCellChars characters, cut ones ending in "...".
std::string Cell(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  if (CharCount(text) <= kMaxCellChars) return text;
  size_t chars = 0, end = 0;
  while (end < text.size()) {
    if ((text[end] & 0xC0) != 0x80 && chars++ == kMaxCellChars - 3) break;
    ++end;
  }
  return text.substr(0, end) + "...";
}

}  // namespace

Status PrintAudit(const std::string& db_path, const std::string& view, bool json,
                  std::ostream& out) {
  if (view != "stops" && view != "orphans") {
    return Status::InvalidArgument("audit: unknown view '" + view + "' (stops or orphans)");
  }
  std::vector<std::string> names;
  std::vector<std::vector<std::string>> rows;
  boost::json::array objects;
  try {
    // Read-only, so auditing never takes a write lock from the daemon.
    SQLite::Database db(db_path, SQLite::OPEN_READONLY);
    db.setBusyTimeout(5000);
    SQLite::Statement q(db, "SELECT * FROM " + view + " ORDER BY " +
                                (view == "stops" ? "requested_at, stop_seq" : "found_at"));
    for (int i = 0; i < q.getColumnCount(); ++i) names.emplace_back(q.getColumnName(i));
    while (q.executeStep()) {
      std::vector<std::string> row;
      boost::json::object object;
      for (int i = 0; i < q.getColumnCount(); ++i) {
        SQLite::Column c = q.getColumn(i);
        // Every *_at column is ms since the epoch: shown as local time (--json keeps it).
        const bool time = c.isInteger() && names[i].size() > 3 &&
                          names[i].compare(names[i].size() - 3, 3, "_at") == 0;
        row.push_back(c.isNull() ? "-"
                      : time     ? FormatTimestamp(c.getInt64())
                                 : Cell(c.getString()));
        if (c.isNull()) {
          object[names[i]] = nullptr;
        } else if (c.isInteger()) {
          object[names[i]] = c.getInt64();
        } else if (c.isFloat()) {
          object[names[i]] = c.getDouble();
        } else {
          object[names[i]] = c.getString();
        }
      }
      rows.push_back(std::move(row));
      objects.push_back(std::move(object));
    }
  } catch (const SQLite::Exception& e) {
    return Status::IoError("cannot read " + view + " from " + db_path + ": " + e.what());
  }
  if (json) {
    out << SerializeJson(objects) << "\n";
    return Status::Ok();
  }
  std::vector<size_t> width(names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    width[i] = CharCount(names[i]);
    for (const auto& row : rows) width[i] = std::max(width[i], CharCount(row[i]));
  }
  auto print = [&](const std::vector<std::string>& cells) {
    for (size_t i = 0; i < cells.size(); ++i) {
      out << cells[i];
      if (i + 1 < cells.size()) out << std::string(width[i] - CharCount(cells[i]) + 2, ' ');
    }
    out << "\n";
  };
  print(names);
  for (const auto& row : rows) print(row);
  if (rows.empty()) out << "(no " << view << ")\n";
  return Status::Ok();
}

}  // namespace warden::cli

namespace warden::cli {

namespace {

namespace json = boost::json;

// Every row of `q` as a JSON object (column name -> value).
json::array Rows(SQLite::Statement& q) {
  json::array rows;
  while (q.executeStep()) {
    json::object row;
    for (int i = 0; i < q.getColumnCount(); ++i) {
      SQLite::Column c = q.getColumn(i);
      if (c.isNull()) {
        row[q.getColumnName(i)] = nullptr;
      } else if (c.isInteger()) {
        row[q.getColumnName(i)] = c.getInt64();
      } else if (c.isFloat()) {
        row[q.getColumnName(i)] = c.getDouble();
      } else {
        row[q.getColumnName(i)] = c.getString();
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string Text(const json::object& row, std::string_view key) {
  const json::value* v = row.if_contains(key);
  if (!v || v->is_null()) return "";
  if (v->is_string()) return std::string(v->as_string());
  if (v->is_double()) {
    std::ostringstream number;
    number << v->as_double();
    return number.str();
  }
  return SerializeJson(*v);
}

std::optional<int64_t> Int(const json::object& row, std::string_view key) {
  const json::value* v = row.if_contains(key);
  if (!v || !v->is_int64()) return std::nullopt;
  return v->as_int64();
}

}  // namespace

Status PrintStopTimeline(const std::string& db_path, const std::string& id, bool as_json,
                         std::ostream& out) {
  json::array requests, nodes;
  try {
    SQLite::Database db(db_path, SQLite::OPEN_READONLY);
    db.setBusyTimeout(5000);
    SQLite::Statement stops(db, "SELECT * FROM stops WHERE execution_id = ? ORDER BY stop_seq");
    stops.bind(1, id);
    requests = Rows(stops);
    SQLite::Statement stop_nodes(
        db, "SELECT * FROM stop_nodes WHERE execution_id = ? ORDER BY node_id, attempt");
    stop_nodes.bind(1, id);
    nodes = Rows(stop_nodes);
  } catch (const SQLite::Exception& e) {
    return Status::IoError("cannot read the stop of " + id + " from " + db_path + ": " + e.what());
  }
  if (requests.empty()) return Status::NotFound("execution " + id + " has no stop in " + db_path);
  const json::object& first = requests.front().as_object();
  if (as_json) {
    json::object body;
    body["stop"] = first;
    body["requests"] = requests;
    body["nodes"] = nodes;
    out << SerializeJson(body) << "\n";
    return Status::Ok();
  }
  const int64_t t0 = Int(first, "requested_at").value_or(0);
  // (time, line) events, sorted by time; ties keep their order of insertion.
  std::vector<std::pair<int64_t, std::string>> events;
  for (const json::value& r : requests) {
    const json::object& request = r.as_object();
    std::string who = Text(request, "requested_by");
    if (!Text(request, "requested_by_comm").empty()) {
      who += " (" + Text(request, "requested_by_comm") + ")";
    }
    std::string line =
        (Int(request, "joined").value_or(0) ? "stop joined by " : "stop requested by ") + who +
        ", reason " + Text(request, "reason");
    if (Int(request, "grace_ms")) line += ", grace " + Text(request, "grace_ms") + " ms";
    if (!Text(request, "note").empty()) line += ", note \"" + Text(request, "note") + "\"";
    events.emplace_back(Int(request, "requested_at").value_or(t0), line);
  }
  std::vector<std::string> not_started;
  for (const json::value& n : nodes) {
    const json::object& node = n.as_object();
    const std::string name = "node " + Text(node, "node_id") + " (attempt " +
                             Text(node, "attempt") + ", pid " + Text(node, "pid") + ")";
    if (Text(node, "outcome") == "not_started") {
      not_started.push_back(Text(node, "node_id"));
      continue;
    }
    if (auto at = Int(node, "sigterm_at")) {
      events.emplace_back(*at, name + ": SIGTERM, grace " + Text(node, "grace_ms") + " ms");
    }
    if (auto at = Int(node, "sigkill_at")) events.emplace_back(*at, name + ": SIGKILL");
    if (auto at = Int(node, "ended_at")) {
      std::string how = !Text(node, "signal").empty()      ? "signal " + Text(node, "signal")
                        : !Text(node, "exit_code").empty() ? "exit code " + Text(node, "exit_code")
                                                           : "no exit status (crash recovery)";
      events.emplace_back(*at, name + ": ended, " + how + ", " + Text(node, "outcome"));
    }
  }
  if (auto at = Int(first, "completed_at")) {
    events.emplace_back(*at, "stop completed: " + Text(first, "status") + ", cost $" +
                                 Text(first, "final_cost_usd"));
  }
  std::stable_sort(events.begin(), events.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  out << "stop of execution " << id << " (stop_seq " << Text(first, "stop_seq") << ")\n";
  for (const auto& [at, line] : events) {
    std::string offset = "+" + std::to_string(at - t0) + " ms";
    out << offset << std::string(offset.size() < 12 ? 12 - offset.size() : 1, ' ') << line << "\n";
  }
  if (!not_started.empty()) {
    out << "not started: ";
    for (size_t i = 0; i < not_started.size(); ++i) out << (i ? ", " : "") << not_started[i];
    out << "\n";
  }
  if (!Int(first, "completed_at")) out << "(the stop is still running)\n";
  return Status::Ok();
}

}  // namespace warden::cli
