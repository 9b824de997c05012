// RequestTarget: an HTTP request target ("/api/executions/ID/events?after=3") split into
// decoded path segments and query parameters, for routing. The absolute form a client sends
// to a proxy ("http://host/api/health", RFC 9112 §3.2.2) names the same resource; its host
// is not checked (the socket already says which server this is).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace warden::api {

struct RequestTarget {
  std::string path;                          // as sent, not decoded: "/api/health"
  std::vector<std::string> segments;         // "/api/health" -> {"api", "health"}
  std::map<std::string, std::string> query;  // the last value of a repeated name wins

  // Splits `target` (origin form "/path?query", or absolute form "http://host/path?query"
  // with scheme http or https, in any case; a missing path is "/"); percent-escapes, and
  // '+' in the query, are decoded. InvalidArgument for any other target (authority form,
  // "*", another scheme) or a malformed escape.
  static Result<RequestTarget> Parse(std::string_view target);

  // The value of query parameter `name`, if present.
  std::optional<std::string_view> Param(const std::string& name) const;
};

}  // namespace warden::api
