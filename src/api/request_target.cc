#include "api/request_target.h"

#include <cctype>

namespace warden::api {

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> Decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      int hi = i + 2 < text.size() ? HexValue(text[i + 1]) : -1;
      int lo = hi >= 0 ? HexValue(text[i + 2]) : -1;
      if (lo < 0) {
        return Status::InvalidArgument("malformed percent-escape in request target");
      }
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

bool StartsWithNoCase(std::string_view text, std::string_view lower_prefix) {
  if (text.size() < lower_prefix.size()) return false;
  for (size_t i = 0; i < lower_prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) != lower_prefix[i]) return false;
  }
  return true;
}

// The rest of an absolute-form target after its scheme and authority ("/path?query", "?query"
// or ""), or nothing when `target` is not an http or https URL.
std::optional<std::string_view> AfterAuthority(std::string_view target) {
  size_t authority;
  if (StartsWithNoCase(target, "http://")) {
    authority = 7;
  } else if (StartsWithNoCase(target, "https://")) {
    authority = 8;
  } else {
    return std::nullopt;
  }
  size_t end = target.find_first_of("/?", authority);
  return end == std::string_view::npos ? std::string_view() : target.substr(end);
}

}  // namespace

Result<RequestTarget> RequestTarget::Parse(std::string_view target) {
  if (target.empty() || target.front() != '/') {
    auto rest = AfterAuthority(target);
    if (!rest) {
      return Status::InvalidArgument("request target must be a path ('/...') or an http URL");
    }
    target = *rest;
  }
  RequestTarget result;
  std::string_view path = target;
  std::string_view query;
  if (size_t q = target.find('?'); q != std::string_view::npos) {
    path = target.substr(0, q);
    query = target.substr(q + 1);
  }
  result.path = path.empty() ? "/" : std::string(path);
  size_t pos = 1;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view segment = path.substr(pos, slash - pos);
    if (!segment.empty()) {
      auto decoded = Decode(segment, false);
      if (!decoded.ok()) return decoded.status();
      result.segments.push_back(std::move(*decoded));
    }
    pos = slash + 1;
  }
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    auto name = Decode(pair.substr(0, eq), true);
    if (!name.ok()) return name.status();
    auto value = Decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true);
    if (!value.ok()) return value.status();
    result.query[std::move(*name)] = std::move(*value);
  }
  return result;
}

std::optional<std::string_view> RequestTarget::Param(const std::string& name) const {
  auto it = query.find(name);
  if (it == query.end()) return std::nullopt;
  return std::string_view(it->second);
}

}  // namespace warden::api
