// `warden audit stops|orphans`: prints an audit view of the journal, opened read-only.
#pragma once

#include <ostream>
#include <string>

#include "base/status.h"

namespace warden::cli {

// Prints the rows of view `view` ("stops" or "orphans") of the database at `db_path` as an
// aligned table, or as a JSON array of objects when `json` is set. InvalidArgument for
// another view name, IoError when the file cannot be opened or read.
Status PrintAudit(const std::string& db_path, const std::string& view, bool json,
                  std::ostream& out);

}  // namespace warden::cli
