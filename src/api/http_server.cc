#include "api/http_server.h"

#include <sys/socket.h>

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <deque>
#include <fstream>
#include <optional>
#include <unordered_set>

#include "api/error_response.h"
#include "api/request_origin.h"
#include "api/token_file.h"
#include "api/web_ui.h"

namespace warden::api {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Protocol = net::generic::stream_protocol;
using Stream = beast::basic_stream<Protocol, net::any_io_executor, beast::unlimited_rate_policy>;

class Session;

struct ServerState {
  ServerState(net::io_context& io, RequestHandler& handler, ServerOptions options)
      : io(io), handler(handler), options(options), drain_timer(io) {}

  void MaybeDrained() {
    if (!closing || !sessions.empty() || !drained) return;
    drain_timer.cancel();
    net::post(io, std::exchange(drained, nullptr));
  }

  net::io_context& io;
  RequestHandler& handler;
  const ServerOptions options;
  std::optional<net::local::stream_protocol::acceptor> unix_acceptor;
  std::optional<net::ip::tcp::acceptor> tcp_acceptor;
  std::map<std::string, std::string> tokens;       // TCP only
  std::shared_ptr<const ListenerNames> tcp_names;  // the Host names TCP answers to
  std::unordered_set<Session*> sessions;
  bool closing = false;
  std::function<void()> drained;
  net::steady_timer drain_timer;
};

namespace {

const std::string& TooManyConnectionsResponse() {
  static const std::string response = [] {
    std::string body =
        R"({"error":{"code":"unavailable","message":"too many connections to wardend"}})";
    return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
           "Connection: close\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  }();
  return response;
}

// Who is at the other end of a Unix socket, from the kernel (SO_PEERCRED), never from the
// request: "uid:UID pid:PID" and the process's name.
lifecycle::Requester Peer(int fd) {
  lifecycle::Requester peer;
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    peer.name = "uid:? pid:?";
    return peer;
  }
  peer.name = "uid:" + std::to_string(cred.uid) + " pid:" + std::to_string(cred.pid);
  std::ifstream comm("/proc/" + std::to_string(cred.pid) + "/comm");
  std::getline(comm, peer.comm);
  return peer;
}

// Every header field `field` of `message`, joined with ", " as RFC 9110 §5.3 allows.
std::string JoinedField(const http::request_header<>& message, http::field field) {
  std::string joined;
  for (auto [it, end] = message.equal_range(field); it != end; ++it) {
    if (!joined.empty()) joined += ", ";
    joined += it->value();
  }
  return joined;
}

// True if the Transfer-Encoding list `codings` is exactly "chunked", the one transfer coding
// wardend decodes (RFC 9112 §7).
bool IsChunkedOnly(std::string_view codings) {
  size_t count = 0;
  bool chunked = false;
  for (auto const& coding : http::token_list(codings)) {
    ++count;
    chunked = beast::iequals(coding, "chunked");
  }
  return count == 1 && chunked;
}

// The refusal of a request whose header alone rules it out (RFC 9112): a missing or repeated
// Host (400), a target over the limit (414), a transfer coding other than chunked, whose
// body cannot be read (501). Nothing when the header is acceptable.
std::optional<Response> RefuseHeader(const http::request_header<>& message,
                                     const ServerOptions& options) {
  auto hosts = message.count(http::field::host);
  if (hosts > 1) return HttpErrorResponse(400, "bad_request", "more than one Host header");
  if (hosts == 0 && message.version() >= 11) {
    return HttpErrorResponse(400, "bad_request", "an HTTP/1.1 request needs a Host header");
  }
  if (message.target().size() > options.max_target_bytes) {
    return HttpErrorResponse(414, "uri_too_long",
                             "the request target of " + std::to_string(message.target().size()) +
                                 " bytes is over the limit of " +
                                 std::to_string(options.max_target_bytes));
  }
  if (message.count(http::field::transfer_encoding) > 0) {
    std::string codings = JoinedField(message, http::field::transfer_encoding);
    if (!IsChunkedOnly(codings)) {
      return HttpErrorResponse(501, "not_implemented",
                               "Transfer-Encoding '" + Excerpt(codings) +
                                   "' is not implemented: send the body as it is, or chunked");
    }
  }
  return std::nullopt;
}

}  // namespace

// One connection. Kept alive by its pending operations (and by the responder of a request
// in progress); registered in ServerState::sessions while it exists.
class Session : public std::enable_shared_from_this<Session> {
 public:
  // `requester` set: a Unix socket peer. Empty: TCP, authenticated per request.
  Session(std::shared_ptr<ServerState> state, Protocol::socket socket,
          lifecycle::Requester requester)
      : state_(std::move(state)), stream_(std::move(socket)), requester_(std::move(requester)) {
    state_->sessions.insert(this);
  }
  ~Session() {
    state_->sessions.erase(this);
    state_->MaybeDrained();
  }

