// libFuzzer target: HTTP request handling, from the bytes a client sends to the Response,
// without a socket. The input is up to eight requests as they would arrive on one
// connection; each is parsed by Beast's request parser under the server's limits, made into
// a Request as http_server.cc does, and handed to RequestHandler::Handle. Behind the handler
// are a real ExecutionManager and journal (a file in a private directory under /dev/shm) and
// the lifecycle tests' FakeProcessRunner, which never starts a process: fuzzer-made argv
// cannot run.
//
// "{id}" in a target or body stands for the execution the latest create in the same input
// answered with, so that one input can reach start, pause, resume, stop, events and logs.
//
// Judged: every request is answered exactly once, with a status from 100 to 599, and an
// application/json body parses as JSON.
#include <stdlib.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/parse.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/http_message.h"
#include "api/metrics.h"
#include "api/request_handler.h"
#include "fake_process_runner.h"
#include "journal/journal.h"
#include "lifecycle/execution_manager.h"

namespace {

namespace http = boost::beast::http;
namespace fs = std::filesystem;
using warden::api::Request;
using warden::api::Response;

constexpr int kMaxRequests = 8;
constexpr size_t kHeaderLimit = 16 * 1024;  // the server's (http_server.cc)
constexpr size_t kMaxBodyBytes = 4u << 20;  // the daemon's: the spec size limit
// A fresh journal after this many inputs, so that a long campaign does not fill /dev/shm.
constexpr int kInputsPerJournal = 1000;

// The journal and its directory, made once per process and removed at exit.
class Scratch {
 public:
  Scratch() {
    std::string tmpl = "/dev/shm/warden-http-fuzz-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      tmpl = (fs::temp_directory_path() / "warden-http-fuzz-XXXXXX").string();
      if (::mkdtemp(tmpl.data()) == nullptr) __builtin_trap();
    }
    dir_ = tmpl;
    fs::create_directories(dir_ / "output");
  }
  ~Scratch() {
    journal_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  warden::journal::Journal& journal() {
    if (!journal_ || ++inputs_ > kInputsPerJournal) {
      journal_.reset();
      std::error_code ec;
      for (const char* suffix : {"", "-wal", "-shm"})
        fs::remove(dir_ / ("warden.db" + std::string(suffix)), ec);
      auto journal = warden::journal::Journal::Open((dir_ / "warden.db").string());
      if (!journal.ok()) __builtin_trap();
      journal_ = std::move(*journal);
      warden::api::ObserveJournalCommits(*journal_, metrics_);
      inputs_ = 1;
    }
    return *journal_;
  }
  warden::api::DaemonMetrics& metrics() { return metrics_; }
  std::string output_dir() const { return (dir_ / "output").string(); }

 private:
  fs::path dir_;
  warden::api::DaemonMetrics metrics_;
  std::unique_ptr<warden::journal::Journal> journal_;
  int inputs_ = 0;
};

// Runs every handler that is ready, without waiting for timers.
void RunReady(boost::asio::io_context& io) {
  io.restart();
  while (io.poll() > 0) {
  }
}

void ReplaceAll(std::string& text, std::string_view from, const std::string& to) {
  if (to.empty()) return;
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

// The executionId of an Execution body, or "".
std::string ExecutionIdOf(const std::string& body) {
  static constexpr std::string_view kKey = "\"executionId\":\"";
  size_t at = body.find(kKey);
  if (at == std::string::npos) return {};
  at += kKey.size();
  size_t end = body.find('"', at);
  return end == std::string::npos ? std::string() : body.substr(at, end - at);
}

// Parses one request from the front of `input` and removes what it used. nullopt when the
// bytes left are not a whole request (the server would answer 400 or wait for more).
std::optional<Request> NextRequest(std::string_view& input) {
  http::request_parser<http::string_body> parser;
  parser.header_limit(kHeaderLimit);
  parser.body_limit(kMaxBodyBytes);
  parser.eager(true);
  boost::beast::error_code ec;
  while (!parser.is_done() && !input.empty()) {
    size_t used = parser.put(boost::asio::buffer(input.data(), input.size()), ec);
    input.remove_prefix(used);
    if (ec == http::error::need_more) break;
    if (ec || used == 0) return std::nullopt;
  }
  if (!parser.is_done()) {
    parser.put_eof(ec);
    if (ec || !parser.is_done()) return std::nullopt;
  }
  auto& message = parser.get();
  Request request;
  request.method = std::string(message.method_string());
  request.target = std::string(message.target());
  request.content_type = std::string(message[http::field::content_type]);
  for (auto [it, end] = message.equal_range(http::field::content_encoding); it != end; ++it) {
    if (!request.content_encoding.empty()) request.content_encoding += ", ";
    request.content_encoding += it->value();
  }
  request.body = std::move(message.body());
  request.requester = {"uid:0 pid:1", "fuzz"};
  return request;
}

void Check(const Response& response, const std::string& method) {
  if (response.status < 100 || response.status > 599) __builtin_trap();
  if (response.content_type == "application/json" && method != "HEAD" && !response.stream) {
    boost::system::error_code ec;
    (void)boost::json::parse(response.body, ec);
    if (ec) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace std::chrono_literals;
  static Scratch scratch;
  std::string_view input(reinterpret_cast<const char*>(data), size);

  warden::journal::Journal& journal = scratch.journal();
  boost::asio::io_context io;
  warden::lifecycle_test::FakeProcessRunner runner(io);
  warden::lifecycle::ManagerOptions options;
  options.log_dir = scratch.output_dir();
  auto manager =
      std::make_unique<warden::lifecycle::ExecutionManager>(io, journal, runner, options);
  warden::api::HandlerOptions handler_options;
  handler_options.max_body_bytes = kMaxBodyBytes;
  auto handler = std::make_unique<warden::api::RequestHandler>(io, *manager, scratch.metrics(),
                                                               handler_options);

  std::string id;
  std::vector<std::shared_ptr<warden::api::ChunkStream>> streams;
  for (int i = 0; i < kMaxRequests && !input.empty(); ++i) {
    std::optional<Request> request = NextRequest(input);
    if (!request) break;
    ReplaceAll(request->target, "{id}", id);
    ReplaceAll(request->body, "{id}", id);
    const std::string method = request->method;
    auto answers = std::make_shared<int>(0);
    auto response = std::make_shared<std::optional<Response>>();
    handler->Handle(std::move(*request), [answers, response](Response r) {
      if (++*answers > 1) __builtin_trap();
      *response = std::move(r);
    });
    RunReady(io);
    if (!*response) continue;  // answered later (a pause or stop still in progress)
    Check(**response, method);
    if (std::string created = ExecutionIdOf((*response)->body); !created.empty()) id = created;
    if (auto stream = (*response)->stream) {
      stream->Start([](std::string) {}, [] {});
      streams.push_back(std::move(stream));
      RunReady(io);
    }
  }

  // Everything stops (the fake trees must not outlive their manager), then goes.
  bool stopped = false;
  manager->StopAll(true, [&] { stopped = true; });
  for (int i = 0; i < 200 && !stopped; ++i) {
    RunReady(io);
    if (!stopped) io.run_for(1ms);
  }
  RunReady(io);
  streams.clear();
  handler.reset();
  manager.reset();
  return 0;
}
