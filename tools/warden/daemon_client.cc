#include "daemon_client.h"

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <optional>

namespace warden::cli {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Socket = net::local::stream_protocol::socket;

namespace {

http::request<http::string_body> MakeRequest(std::string_view method, std::string_view target,
                                             std::string_view body) {
  http::request<http::string_body> request;
  request.method_string(method);
  request.target(target);
  request.version(11);
  request.set(http::field::host, "wardend");
  request.set(http::field::user_agent, "warden/" WARDEN_VERSION);
  if (!body.empty() || method == "POST") {
    request.set(http::field::content_type, "application/json");
    request.body() = std::string(body);
  }
  request.keep_alive(false);
  request.prepare_payload();
  return request;
}

}  // namespace

Status CannotConnect(const std::string& socket_path, std::string_view reason) {
  return Status::Unavailable("cannot connect to wardend at " + socket_path + ": " +
                             std::string(reason));
}

std::string ErrorMessage(const HttpReply& reply) {
  boost::system::error_code ec;
  auto body = boost::json::parse(reply.body, ec);
  if (!ec && body.is_object()) {
    if (const auto* error = body.as_object().if_contains("error"); error && error->is_object()) {
      if (const auto* message = error->as_object().if_contains("message");
          message && message->is_string()) {
        return std::string(message->as_string());
      }
    }
  }
  std::string text = reply.body;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text.empty() ? "HTTP " + std::to_string(reply.status) : text;
}

namespace {

// One request and its whole answer, asynchronously on the io_context it was made with.
class BeastCall final : public std::enable_shared_from_this<BeastCall> {
 public:
  BeastCall(net::io_context& io, std::string socket_path, http::request<http::string_body> request,
            std::function<void(Result<HttpReply>)> on_reply)
      : socket_(io),
        socket_path_(std::move(socket_path)),
        request_(std::move(request)),
        on_reply_(std::move(on_reply)) {
    parser_.body_limit(boost::none);
  }

  void Run() {
    socket_.async_connect(net::local::stream_protocol::endpoint(socket_path_),
                          [self = shared_from_this()](beast::error_code ec) {
                            if (ec) return self->Fail(ec.message());
                            self->Send();
                          });
  }

 private:
  void Send() {
    http::async_write(socket_, request_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->Fail(ec.message());
      http::async_read(self->socket_, self->buffer_, self->parser_,
                       [self](beast::error_code ec, size_t) { self->OnRead(ec); });
    });
  }

  void OnRead(beast::error_code ec) {
    if (ec) return Fail("the connection broke: " + ec.message());
    auto& response = parser_.get();
    HttpReply reply;
    reply.status = static_cast<int>(response.result_int());
    reply.content_type = std::string(response[http::field::content_type]);
    reply.body = std::move(response.body());
    Close();
    on_reply_(std::move(reply));
  }

  void Fail(const std::string& reason) {
    Close();
    on_reply_(CannotConnect(socket_path_, reason));
  }

  void Close() {
    beast::error_code ignored;
    socket_.close(ignored);
  }

  Socket socket_;
  std::string socket_path_;
  http::request<http::string_body> request_;
  beast::flat_buffer buffer_;
  http::response_parser<http::string_body> parser_;
  std::function<void(Result<HttpReply>)> on_reply_;
};

}  // namespace

void DaemonClient::AsyncCall(net::io_context& io, std::string_view method, std::string_view target,
                             std::string_view body,
                             std::function<void(Result<HttpReply>)> on_reply) const {
  std::make_shared<BeastCall>(io, socket_path_, MakeRequest(method, target, body),
                              std::move(on_reply))
      ->Run();
}

Result<HttpReply> DaemonClient::Call(std::string_view method, std::string_view target,
                                     std::string_view body) const {
  // Blocking socket calls would fail with EINTR when a signal comes (warden run catches
  // SIGINT and SIGTERM): an event loop of its own waits through signals instead.
  net::io_context io;
  std::optional<Result<HttpReply>> result;
  AsyncCall(io, method, target, body,
            [&result](Result<HttpReply> reply) { result.emplace(std::move(reply)); });
  io.run();
  return std::move(*result);
}

namespace {

class BeastLineStream final : public LineStream,
                              public std::enable_shared_from_this<BeastLineStream> {
 public:
  BeastLineStream(net::io_context& io, std::string socket_path, std::string target,
                  std::function<void(std::string_view)> on_line, std::function<void(Status)> on_end)
      : socket_(io),
        socket_path_(std::move(socket_path)),
        request_(MakeRequest("GET", target, {})),
        on_line_(std::move(on_line)),
        on_end_(std::move(on_end)) {}

  void Run() {
    socket_.async_connect(net::local::stream_protocol::endpoint(socket_path_),
                          [self = shared_from_this()](beast::error_code ec) {
                            if (ec)
                              return self->End(CannotConnect(self->socket_path_, ec.message()));
                            self->Send();
                          });
  }

  void Cancel() override {
    cancelled_ = true;
    beast::error_code ec;
    socket_.close(ec);
  }

 private:
  void Send() {
    http::async_write(socket_, request_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->End(CannotConnect(self->socket_path_, ec.message()));
      self->parser_.body_limit(boost::none);
      self->parser_.on_chunk_body(self->chunk_callback_);
      self->ReadSome();
    });
  }

  void ReadSome() {
    http::async_read_some(
        socket_, buffer_, parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (cancelled_) return;
    if (ec) {
      return End(CannotConnect(socket_path_, "the event stream broke: " + ec.message()));
    }
    if (!parser_.is_done()) return ReadSome();
    auto& response = parser_.get();
    if (response.result_int() != 200) {
      HttpReply reply{static_cast<int>(response.result_int()), "", response.body()};
      int status = reply.status;
      return End(Status(status == 404   ? StatusCode::kNotFound
                        : status == 409 ? StatusCode::kConflict
                                        : StatusCode::kInvalidArgument,
                        ErrorMessage(reply)));
    }
    if (!partial_.empty()) on_line_(partial_);
    End(Status::Ok());
  }

  size_t OnChunk(std::uint64_t, std::string_view data, beast::error_code&) {
    for (char c : data) {
      if (c != '\n') {
        partial_ += c;
        continue;
      }
      if (!cancelled_) on_line_(partial_);
      partial_.clear();
    }
    return data.size();
  }

  void End(Status status) {
    if (cancelled_ || ended_) return;
    ended_ = true;
    beast::error_code ignored;
    socket_.close(ignored);
    on_end_(std::move(status));
  }

  Socket socket_;
  std::string socket_path_;
  http::request<http::string_body> request_;
  beast::flat_buffer buffer_;
  http::response_parser<http::string_body> parser_;
  std::function<size_t(std::uint64_t, std::string_view, beast::error_code&)> chunk_callback_ =
      [this](std::uint64_t remain, std::string_view data, beast::error_code& ec) {
        return OnChunk(remain, data, ec);
      };
  std::string partial_;
  std::function<void(std::string_view)> on_line_;
  std::function<void(Status)> on_end_;
  bool cancelled_ = false;
  bool ended_ = false;
};

}  // namespace

std::shared_ptr<LineStream> LineStream::Start(net::io_context& io, const std::string& socket_path,
                                              std::string target,
                                              std::function<void(std::string_view)> on_line,
                                              std::function<void(Status)> on_end) {
  auto stream = std::make_shared<BeastLineStream>(io, socket_path, std::move(target),
                                                  std::move(on_line), std::move(on_end));
  stream->Run();
  return stream;
}

}  // namespace warden::cli