  void Run() { Read(); }

  // Closes now if waiting for a request, else after the answer in progress.
  void CloseWhenIdle() {
    if (reading_) Close();
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    body_stream_.reset();
    // A deadline left armed would wake the daemon once more, up to a minute after the
    // connection has gone.
    stream_.expires_never();
    beast::error_code ec;
    stream_.socket().shutdown(Protocol::socket::shutdown_both, ec);
    stream_.close();
  }

 private:
  void Read() {
    if (closed_) return;
    if (state_->closing) return Close();
    parser_.emplace();
    parser_->body_limit(state_->options.max_body_bytes);
    parser_->header_limit(kHeaderLimit);
    head_ = false;
    reading_ = true;
    stream_.expires_after(state_->options.read_timeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  // A request without a body is complete here (one read per request on the fast path). A
  // client that sent `Expect: 100-continue` (curl does, for bodies over 1 KiB) waits for
  // "100 Continue" before sending the body; a body over the limit was refused already, and
  // so is a request that the header alone rules out (the body is never read).
  void OnHeader(beast::error_code ec) {
    if (!ec) {
      version_ = parser_->get().version();
      head_ = parser_->get().method() == http::verb::head;
      if (auto refusal = RefuseHeader(parser_->get(), state_->options)) {
        reading_ = false;
        keep_alive_ = false;
        linger_ = true;
        return Send(std::move(*refusal));
      }
    }
    if (ec || parser_->is_done()) return OnRead(ec);
    if (beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      net::async_write(stream_, net::buffer(kContinue),
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         if (ec) return self->Close();
                         self->ReadBody();
                       });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    reading_ = false;
    if (closed_) return;
    if (ec == http::error::header_limit && TargetOverLimit()) {
      keep_alive_ = false;
      linger_ = true;
      return Send(HttpErrorResponse(414, "uri_too_long",
                                    "the request target is over the limit of " +
                                        std::to_string(state_->options.max_target_bytes) +
                                        " bytes"));
    }
    if (ec == http::error::body_limit) {
      keep_alive_ = false;
      linger_ = true;
      return Send(ErrorResponse(Status::TooLarge("request body is over the limit of " +
                                                 std::to_string(state_->options.max_body_bytes) +
                                                 " bytes")));
    }
    if (ec && ec.category() == beast::error_code(http::error::end_of_stream).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message) {
      keep_alive_ = false;
      linger_ = true;
      return Send(HttpErrorResponse(400, "bad_request", "malformed HTTP request: " + ec.message()));
    }
    if (ec) return Close();  // end of stream, timeout, reset
    stream_.expires_never();

    auto& message = parser_->get();
    keep_alive_ = message.keep_alive();
    Request request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    request.content_type = std::string(message[http::field::content_type]);
    request.content_encoding = JoinedField(message, http::field::content_encoding);
    request.host = std::string(message[http::field::host]);
    request.origin = JoinedField(message, http::field::origin);
    request.sec_fetch_site = std::string(message["Sec-Fetch-Site"]);
    request.if_none_match = JoinedField(message, http::field::if_none_match);
    request.body = std::move(message.body());
    if (!requester_.name.empty()) {
      request.requester = requester_;
    } else if (IsWebUiRead(request.method, request.target)) {
      // The UI's files hold no data: a browser loads them without a token, then the page
      // asks for one before it calls the API.
      request.requester.name = "anonymous";
      request.listener = state_->tcp_names;
    } else {
      std::string_view auth = message[http::field::authorization];
      std::string name;
      if (auth.size() > 7 && beast::iequals(auth.substr(0, 7), "Bearer ")) {
        name = TokenName(state_->tokens, auth.substr(7));
      }
      if (name.empty()) {
        return Send(HttpErrorResponse(401, "unauthorized",
                                      "a valid 'Authorization: Bearer TOKEN' header is required"));
      }
      request.requester.name = "token:" + name;
      request.listener = state_->tcp_names;
    }
    state_->handler.Handle(std::move(request), [self = shared_from_this()](Response response) {
      self->Send(std::move(response));
    });
  }

  void Send(Response response) {
    if (closed_) return;
    if (response.stream) return SendStream(std::move(response));
    response_.emplace(static_cast<http::status>(response.status), version_);
    response_->set(http::field::server, "wardend/" WARDEN_VERSION);
    response_->set(http::field::content_type, response.content_type);
    if (!response.allow.empty()) response_->set(http::field::allow, response.allow);
    if (!response.accept_encoding.empty()) {
      response_->set(http::field::accept_encoding, response.accept_encoding);
    }
    if (response.status == 401) response_->set(http::field::www_authenticate, "Bearer");
    // No answer may be framed by another page or read as another type than it says; the
    // UI's answers bring a fuller policy in `headers`.
    response_->set("Content-Security-Policy", "frame-ancestors 'none'");
    response_->set("X-Content-Type-Options", "nosniff");
    for (const auto& [name, value] : response.headers) response_->set(name, value);
    response_->keep_alive(keep_alive_ && !state_->closing);
    if (response.status == 304) {
      response_->content_length(boost::none);  // a 304 has no body, nor its length
    } else if (head_) {
      // The answer to HEAD is GET's, without the body but with its length (RFC 9110 §9.3.2).
      response_->content_length(response.body.size());
    } else {
      response_->body() = std::move(response.body);
      response_->prepare_payload();
    }
    stream_.expires_after(state_->options.write_timeout);
    http::async_write(
        stream_, *response_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnWritten(ec); });
  }

  // Whether a request whose header went over the limit did so with its target. The request
  // line may be incomplete, and then it is still in `buffer_`, unparsed.
  bool TargetOverLimit() const {
    const size_t limit = state_->options.max_target_bytes;
    std::string_view target = parser_->get().target();
    if (target.empty()) {
      auto data = buffer_.data();
      std::string_view line(static_cast<const char*>(data.data()), data.size());
      line = line.substr(0, line.find("\r\n"));
      size_t space = line.find(' ');
      if (space == std::string_view::npos) return false;
      target = line.substr(space + 1);
      target = target.substr(0, target.find(' '));
    }
    return target.size() > limit;
  }

  void OnWritten(beast::error_code ec) {
    stream_.expires_never();
    bool keep_alive = response_->keep_alive();
    response_.reset();
    if (!ec && linger_) return Linger();
    if (ec || !keep_alive) return Close();
    Read();
  }

  // After refusing a request whose body is still coming (413, 400): say no more, but read
  // and drop what the client still sends for a while, so that it gets to read the answer
  // instead of a connection reset.
  void Linger() {
    beast::error_code ignored;
    stream_.socket().shutdown(Protocol::socket::shutdown_send, ignored);
    stream_.expires_after(std::chrono::seconds(5));
    DrainSome();
  }
  void DrainSome() {
    if (!drain_buffer_) drain_buffer_ = std::make_unique<char[]>(kDrainBufferSize);
    stream_.async_read_some(net::buffer(drain_buffer_.get(), kDrainBufferSize),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (ec || self->closed_) return self->Close();
                              self->DrainSome();
                            });
  }

