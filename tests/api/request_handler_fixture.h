// The fixture of the RequestHandler tests: a real ExecutionManager and journal over the
// lifecycle's FakeProcessRunner in a temporary directory, and helpers that send one request
// and run the io_context until it is answered.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <optional>

#include "api/request_handler.h"
#include "fake_process_runner.h"
#include "journal/journal.h"
#include "lifecycle/execution_manager.h"

namespace warden::api {

class RequestHandlerTest : public testing::Test {
 protected:
  using FakeProcessRunner = lifecycle_test::FakeProcessRunner;
  void SetUp() override { Open({}); }
  void TearDown() override {
    Close();
    std::filesystem::remove_all(dir_);
  }

  void Open(journal::JournalOptions options) {
    Close();
    auto journal = journal::Journal::Open(dir_ + "/warden.db", options);
    ASSERT_TRUE(journal.ok()) << journal.status().ToString();
    journal_ = std::move(*journal);
    ObserveJournalCommits(*journal_, metrics_);
    runner_ = std::make_unique<FakeProcessRunner>(io_);
    manager_ = std::make_unique<lifecycle::ExecutionManager>(io_, *journal_, *runner_);
    handler_ = std::make_unique<RequestHandler>(io_, *manager_, metrics_);
  }
  void Close() {
    if (manager_) {
      // Nothing may be left running (the fake trees would outlive their manager).
      bool stopped = false;
      manager_->StopAll(true, [&] { stopped = true; });
      for (int i = 0; i < 1000 && !stopped; ++i) {
        io_.restart();
        io_.run_for(std::chrono::milliseconds(5));
      }
      EXPECT_TRUE(stopped);
    }
    handler_.reset();
    manager_.reset();
    runner_.reset();
    journal_.reset();
  }

  // Handles one request and runs the io_context until it is answered (5 s at most).
  Response Call(const std::string& method, const std::string& target, const std::string& body = "",
                const std::string& content_type = "application/json") {
    Request request;
    request.method = method;
    request.target = target;
    request.content_type = body.empty() && method != "POST" ? "" : content_type;
    request.body = body;
    return Call(std::move(request));
  }
  Response Call(Request request) {
    request.requester.name = "uid:1 pid:2";
    const std::string method = request.method, target = request.target;
    std::optional<Response> response;
    handler_->Handle(std::move(request), [&](Response r) { response = std::move(r); });
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!response && std::chrono::steady_clock::now() < deadline) {
      io_.restart();  // run_for stops the io_context whenever it runs out of work
      io_.run_for(std::chrono::milliseconds(5));
    }
    EXPECT_TRUE(response.has_value()) << method << " " << target << " was never answered";
    return response.value_or(Response{});
  }
  boost::json::value Body(const Response& r) {
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(r.body, ec);
    EXPECT_FALSE(ec) << r.body;
    return v;
  }
  std::string ErrorCode(const Response& r) {
    return std::string(Body(r).at("error").at("code").as_string());
  }
  std::string Create(const std::string& spec, const std::string& query = "") {
    Response r = Call("POST", "/api/executions" + query, spec);
    EXPECT_EQ(r.status, 201) << r.body;
    return std::string(Body(r).at("executionId").as_string());
  }
  std::string StatusOf(const std::string& id) {
    return std::string(Body(Call("GET", "/api/executions/" + id)).at("status").as_string());
  }
  void Settle() {
    for (int i = 0; i < 20; ++i) {
      io_.restart();
      io_.run_for(std::chrono::milliseconds(2));
    }
  }

  std::string dir_ = [] {
    std::string tmpl = (std::filesystem::temp_directory_path() / "api-handler-XXXXXX").string();
    return std::string(mkdtemp(tmpl.data()));
  }();
  boost::asio::io_context io_;
  DaemonMetrics metrics_;
  std::unique_ptr<journal::Journal> journal_;
  std::unique_ptr<FakeProcessRunner> runner_;
  std::unique_ptr<lifecycle::ExecutionManager> manager_;
  std::unique_ptr<RequestHandler> handler_;
};

}  // namespace warden::api
