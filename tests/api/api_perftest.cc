// api_perftest: throughput and latency of wardend's HTTP API over its Unix socket.
//
// Starts a real wardend on a temporary data directory, creates a 10-node execution, then for
// each endpoint runs 32 keep-alive clients (one Asio thread, one request in flight per
// client) for a fixed time and prints requests per second and latency percentiles.
// Targets (2 cores shared by daemon and load): GET /api/health >= 40,000/s with p99 <= 2 ms;
// GET /api/executions/{id} >= 20,000/s.
//
// usage: api_perftest [--clients N] [--seconds S]
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Clock = std::chrono::steady_clock;
using Socket = net::local::stream_protocol::socket;

namespace {

std::string RequestText(http::verb method, const std::string& target, const std::string& body) {
  http::request<http::string_body> request(method, target, 11);
  request.set(http::field::host, "wardend");
  if (!body.empty()) {
    request.set(http::field::content_type, "application/json");
    request.body() = body;
  }
  request.keep_alive(true);
  request.prepare_payload();
  std::ostringstream text;
  text << request;
  return text.str();
}

// One blocking request on a new connection; returns the body ("" on failure).
std::string Call(const std::string& socket_path, http::verb method, const std::string& target,
                 const std::string& body = "") {
  net::io_context io;
  Socket socket(io);
  beast::error_code ec;
  socket.connect(socket_path, ec);
  if (ec) return "";
  net::write(socket, net::buffer(RequestText(method, target, body)), ec);
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(socket, buffer, response, ec);
  return ec ? "" : response.body();
}

struct LoadClient {
  explicit LoadClient(net::io_context& io) : socket(io) {}
  Socket socket;
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  Clock::time_point sent;
};

struct Figures {
  double per_second = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  size_t requests = 0, errors = 0;
};

Figures Load(const std::string& socket_path, const std::string& target, int clients,
             double seconds) {
  net::io_context io;
  const std::string request = RequestText(http::verb::get, target, "");
  std::vector<std::unique_ptr<LoadClient>> pool;
  std::vector<double> latencies_ms;
  latencies_ms.reserve(1 << 20);
  size_t errors = 0;
  Clock::time_point start, warm_until, end;
  bool measuring = false;

  std::function<void(LoadClient&)> send = [&](LoadClient& c) {
    c.sent = Clock::now();
    net::async_write(c.socket, net::buffer(request), [&](beast::error_code ec, size_t) {
      if (ec) {
        ++errors;
        return;
      }
      c.response = {};
      http::async_read(c.socket, c.buffer, c.response, [&](beast::error_code ec, size_t) {
        auto now = Clock::now();
        if (ec || c.response.result_int() != 200) {
          ++errors;
          if (ec) return;
        } else if (now >= warm_until && now < end) {
          measuring = true;
          latencies_ms.push_back(std::chrono::duration<double, std::milli>(now - c.sent).count());
        }
        if (now < end) send(c);
      });
    });
  };
  for (int i = 0; i < clients; ++i) {
    auto c = std::make_unique<LoadClient>(io);
    c->socket.connect(socket_path);
    pool.push_back(std::move(c));
  }
  start = Clock::now();
  warm_until = start + std::chrono::milliseconds(500);
  end = warm_until +
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  for (auto& c : pool) send(*c);
  io.run();
  Figures f;
  f.requests = latencies_ms.size();
  f.errors = errors;
  f.per_second = static_cast<double>(f.requests) / seconds;
  if (!latencies_ms.empty()) {
    std::sort(latencies_ms.begin(), latencies_ms.end());
    f.p50_ms = latencies_ms[latencies_ms.size() / 2];
    f.p99_ms = latencies_ms[latencies_ms.size() * 99 / 100];
    f.max_ms = latencies_ms.back();
  }
  (void)measuring;
  return f;
}

void Print(const char* what, int clients, double seconds, const Figures& f) {
  std::printf(
      "%-34s %d clients %.1fs: %8zu requests %8.0f req/s  p50 %.2f ms  p99 %.2f ms  "
      "max %.2f ms  errors %zu\n",
      what, clients, seconds, f.requests, f.per_second, f.p50_ms, f.p99_ms, f.max_ms, f.errors);
}

}  // namespace

int main(int argc, char** argv) {
  int clients = 32;
  double seconds = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--clients") clients = std::atoi(argv[i + 1]);
    if (flag == "--seconds") seconds = std::atof(argv[i + 1]);
  }
  std::string dir = (std::filesystem::temp_directory_path() / "api-perftest-XXXXXX").string();
  if (!mkdtemp(dir.data())) return 1;
  std::string socket_path = dir + "/run/wardend.sock";
  std::filesystem::create_directory(dir + "/run");
  std::filesystem::permissions(dir + "/run", std::filesystem::perms::owner_all);
  std::vector<std::string> args = {WARDEND,    "--data-dir",    dir + "/data",
                                   "--socket", socket_path,     "--log-level",
                                   "warn",     "--containment", "pgroup"};
  std::vector<char*> argv_daemon;
  for (auto& a : args) argv_daemon.push_back(a.data());
  argv_daemon.push_back(nullptr);
  pid_t daemon = -1;
  if (posix_spawn(&daemon, WARDEND, nullptr, nullptr, argv_daemon.data(), environ) != 0) {
    std::fprintf(stderr, "cannot start %s\n", WARDEND);
    return 1;
  }
  auto stop_daemon = [&] {
    kill(daemon, SIGTERM);
    waitpid(daemon, nullptr, 0);
    std::filesystem::remove_all(dir);
  };
  for (int i = 0; i < 1000 && Call(socket_path, http::verb::get, "/api/health").empty(); ++i) {
    usleep(10'000);
  }

  std::string spec = R"({"name":"perf","nodes":[)";
  for (int i = 0; i < 10; ++i) {
    spec += std::string(i ? "," : "") + R"({"id":"n)" + std::to_string(i) +
            R"(","argv":["true"],"costPerSecondUsd":0.001})";
  }
  spec += "]}";
  std::string created = Call(socket_path, http::verb::post, "/api/executions", spec);
  boost::system::error_code ec;
  auto execution = boost::json::parse(created, ec);
  if (ec || !execution.is_object() || !execution.as_object().contains("executionId")) {
    std::fprintf(stderr, "cannot create the execution: %s\n", created.c_str());
    stop_daemon();
    return 1;
  }
  std::string id(execution.at("executionId").as_string());
  // Let the nodes finish so that the figure is about reading, not about launching.
  for (int i = 0; i < 500; ++i) {
    auto view = boost::json::parse(Call(socket_path, http::verb::get, "/api/executions/" + id), ec);
    if (!ec && view.at("status").as_string() != "running") break;
    usleep(10'000);
  }

  Figures health = Load(socket_path, "/api/health", clients, seconds);
  Print("GET /api/health", clients, seconds, health);
  Figures one = Load(socket_path, "/api/executions/" + id, clients, seconds);
  Print("GET /api/executions/{id} (10 nodes)", clients, seconds, one);
  stop_daemon();
  bool met = health.per_second >= 40'000 && health.p99_ms <= 2.0 && one.per_second >= 20'000;
  std::printf("targets (health >= 40000/s p99 <= 2 ms, execution >= 20000/s): %s\n",
              met ? "met" : "NOT met");
  return 0;
}