  // A chunked answer: the header now, then every chunk the stream produces, then the last
  // (empty) chunk. Meanwhile the socket is watched so that a client that goes away ends the
  // stream (and its subscription) at once, not at the next event. To HEAD, the header only:
  // the stream is dropped unstarted.
  void SendStream(Response response) {
    body_stream_ = std::move(response.stream);
    stream_header_.emplace(static_cast<http::status>(response.status), version_);
    stream_header_->set(http::field::server, "wardend/" WARDEN_VERSION);
    stream_header_->set(http::field::content_type, response.content_type);
    stream_header_->set("Content-Security-Policy", "frame-ancestors 'none'");
    stream_header_->set("X-Content-Type-Options", "nosniff");
    stream_header_->keep_alive(keep_alive_);
    stream_header_->chunked(true);
    serializer_.emplace(*stream_header_);
    writing_ = true;
    if (head_) {
      body_stream_.reset();
      stream_ended_ = last_chunk_sent_ = true;
    }
    stream_.expires_after(state_->options.write_timeout);
    http::async_write_header(
        stream_, *serializer_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnChunkWritten(ec); });
    if (head_) return;
    std::weak_ptr<Session> weak = weak_from_this();
    body_stream_->Start(
        [weak](std::string chunk) {
          if (auto self = weak.lock()) self->QueueChunk(std::move(chunk));
        },
        [weak] {
          if (auto self = weak.lock()) self->QueueEnd();
        });
    stream_.socket().async_wait(Protocol::socket::wait_read,
                                [self = shared_from_this()](beast::error_code ec) {
                                  // Readable while streaming: the client closed or sent
                                  // something it should not have; either way, done.
                                  if (!ec && self->body_stream_) self->Close();
                                });
  }

