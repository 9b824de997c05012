// RequestOrigin: whether a request may come from where it says it comes from, the defence
// against cross-site request forgery and DNS rebinding (api.md, "Requests").
//
// A browser page can make a request to wardend's TCP port (or, through a local proxy, its
// socket) on behalf of whoever runs the browser. It cannot choose the Host header, which names
// the page's own site, nor hide where it comes from: a browser sends `Origin` with every
// cross-origin POST and `Sec-Fetch-Site` with every request. So wardend answers only requests
// whose Host is one of the listener's own names, and whose Origin and Sec-Fetch-Site, when
// present, say "this very origin".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/http_message.h"

namespace warden::api {

// The Host values a listener answers to.
class ListenerNames {
 public:
  // Any Host (the Unix socket: only local processes reach it, and its path is no name a
  // browser page could make point at it).
  static ListenerNames Any();
  // A TCP listener on `address` (an IP literal, "127.0.0.1" or "::1", without brackets) and
  // `port`: "ADDRESS:PORT" ("[::1]:PORT" for IPv6), and "localhost", "127.0.0.1" and
  // "[::1]" with the port. A listener on every address ("0.0.0.0", "::") also answers to any
  // IP literal with the port: only a name can be rebound to another address.
  static ListenerNames ForTcp(std::string_view address, uint16_t port);

  // True if a request whose Host header is `host` (empty: none, as HTTP/1.0 may send) is
  // meant for this listener. Names compare without regard to case.
  bool Allows(std::string_view host) const;

 private:
  bool any_ = true;
  std::vector<std::string> names_;  // lower case, "host:port"
  std::optional<uint16_t> any_ip_port_;
};

// The refusal of a request that another site or another name sent, or nothing:
//   421 misdirected_request  Host is not one of `listener`'s names;
//   403 forbidden            `Sec-Fetch-Site` is present and neither "same-origin" nor
//                            "none", or `Origin` is present and is not "http://HOST" or
//                            "https://HOST" for the request's own Host.
std::optional<Response> RefuseForeignRequest(const Request& request, const ListenerNames& listener);

}  // namespace warden::api
