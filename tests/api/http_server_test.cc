// HttpServer on a real Unix socket, in process: keep-alive, the connection cap, the read
// deadline, malformed requests, what RFC 9110/9112 ask of a server (HEAD, Host, long targets,
// codings), streams that end when the client goes, and the drain at shutdown. The server runs on
// its io thread; the test talks plain sockets from its own.
#include "api/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cstring>
#include <filesystem>
#include <future>
#include <sstream>
#include <thread>

#include "fake_process_runner.h"
#include "journal/journal.h"
#include "lifecycle/execution_manager.h"

namespace warden::api {
namespace {

using namespace std::chrono_literals;

class HttpServerTest : public testing::Test {
 protected:
  void Start(ServerOptions options) {
    auto journal = journal::Journal::Open(dir_ + "/warden.db");
    ASSERT_TRUE(journal.ok());
    journal_ = std::move(*journal);
    runner_ = std::make_unique<lifecycle_test::FakeProcessRunner>(io_);
    manager_ = std::make_unique<lifecycle::ExecutionManager>(io_, *journal_, *runner_);
    handler_ = std::make_unique<RequestHandler>(io_, *manager_, metrics_);
    server_ = std::make_unique<HttpServer>(io_, *handler_, options);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un address = Address();
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    ASSERT_EQ(listen(fd, 64), 0);
    ASSERT_TRUE(server_->ServeUnix(fd).ok());
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    if (thread_.joinable()) {
      // Nothing may be left running (the fake trees would outlive their manager).
      std::promise<void> stopped;
      OnIo([&] { manager_->StopAll(true, [&] { stopped.set_value(); }); });
      EXPECT_EQ(stopped.get_future().wait_for(5s), std::future_status::ready);
      OnIo([this] { server_.reset(); });
      work_.reset();
      io_.stop();
      thread_.join();
    }
    server_.reset();
    handler_.reset();
    manager_.reset();
    runner_.reset();
    journal_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Runs `fn` on the io thread and waits for it.
  void OnIo(std::function<void()> fn) {
    std::promise<void> done;
    boost::asio::post(io_, [&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }

  sockaddr_un Address() const {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strcpy(address.sun_path, (dir_ + "/s.sock").c_str());
    return address;
  }
  int Connect() {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address = Address();
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    timeval timeout{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    return fd;
  }
  static void Send(int fd, const std::string& text) {
    ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  }
  // Reads one response with a Content-Length body; "" on EOF or timeout.
  static std::string ReadResponse(int fd) {
    std::string text;
    char c;
    while (text.find("\r\n\r\n") == std::string::npos) {
      if (read(fd, &c, 1) != 1) return text;
      text += c;
    }
    size_t at = text.find("Content-Length: ");
    size_t length = at == std::string::npos ? 0 : std::stoul(text.substr(at + 16));
    std::string body(length, '\0');
    size_t got = 0;
    while (got < length) {
      ssize_t n = read(fd, body.data() + got, length - got);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    return text + body.substr(0, got);
  }
  // Reads the status line and header fields of one response, and nothing more.
  static std::string ReadHead(int fd) {
    std::string text;
    char c;
    while (text.find("\r\n\r\n") == std::string::npos) {
      if (read(fd, &c, 1) != 1) return text;
      text += c;
    }
    return text;
  }
  // The value of header field `name` in `response` ("" when absent).
  static std::string Field(const std::string& response, const std::string& name) {
    size_t at = response.find("\r\n" + name + ": ");
    if (at == std::string::npos || at > response.find("\r\n\r\n")) return "";
    at += name.size() + 4;
    return response.substr(at, response.find("\r\n", at) - at);
  }
  // Sends `request` on a new connection; returns the one response to it.
  std::string Exchange(const std::string& request) {
    int fd = Connect();
    Send(fd, request);
    std::string response = ReadResponse(fd);
    close(fd);
    return response;
  }
  // True if the server closed `fd` within `limit`.
  static bool ClosedWithin(int fd, std::chrono::milliseconds limit) {
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(limit.count())) <= 0) return false;
    char c;
    return read(fd, &c, 1) == 0;
  }
  // Waits (5 s at most) until `predicate` holds.
  static bool Eventually(const std::function<bool()>& predicate) {
    for (int i = 0; i < 500; ++i) {
      if (predicate()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return predicate();
  }
  size_t Connections() {
    size_t n = 0;
    OnIo([&] { n = server_->connections(); });
    return n;
  }

  const std::string kHealth = "GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n";
  std::string dir_ = [] {
    std::string tmpl = (std::filesystem::temp_directory_path() / "api-server-XXXXXX").string();
    return std::string(mkdtemp(tmpl.data()));
  }();
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      io_.get_executor()};
  std::thread thread_;
  DaemonMetrics metrics_;
  std::unique_ptr<journal::Journal> journal_;
  std::unique_ptr<lifecycle_test::FakeProcessRunner> runner_;
  std::unique_ptr<lifecycle::ExecutionManager> manager_;
  std::unique_ptr<RequestHandler> handler_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, KeepAliveAnswersManyRequestsOnOneConnection) {
  Start({});
  int fd = Connect();
  for (int i = 0; i < 3; ++i) {
    Send(fd, kHealth);
    std::string response = ReadResponse(fd);
    EXPECT_EQ(response.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << response;
    EXPECT_NE(response.find("\"status\":\"ok\""), std::string::npos) << response;
  }
  Send(fd, "GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(ReadResponse(fd).rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_TRUE(ClosedWithin(fd, 2s)) << "Connection: close is honoured";
  close(fd);
}

TEST_F(HttpServerTest, ConnectionsOverTheCapGet503AndAreClosed) {
  ServerOptions options;
  options.max_connections = 2;
  Start(options);
  int a = Connect(), b = Connect();
  ASSERT_TRUE(Eventually([&] { return Connections() == 2; }));
  int c = Connect();
  std::string refused = ReadResponse(c);
  EXPECT_EQ(refused.rfind("HTTP/1.1 503", 0), 0u) << refused;
  EXPECT_NE(refused.find("too many connections"), std::string::npos);
  close(c);
  close(a);
  ASSERT_TRUE(Eventually([&] { return Connections() == 1; }));
  int d = Connect();
  Send(d, kHealth);
  EXPECT_EQ(ReadResponse(d).rfind("HTTP/1.1 200", 0), 0u) << "a slot freed up";
  close(b);
  close(d);
}

TEST_F(HttpServerTest, ReadDeadlineClosesASilentConnection) {
  ServerOptions options;
  options.read_timeout = 200ms;
  Start(options);
  int idle = Connect();
  int partial = Connect();
  Send(partial, "GET /api/health HTTP/1.1\r\nHo");  // and never the rest
  EXPECT_TRUE(ClosedWithin(idle, 3s));
  EXPECT_TRUE(ClosedWithin(partial, 3s));
  close(idle);
  close(partial);
}

TEST_F(HttpServerTest, MalformedRequestGets400AndOversizedBody413) {
  ServerOptions options;
  options.max_body_bytes = 1000;
  Start(options);
  int fd = Connect();
  Send(fd, "THIS IS NOT HTTP\r\n\r\n");
  std::string bad = ReadResponse(fd);
  EXPECT_EQ(bad.rfind("HTTP/1.1 400", 0), 0u) << bad;
  close(fd);
  fd = Connect();
  Send(fd,
       "POST /api/executions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
       "Content-Length: 5000\r\n\r\n" +
           std::string(5000, ' '));
  std::string big = ReadResponse(fd);
  EXPECT_EQ(big.rfind("HTTP/1.1 413", 0), 0u) << big;
  EXPECT_NE(big.find("\"code\":\"too_large\""), std::string::npos) << big;
  close(fd);
}

TEST_F(HttpServerTest, HeadGetsTheHeaderOfGetWithoutTheBody) {
  Start({});
  int fd = Connect();
  Send(fd, "HEAD /api/health HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string head = ReadHead(fd);
  Send(fd, kHealth);
  std::string get = ReadResponse(fd);
  EXPECT_EQ(head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << head;
  EXPECT_EQ(get.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << get << "\n(no stray body after the HEAD)";
  EXPECT_EQ(Field(head, "Content-Type"), "application/json");
  std::string body = get.substr(get.find("\r\n\r\n") + 4);
  EXPECT_EQ(Field(head, "Content-Length"), std::to_string(body.size())) << head;
  EXPECT_EQ(Field(head, "Content-Length"), Field(get, "Content-Length"));

  // An error is the same: its length, not its body.
  Send(fd, "HEAD /api/executions/none HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string missing = ReadHead(fd);
  EXPECT_EQ(missing.rfind("HTTP/1.1 404", 0), 0u) << missing;
  EXPECT_NE(Field(missing, "Content-Length"), "0") << missing;

  // A stream: its header (chunked) and not one chunk, not even the last.
  std::string id;
  OnIo([&] {
    auto created = manager_->Create(R"({"nodes":[{"id":"a","argv":["x"]}]})", {}, true);
    ASSERT_TRUE(created.ok());
    id = created->execution.id;
  });
  Send(fd, "HEAD /api/executions/" + id + "/events?follow=true HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string stream = ReadHead(fd);
  EXPECT_EQ(stream.rfind("HTTP/1.1 200", 0), 0u) << stream;
  EXPECT_EQ(Field(stream, "Transfer-Encoding"), "chunked") << stream;
  EXPECT_EQ(Field(stream, "Content-Type"), "application/x-ndjson") << stream;
  Send(fd, kHealth);
  std::string after = ReadResponse(fd);
  EXPECT_EQ(after.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << after;
  close(fd);
  OnIo([&] { runner_->Exit("a", 0); });
}

TEST_F(HttpServerTest, OnTcpTheUiFilesNeedNoTokenButEveryApiCallDoes) {
  Start({});
  // A free port: bound, read back and released.
  int probe = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in any{};
  any.sin_family = AF_INET;
  any.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof any;
  ASSERT_EQ(bind(probe, reinterpret_cast<sockaddr*>(&any), sizeof any), 0);
  ASSERT_EQ(getsockname(probe, reinterpret_cast<sockaddr*>(&any), &length), 0);
  const uint16_t port = ntohs(any.sin_port);
  close(probe);
  Status served;
  OnIo([&] { served = server_->ServeTcp("127.0.0.1", port, {{"s3cret", "alice"}}, false); });
  ASSERT_TRUE(served.ok()) << served.ToString();
  auto exchange = [&](const std::string& request) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address = any;
    address.sin_port = htons(port);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    timeval timeout{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    Send(fd, request);
    std::string response = ReadResponse(fd);
    close(fd);
    return response;
  };
  const std::string host = "Host: 127.0.0.1:" + std::to_string(port) + "\r\n";
  std::string page = exchange("GET / HTTP/1.1\r\n" + host + "\r\n");
  EXPECT_EQ(page.rfind("HTTP/1.1 200", 0), 0u) << page;
  EXPECT_EQ(Field(page, "Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(Field(page, "Content-Security-Policy").find("frame-ancestors 'none'"),
            std::string::npos);
  EXPECT_EQ(Field(page, "X-Content-Type-Options"), "nosniff");
  const std::string etag = Field(page, "ETag");
  ASSERT_FALSE(etag.empty()) << page;
  std::string cached =
      exchange("GET / HTTP/1.1\r\n" + host + "If-None-Match: " + etag + "\r\n\r\n");
  EXPECT_EQ(cached.rfind("HTTP/1.1 304", 0), 0u) << cached;
  EXPECT_EQ(cached.substr(cached.find("\r\n\r\n") + 4), "");
  std::string script = exchange("HEAD /ui/app.js HTTP/1.1\r\n" + host + "\r\n");
  EXPECT_EQ(script.rfind("HTTP/1.1 200", 0), 0u) << script;
  // The Host allowlist holds for the files too.
  EXPECT_EQ(exchange("GET / HTTP/1.1\r\nHost: evil.example:" + std::to_string(port) + "\r\n\r\n")
                .rfind("HTTP/1.1 421", 0),
            0u);
  // Everything else needs the token: data, a POST to a UI path, a path that is no UI file.
  for (std::string line :
       {"GET /api/executions", "GET /api/health", "POST /", "GET /ui/secret", "GET /metrics"}) {
    std::string refused = exchange(line + " HTTP/1.1\r\n" + host +
                                   "Content-Type: application/json\r\nContent-Length: 0\r\n\r\n");
    EXPECT_EQ(refused.rfind("HTTP/1.1 401", 0), 0u) << line << "\n" << refused;
  }
  std::string api =
      exchange("GET /api/executions HTTP/1.1\r\n" + host + "Authorization: Bearer s3cret\r\n\r\n");
  EXPECT_EQ(api.rfind("HTTP/1.1 200", 0), 0u) << api;
  EXPECT_EQ(Field(api, "Content-Security-Policy"), "frame-ancestors 'none'");
  EXPECT_EQ(Field(api, "X-Content-Type-Options"), "nosniff");
}

TEST_F(HttpServerTest, Http11WithoutHostOrWithTwoGets400ButHttp10NeedsNone) {
  Start({});
  int fd = Connect();
  Send(fd, "GET /api/health HTTP/1.1\r\n\r\n");
  std::string missing = ReadResponse(fd);
  EXPECT_EQ(missing.rfind("HTTP/1.1 400", 0), 0u) << missing;
  EXPECT_NE(missing.find("\"code\":\"bad_request\""), std::string::npos) << missing;
  EXPECT_NE(missing.find("Host"), std::string::npos) << missing;
  EXPECT_TRUE(ClosedWithin(fd, 2s));
  close(fd);
  std::string twice = Exchange("GET /api/health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
  EXPECT_EQ(twice.rfind("HTTP/1.1 400", 0), 0u) << twice;
  std::string old = Exchange("GET /api/health HTTP/1.0\r\n\r\n");
  EXPECT_EQ(old.rfind("HTTP/1.0 200", 0), 0u) << old;
  // The body of a refused request is not taken for the next request.
  fd = Connect();
  Send(fd, "POST /api/executions HTTP/1.1\r\nContent-Length: 40\r\n\r\n" +
               std::string("GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n").substr(0, 40));
  EXPECT_EQ(ReadResponse(fd).rfind("HTTP/1.1 400", 0), 0u);
  EXPECT_TRUE(ClosedWithin(fd, 2s));
  close(fd);
}

TEST_F(HttpServerTest, AbsoluteFormTargetIsServed) {
  Start({});
  std::string response =
      Exchange("GET http://wardend.example/api/health HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(response.rfind("HTTP/1.1 200", 0), 0u) << response;
  EXPECT_NE(response.find("\"status\":\"ok\""), std::string::npos) << response;
}

TEST_F(HttpServerTest, OverLongTargetGets414WithoutBeingQuoted) {
  Start({});
  // Over the target limit (8 KiB), within the header limit; then over the header limit
  // (16 KiB), where the request line is not even complete when the server gives up.
  for (size_t length : {9'000u, 40'000u}) {
    std::string id(length, 'x');
    int fd = Connect();
    Send(fd, "GET /api/executions/" + id + " HTTP/1.1\r\nHost: x\r\n\r\n");
    std::string response = ReadResponse(fd);
    EXPECT_EQ(response.rfind("HTTP/1.1 414", 0), 0u) << length << ": " << response.substr(0, 200);
    EXPECT_NE(response.find("\"code\":\"uri_too_long\""), std::string::npos) << response;
    EXPECT_LT(response.size(), 500u) << "the target is not echoed";
    EXPECT_TRUE(ClosedWithin(fd, 2s));
    close(fd);
  }
  std::string at_limit = Exchange("GET /api/executions/" + std::string(8 * 1024 - 20, 'x') +
                                  " HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(at_limit.rfind("HTTP/1.1 404", 0), 0u) << at_limit.substr(0, 200);
  EXPECT_LT(at_limit.size(), 500u) << "the id is not echoed whole";
  // Headers over their limit with a short target are not a target problem.
  std::string fields = Exchange(
      "GET /api/health HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(20'000, 'p') + "\r\n\r\n");
  EXPECT_EQ(fields.rfind("HTTP/1.1 400", 0), 0u) << fields.substr(0, 200);
}

TEST_F(HttpServerTest, TransferCodingOtherThanChunkedGets501AndTheConnectionCloses) {
  Start({});
  std::string spec = R"({"nodes":[{"id":"a","argv":["x"]}]})";
  for (const char* coding : {"gzip", "gzip, chunked", "chunked, chunked", "identity"}) {
    int fd = Connect();
    Send(fd, std::string("POST /api/executions HTTP/1.1\r\nHost: x\r\n") +
                 "Content-Type: application/json\r\nTransfer-Encoding: " + coding + "\r\n\r\n" +
                 spec);
    std::string response = ReadResponse(fd);
    EXPECT_EQ(response.rfind("HTTP/1.1 501", 0), 0u) << coding << ": " << response;
    EXPECT_NE(response.find("\"code\":\"not_implemented\""), std::string::npos) << response;
    EXPECT_TRUE(ClosedWithin(fd, 2s)) << coding;
    close(fd);
  }
  std::string chunked = Exchange(
      "POST /api/executions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Transfer-Encoding: Chunked\r\n\r\n" +
      [&] {
        std::ostringstream hex;
        hex << std::hex << spec.size();
        return hex.str();
      }() +
      "\r\n" + spec + "\r\n0\r\n\r\n");
  EXPECT_EQ(chunked.rfind("HTTP/1.1 201", 0), 0u) << chunked;
  size_t active = 0;
  OnIo([&] { active = manager_->active_count(); });
  EXPECT_EQ(active, 1u) << "only the chunked create made an execution";
  OnIo([&] { runner_->Exit("a", 0); });
}

TEST_F(HttpServerTest, CodedBodyGets415WithAcceptEncoding) {
  Start({});
  std::string body = "\x1f\x8b not really gzip";
  int fd = Connect();
  Send(fd,
       "POST /api/executions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
       "Content-Encoding: gzip\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body);
  std::string response = ReadResponse(fd);
  EXPECT_EQ(response.rfind("HTTP/1.1 415", 0), 0u) << response;
  EXPECT_EQ(Field(response, "Accept-Encoding"), "identity") << response;
  EXPECT_NE(response.find("\"code\":\"unsupported_media_type\""), std::string::npos);
  Send(fd, kHealth);
  EXPECT_EQ(ReadResponse(fd).rfind("HTTP/1.1 200", 0), 0u) << "the body was read: keep-alive";
  close(fd);
}

TEST_F(HttpServerTest, UnknownMethodGets501AndAWrongOneGets405WithAllow) {
  Start({});
  int fd = Connect();
  Send(fd, "BREW /api/health HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string brew = ReadResponse(fd);
  EXPECT_EQ(brew.rfind("HTTP/1.1 501", 0), 0u) << brew;
  EXPECT_NE(brew.find("\"code\":\"not_implemented\""), std::string::npos) << brew;
  Send(fd, "DELETE /api/executions HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string wrong = ReadResponse(fd);
  EXPECT_EQ(wrong.rfind("HTTP/1.1 405", 0), 0u) << wrong;
  EXPECT_EQ(Field(wrong, "Allow"), "GET, HEAD, POST") << wrong;
  close(fd);
}

TEST_F(HttpServerTest, ExpectContinueGets100BeforeTheBodyIsSent) {
  Start({});
  std::string body = R"({"nodes":[{"id":"a","argv":["x"]}]})";
  int fd = Connect();
  Send(fd,
       "POST /api/executions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
       "Expect: 100-continue\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n");
  EXPECT_EQ(ReadResponse(fd), "HTTP/1.1 100 Continue\r\n\r\n");
  Send(fd, body);
  std::string created = ReadResponse(fd);
  EXPECT_EQ(created.rfind("HTTP/1.1 201", 0), 0u) << created;
  close(fd);
}

TEST_F(HttpServerTest, AFollowStreamEndsWhenItsClientGoes) {
  Start({});
  std::string id;
  OnIo([&] {
    auto created = manager_->Create(R"({"nodes":[{"id":"a","argv":["x"]}]})", {}, true);
    ASSERT_TRUE(created.ok());
    id = created->execution.id;
  });
  int fd = Connect();
  Send(fd, "GET /api/executions/" + id + "/events?follow=true HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string head;
  char c;
  while (head.find("\r\n\r\n") == std::string::npos && read(fd, &c, 1) == 1) head += c;
  EXPECT_NE(head.find("Transfer-Encoding: chunked"), std::string::npos) << head;
  EXPECT_NE(head.find("application/x-ndjson"), std::string::npos) << head;
  ASSERT_EQ(Connections(), 1u);
  close(fd);
  EXPECT_TRUE(Eventually([&] { return Connections() == 0; }))
      << "the server noticed the hang-up without another event";
  // End the execution, so that nothing is left running at teardown.
  OnIo([&] { runner_->Exit("a", 0); });
  EXPECT_TRUE(Eventually([&] {
    bool ended = false;
    OnIo([&] { ended = manager_->active_count() == 0; });
    return ended;
  }));
}

TEST_F(HttpServerTest, ShutdownClosesIdleConnectionsAndReportsDrained) {
  Start({});
  int fd = Connect();
  Send(fd, kHealth);
  ASSERT_EQ(ReadResponse(fd).rfind("HTTP/1.1 200", 0), 0u);
  std::promise<void> drained;
  OnIo([&] { server_->Shutdown(5s, [&] { drained.set_value(); }); });
  EXPECT_EQ(drained.get_future().wait_for(3s), std::future_status::ready);
  EXPECT_TRUE(ClosedWithin(fd, 1s));
  close(fd);
  int late = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address = Address();
  int rc = connect(late, reinterpret_cast<sockaddr*>(&address), sizeof address);
  if (rc == 0) {
    EXPECT_TRUE(ClosedWithin(late, 1s)) << "no new connection is served";
  }
  close(late);
}

}  // namespace
}  // namespace warden::api
