// `warden audit stops|orphans` prints an audit view of the journal, and `warden audit stop
// ID` one stop as a timeline; the database is opened read-only.
#pragma once

#include <ostream>
#include <string>

#include "base/status.h"

namespace warden::cli {

// Prints the rows of view `view` ("stops" or "orphans") of the database at `db_path` as an
// aligned table (times as local time to the ms, text on one line and cut at 40 characters),
// or as a JSON array of the raw rows when `json` is set. InvalidArgument for another view
// name, IoError when the file cannot be opened or read.
Status PrintAudit(const std::string& db_path, const std::string& view, bool json,
                  std::ostream& out);

// Prints the stop of execution `id` (the request that began it) as a timeline, in ms from
// the request: each request (joined ones too), each node's SIGTERM, SIGKILL and end, the
// stop's completion; with `json`, {"stop": the stops row, "nodes": the stop_nodes rows}.
// NotFound when the execution has no stop, IoError when the file cannot be read.
Status PrintStopTimeline(const std::string& db_path, const std::string& id, bool json,
                         std::ostream& out);

}  // namespace warden::cli
