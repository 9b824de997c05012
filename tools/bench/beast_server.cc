// beast_server: the reference HTTP server for wardend's API figures — Boost.Beast's async
// server example reduced to what a GET needs, on a Unix socket, one io_context thread (as
// wardend has), keep-alive, a deadline on each read (as the example and wardend have).
// Each TARGET answers 200 with the bytes of its FILE as an application/json body; any
// other target 404. SIGTERM or SIGINT stops it (and removes the socket file).
//
//   beast_server SOCKET TARGET=FILE [TARGET=FILE...]
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using Protocol = net::local::stream_protocol;
using Stream = beast::basic_stream<Protocol, net::any_io_executor, beast::unlimited_rate_policy>;

namespace {

using Bodies = std::map<std::string, std::string, std::less<>>;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Protocol::socket socket, const Bodies& bodies)
      : stream_(std::move(socket)), bodies_(bodies) {}

  void Read() {
    request_ = {};
    stream_.expires_after(std::chrono::seconds(60));
    http::async_read(stream_, buffer_, request_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (!ec) self->Answer();
                     });
  }

 private:
  void Answer() {
    auto found = bodies_.find(std::string_view(request_.target()));
    response_ = {};
    response_.version(request_.version());
    response_.keep_alive(request_.keep_alive());
    if (found == bodies_.end()) {
      response_.result(http::status::not_found);
    } else {
      response_.result(http::status::ok);
      response_.set(http::field::content_type, "application/json");
      response_.body() = found->second;
    }
    response_.prepare_payload();
    http::async_write(stream_, response_,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        if (!ec && self->response_.keep_alive()) self->Read();
                      });
  }

  Stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
  const Bodies& bodies_;
};

void Accept(Protocol::acceptor& acceptor, const Bodies& bodies) {
  acceptor.async_accept([&acceptor, &bodies](beast::error_code ec, Protocol::socket socket) {
    if (ec) return;
    std::make_shared<Session>(std::move(socket), bodies)->Read();
    Accept(acceptor, bodies);
  });
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s SOCKET TARGET=FILE [TARGET=FILE...]\n", argv[0]);
    return 64;
  }
  Bodies bodies;
  for (int i = 2; i < argc; ++i) {
    std::string pair = argv[i];
    size_t eq = pair.find('=');
    std::ifstream file(pair.substr(eq + 1), std::ios::binary);
    if (eq == std::string::npos || !file) {
      std::fprintf(stderr, "beast_server: bad TARGET=FILE: %s\n", argv[i]);
      return 64;
    }
    std::ostringstream text;
    text << file.rdbuf();
    bodies[pair.substr(0, eq)] = text.str();
  }
  net::io_context io(1);
  std::remove(argv[1]);
  Protocol::acceptor acceptor(io, Protocol::endpoint(argv[1]));
  acceptor.listen(net::socket_base::max_listen_connections);
  Accept(acceptor, bodies);
  net::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](beast::error_code, int) { io.stop(); });
  io.run();
  std::remove(argv[1]);
  return 0;
}
