// Human-readable output of the CLI: tables of executions and nodes, stop summaries, the
// progress line of `warden run`, event lines. Input is the daemon's JSON (api.md shapes);
// missing or null fields print as "-".
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace warden::cli {

// Columns aligned on the widest cell, two spaces apart.
class Table {
 public:
  explicit Table(std::vector<std::string> headers) : rows_{std::move(headers)} {}
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void Print(std::ostream& out) const;

 private:
  std::vector<std::vector<std::string>> rows_;  // the first one is the header
};

// "$0.0132" (4 decimals; more for tiny amounts).
std::string FormatCost(double usd);
// "850ms", "5.1s", "2m03s", "1h02m".
std::string FormatDuration(int64_t ms);
// Local time with ms: "2025-11-24 16:00:00.123".
std::string FormatTimestamp(int64_t ms);

// `warden ps`: one line per execution (ID, NAME, STATUS, COMPLETED nodes/total, COST, AGE).
void PrintExecutionList(const boost::json::value& executions, std::ostream& out);
// `warden show`: the execution's fields, then a table of its nodes.
void PrintExecution(const boost::json::value& execution, std::ostream& out);
// A StopResponse: "execution ID stopped (user_abort) after 5.1s: 3 of 7 nodes completed,
// 0 failed, cost $0.0132".
void PrintStopResult(const boost::json::value& stop, std::ostream& out);
// One journal row: "SEQ  HH:MM:SS.mmm  NODE#ATTEMPT  KIND  PAYLOAD".
std::string FormatEvent(const boost::json::value& event);

// Counts of an execution's nodes for the progress line.
struct Progress {
  int done = 0;       // succeeded, failed, skipped, stopped, lost, unkillable
  int completed = 0;  // succeeded
  int running = 0;
  int total = 0;
  double cost_usd = 0;
  std::string status;
};
Progress ProgressOf(const boost::json::value& execution);
// "3/10 done, 2 running, $0.0132".
std::string FormatProgress(const Progress& progress);

}  // namespace warden::cli
