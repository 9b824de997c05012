// HttpServer: HTTP/1.1 over a Unix socket (and optionally TCP) on the daemon's io thread,
// feeding every request to a RequestHandler. The only translation unit of the daemon that
// includes Boost.Beast.
//
// Per connection: keep-alive; one request at a time (a pipelined request waits for the
// previous answer); a deadline on reading each request (idle keep-alive time included) and
// on writing each answer; a body over the limit gets 413 and the connection is closed. Over
// the connection cap, a new connection gets 503 and is closed at once.
//
// The rules of RFC 9112 that only the wire shows are kept here, each answered as api.md says
// and followed by closing the connection: an HTTP/1.1 request without Host, or any with two,
// gets 400; a target over the limit 414; a Transfer-Encoding other than chunked 501. The
// answer to HEAD is the handler's answer to GET without its body (Content-Length kept).
//
// Requester: on the Unix socket "uid:UID pid:PID" of the peer (SO_PEERCRED, read at accept);
// on TCP "token:NAME" from `Authorization: Bearer TOKEN` (a request without a valid token
// gets 401 and nothing else happens). A TCP request also carries the listener's own names,
// against which the handler checks its Host (request_origin.h).
//
// Threading: the io thread only. Lifetime: destroy the server (which closes every
// connection and drops its event stream) before the handler and the manager.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "api/request_handler.h"
#include "base/status.h"

namespace warden::api {

struct ServerState;  // http_server.cc

struct ServerOptions {
  size_t max_body_bytes = 4u << 20;                 // larger bodies: 413
  size_t max_target_bytes = 8 * 1024;               // longer request targets: 414
  size_t max_connections = 1024;                    // open at once; more: 503 and closed
  std::chrono::milliseconds read_timeout{60'000};   // per request, idle keep-alive included
  std::chrono::milliseconds write_timeout{30'000};  // per answer or stream chunk
};

class HttpServer {
 public:
  HttpServer(boost::asio::io_context& io, RequestHandler& handler, ServerOptions options = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Accepts connections on `listening_fd`, a bound and listening AF_UNIX stream socket whose
  // ownership passes to the server (closed even on error).
  Status ServeUnix(int listening_fd);

  // Binds and listens on `address`:`port` (IPv4 or IPv6 literal). `tokens` maps token to
  // name (token_file.h). A non-loopback address is refused with InvalidArgument unless
  // `allow_remote`. IoError when the address cannot be bound.
  Status ServeTcp(const std::string& address, uint16_t port,
                  std::map<std::string, std::string> tokens, bool allow_remote);

  // Stops accepting and closes idle connections; a connection busy with a request closes
  // after its answer. `drained` runs (posted) once every connection is closed, or after
  // `deadline`, when whatever is left is closed.
  void Shutdown(std::chrono::milliseconds deadline, std::function<void()> drained);

  // Connections open now.
  size_t connections() const;

 private:
  std::shared_ptr<ServerState> state_;  // shared with the connections
};

}  // namespace warden::api
