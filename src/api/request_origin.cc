#include "api/request_origin.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

#include "api/error_response.h"

namespace warden::api {

namespace {

std::string Lower(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower;
}

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && Lower(a) == Lower(b);
}

// "host:port" -> host and port text; "[::1]:80" -> "[::1]" and "80". No port: empty.
void SplitHostPort(std::string_view authority, std::string_view& host, std::string_view& port) {
  size_t colon = authority.rfind(':');
  size_t bracket = authority.rfind(']');
  if (colon == std::string_view::npos || (bracket != std::string_view::npos && colon < bracket)) {
    host = authority;
    port = {};
    return;
  }
  host = authority.substr(0, colon);
  port = authority.substr(colon + 1);
}

bool IsIpLiteral(std::string_view host) {
  unsigned char address[16];
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    std::string inner(host.substr(1, host.size() - 2));
    return inet_pton(AF_INET6, inner.c_str(), address) == 1;
  }
  return inet_pton(AF_INET, std::string(host).c_str(), address) == 1;
}

// `authority` without a port that merely repeats the scheme's default.
std::string WithoutDefaultPort(std::string_view authority, std::string_view default_port) {
  std::string_view host, port;
  SplitHostPort(authority, host, port);
  if (port == default_port) return Lower(host);
  return Lower(authority);
}

Response Forbidden(std::string_view why) {
  return HttpErrorResponse(403, "forbidden",
                           std::string(why) +
                               ": wardend answers only requests from its own origin (cross-site "
                               "requests are refused)");
}

}  // namespace

ListenerNames ListenerNames::Any() { return ListenerNames(); }

ListenerNames ListenerNames::ForTcp(std::string_view address, uint16_t port) {
  ListenerNames names;
  names.any_ = false;
  const std::string suffix = ":" + std::to_string(port);
  const bool v6 = address.find(':') != std::string_view::npos;
  names.names_.push_back(Lower(v6 ? "[" + std::string(address) + "]" : std::string(address)) +
                         suffix);
  for (const char* own : {"localhost", "127.0.0.1", "[::1]"}) {
    names.names_.push_back(own + suffix);
  }
  if (address == "0.0.0.0" || address == "::") names.any_ip_port_ = port;
  return names;
}

bool ListenerNames::Allows(std::string_view host) const {
  if (any_ || host.empty()) return true;
  const std::string lower = Lower(host);
  if (std::find(names_.begin(), names_.end(), lower) != names_.end()) return true;
  if (any_ip_port_) {
    std::string_view name, port;
    SplitHostPort(lower, name, port);
    return port == std::to_string(*any_ip_port_) && IsIpLiteral(name);
  }
  return false;
}

std::optional<Response> RefuseForeignRequest(const Request& request,
                                             const ListenerNames& listener) {
  if (!listener.Allows(request.host)) {
    return HttpErrorResponse(
        421, "misdirected_request",
        "Host '" + Excerpt(request.host) + "' is not a name of this wardend listener");
  }
  if (!request.sec_fetch_site.empty() &&
      !EqualsIgnoringCase(request.sec_fetch_site, "same-origin") &&
      !EqualsIgnoringCase(request.sec_fetch_site, "none")) {
    return Forbidden("Sec-Fetch-Site is '" + Excerpt(request.sec_fetch_site) + "'");
  }
  if (!request.origin.empty()) {
    std::string_view origin = request.origin;
    std::string_view default_port;
    if (EqualsIgnoringCase(origin.substr(0, 7), "http://")) {
      origin.remove_prefix(7);
      default_port = "80";
    } else if (EqualsIgnoringCase(origin.substr(0, 8), "https://")) {
      origin.remove_prefix(8);
      default_port = "443";
    } else {
      return Forbidden("Origin '" + Excerpt(request.origin) + "' is not this wardend's");
    }
    if (request.host.empty() || WithoutDefaultPort(origin, default_port) !=
                                    WithoutDefaultPort(request.host, default_port)) {
      return Forbidden("Origin '" + Excerpt(request.origin) + "' is not this wardend's (Host '" +
                       Excerpt(request.host) + "')");
    }
  }
  return std::nullopt;
}

}  // namespace warden::api