  void QueueChunk(std::string chunk) {
    if (closed_) return;
    chunks_ += chunk;
    if (!writing_) WriteNextChunk();
  }

  void QueueEnd() {
    if (closed_) return;
    stream_ended_ = true;
    if (!writing_) WriteNextChunk();
  }

  void WriteNextChunk() {
    auto done = [self = shared_from_this()](beast::error_code ec, size_t) {
      self->OnChunkWritten(ec);
    };
    stream_.expires_after(state_->options.write_timeout);
    if (!chunks_.empty()) {
      writing_ = true;
      chunk_in_flight_ = std::exchange(chunks_, {});
      net::async_write(stream_, http::make_chunk(net::buffer(chunk_in_flight_)), std::move(done));
    } else if (stream_ended_ && !last_chunk_sent_) {
      writing_ = true;
      last_chunk_sent_ = true;
      net::async_write(stream_, http::make_chunk_last(), std::move(done));
    }
  }

  void OnChunkWritten(beast::error_code ec) {
    writing_ = false;
    stream_.expires_never();
    if (closed_) return;
    if (ec) return Close();
    if (!last_chunk_sent_) return WriteNextChunk();
    // The stream is complete.
    body_stream_.reset();
    serializer_.reset();
    stream_header_.reset();
    chunk_in_flight_.clear();
    stream_ended_ = last_chunk_sent_ = false;
    beast::error_code ignored;
    stream_.socket().cancel(ignored);  // the readability watch
    if (!keep_alive_) return Close();
    Read();
  }

  std::shared_ptr<ServerState> state_;
  Stream stream_;
  const lifecycle::Requester requester_;             // empty name: TCP, authenticated per request
  static constexpr size_t kHeaderLimit = 16 * 1024;  // request line and fields
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> response_;
  bool reading_ = false;
  bool closed_ = false;
  bool keep_alive_ = true;
  bool linger_ = false;  // drain the rest of the request after answering (see Linger)
  static constexpr size_t kDrainBufferSize = 64 * 1024;
  std::unique_ptr<char[]> drain_buffer_;
  unsigned version_ = 11;
  bool head_ = false;  // the request being answered is a HEAD: no body goes out
  // Streaming (chunked) state.
  std::shared_ptr<ChunkStream> body_stream_;
  std::optional<http::response<http::empty_body>> stream_header_;
  std::optional<http::response_serializer<http::empty_body>> serializer_;
  std::string chunks_;           // produced, not yet written
  std::string chunk_in_flight_;  // being written
  bool writing_ = false;
  bool stream_ended_ = false;
  bool last_chunk_sent_ = false;
};

namespace {

// Refuses a connection over the cap with a fixed 503, then closes it.
void Refuse(Protocol::socket socket) {
  auto held = std::make_shared<Protocol::socket>(std::move(socket));
  net::async_write(*held, net::buffer(TooManyConnectionsResponse()),
                   [held](beast::error_code, size_t) {
                     beast::error_code ec;
                     held->shutdown(Protocol::socket::shutdown_both, ec);
                     held->close(ec);
                   });
}

void AdmitConnection(const std::shared_ptr<ServerState>& state, Protocol::socket socket,
                     lifecycle::Requester requester) {
  if (state->sessions.size() >= state->options.max_connections) return Refuse(std::move(socket));
  std::make_shared<Session>(state, std::move(socket), std::move(requester))->Run();
}

void AcceptUnix(std::shared_ptr<ServerState> state) {
  if (!state->unix_acceptor || state->closing) return;
  state->unix_acceptor->async_accept(
      [state](beast::error_code ec, net::local::stream_protocol::socket socket) {
        if (state->closing || !state->unix_acceptor) return;
        if (!ec) {
          int fd = socket.native_handle();
          lifecycle::Requester requester = Peer(fd);
          Protocol::socket generic(state->io, Protocol(AF_UNIX, 0), socket.release());
          AdmitConnection(state, std::move(generic), std::move(requester));
        } else if (ec == net::error::operation_aborted) {
          return;
        }
        AcceptUnix(state);
      });
}

void AcceptTcp(std::shared_ptr<ServerState> state) {
  if (!state->tcp_acceptor || state->closing) return;
  state->tcp_acceptor->async_accept([state](beast::error_code ec, net::ip::tcp::socket socket) {
    if (state->closing || !state->tcp_acceptor) return;
    if (!ec) {
      socket.set_option(net::ip::tcp::no_delay(true), ec);
      int family = socket.local_endpoint(ec).protocol().family();
      Protocol::socket generic(state->io, Protocol(family, IPPROTO_TCP), socket.release());
      AdmitConnection(state, std::move(generic), lifecycle::Requester{"", ""});
    } else if (ec == net::error::operation_aborted) {
      return;
    }
    AcceptTcp(state);
  });
}

}  // namespace

