#include "audit.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <boost/json.hpp>
#include <vector>

namespace warden::cli {

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
        row.push_back(c.isNull() ? "-" : c.getString());
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
    out << boost::json::serialize(objects) << "\n";
    return Status::Ok();
  }
  std::vector<size_t> width(names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    width[i] = names[i].size();
    for (const auto& row : rows) width[i] = std::max(width[i], row[i].size());
  }
  auto print = [&](const std::vector<std::string>& cells) {
    for (size_t i = 0; i < cells.size(); ++i) {
      out << cells[i];
      if (i + 1 < cells.size()) out << std::string(width[i] - cells[i].size() + 2, ' ');
    }
    out << "\n";
  };
  print(names);
  for (const auto& row : rows) print(row);
  if (rows.empty()) out << "(no " << view << ")\n";
  return Status::Ok();
}

}  // namespace warden::cli
