// RequestTarget: an HTTP request target ("/api/executions/ID/events?after=3") split into
// decoded path segments and query parameters, for routing.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace warden::api {

struct RequestTarget {
  std::vector<std::string> segments;         // "/api/health" -> {"api", "health"}
  std::map<std::string, std::string> query;  // the last value of a repeated name wins

  // Splits `target` (origin form); percent-escapes and '+' in the query are decoded.
  // InvalidArgument for a target not starting with '/' or a malformed escape.
  static Result<RequestTarget> Parse(std::string_view target);

  // The value of query parameter `name`, if present.
  std::optional<std::string_view> Param(const std::string& name) const;
};

}  // namespace warden::api