HttpServer::HttpServer(net::io_context& io, RequestHandler& handler, ServerOptions options)
    : state_(std::make_shared<ServerState>(io, handler, options)) {}

HttpServer::~HttpServer() {
  state_->closing = true;
  state_->drained = nullptr;
  beast::error_code ec;
  if (state_->unix_acceptor) state_->unix_acceptor->close(ec);
  if (state_->tcp_acceptor) state_->tcp_acceptor->close(ec);
  state_->drain_timer.cancel();
  // Connections may outlive the server inside pending handlers; make sure none of them can
  // call the handler or keep an event subscription from here on.
  for (Session* session : std::vector<Session*>(state_->sessions.begin(), state_->sessions.end())) {
    session->Close();
  }
}

Status HttpServer::ServeUnix(int listening_fd) {
  beast::error_code ec;
  state_->unix_acceptor.emplace(state_->io);
  state_->unix_acceptor->assign(net::local::stream_protocol(), listening_fd, ec);
  if (ec) {
    state_->unix_acceptor.reset();
    close(listening_fd);
    return Status::IoError("cannot serve the Unix socket: " + ec.message());
  }
  AcceptUnix(state_);
  return Status::Ok();
}

Status HttpServer::ServeTcp(const std::string& address, uint16_t port,
                            std::map<std::string, std::string> tokens, bool allow_remote) {
  beast::error_code ec;
  auto ip = net::ip::make_address(address, ec);
  if (ec) return Status::InvalidArgument("--listen: '" + address + "' is not an IP address");
  if (!ip.is_loopback() && !allow_remote) {
    return Status::InvalidArgument("--listen: " + address +
                                   " is not a loopback address; add --allow-remote to accept "
                                   "connections from other hosts");
  }
  if (tokens.empty()) return Status::InvalidArgument("--listen needs --token-file");
  net::ip::tcp::endpoint endpoint(ip, port);
  net::ip::tcp::acceptor acceptor(state_->io);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::IoError("cannot listen on " + address + ":" + std::to_string(port) + ": " +
                           ec.message());
  }
  state_->tokens = std::move(tokens);
  state_->tcp_names = std::make_shared<ListenerNames>(ListenerNames::ForTcp(address, port));
  state_->tcp_acceptor.emplace(std::move(acceptor));
  AcceptTcp(state_);
  return Status::Ok();
}

void HttpServer::Shutdown(std::chrono::milliseconds deadline, std::function<void()> drained) {
  state_->closing = true;
  state_->drained = std::move(drained);
  beast::error_code ec;
  if (state_->unix_acceptor) state_->unix_acceptor->close(ec);
  if (state_->tcp_acceptor) state_->tcp_acceptor->close(ec);
  for (Session* session : std::vector<Session*>(state_->sessions.begin(), state_->sessions.end())) {
    session->CloseWhenIdle();
  }
  state_->drain_timer.expires_after(deadline);
  state_->drain_timer.async_wait([weak = std::weak_ptr<ServerState>(state_)](beast::error_code ec) {
    auto state = weak.lock();
    if (ec || !state) return;
    for (Session* session : std::vector<Session*>(state->sessions.begin(), state->sessions.end())) {
      session->Close();
    }
    if (state->drained) net::post(state->io, std::exchange(state->drained, nullptr));
  });
  state_->MaybeDrained();
}

size_t HttpServer::connections() const { return state_->sessions.size(); }

}  // namespace warden::api
