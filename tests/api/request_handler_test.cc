// RequestHandler without sockets: a real ExecutionManager and journal over the lifecycle's
// FakeProcessRunner, requests in, api.md's responses out.
#include "api/request_handler.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <filesystem>
#include <optional>

#include "api/request_origin.h"
#include "fake_process_runner.h"
#include "journal/journal.h"
#include "lifecycle/execution_manager.h"
#include "request_handler_fixture.h"

namespace warden::api {
namespace {

namespace json = boost::json;
using lifecycle_test::FakeProcessRunner;
using lifecycle_test::TermBehavior;
using namespace std::chrono_literals;

const char kTwoNodes[] =
    R"({"name":"two","nodes":[{"id":"a","argv":["x"]},{"id":"b","argv":["y"],"needs":["a"]}]})";

TEST_F(RequestHandlerTest, CreateStartsAndAnswers201WithTheExecution) {
  Response r = Call("POST", "/api/executions", kTwoNodes);
  ASSERT_EQ(r.status, 201) << r.body;
  json::value e = Body(r);
  EXPECT_EQ(e.at("name").as_string(), "two");
  EXPECT_EQ(e.at("status").as_string(), "running");
  EXPECT_EQ(e.at("nodes").as_array().size(), 2u);
  // The 201 is only sent after a durable commit.
  const uint64_t durable_commits = metrics_.journal_commit_durable.count();
  EXPECT_GE(durable_commits, 1u);
  Settle();
  ASSERT_TRUE(runner_->Exit("a", 0));
  Settle();
  ASSERT_TRUE(runner_->Exit("b", 0));
  Settle();
  EXPECT_EQ(StatusOf(std::string(e.at("executionId").as_string())), "completed");
  EXPECT_GT(metrics_.journal_commit_durable.count(), durable_commits) << "the end is durable too";
  EXPECT_GE(metrics_.journal_commit_crash_safe.count(), 2u) << "the nodes' exits, at least";
}

TEST_F(RequestHandlerTest, StartFalseLeavesItIdleUntilStartAndASecondStartIsAConflict) {
  std::string id = Create(kTwoNodes, "?start=false");
  EXPECT_EQ(StatusOf(id), "idle");
  Response start = Call("POST", "/api/executions/" + id + "/start");
  EXPECT_EQ(start.status, 200) << start.body;
  EXPECT_EQ(Body(start).at("status").as_string(), "running");
  Response again = Call("POST", "/api/executions/" + id + "/start");
  EXPECT_EQ(again.status, 409);
  EXPECT_EQ(ErrorCode(again), "conflict");
  EXPECT_EQ(Call("POST", "/api/executions?start=maybe", kTwoNodes).status, 400);
}

TEST_F(RequestHandlerTest, ListShowsActiveByDefaultAndAllOnRequest) {
  std::string running = Create(kTwoNodes);
  std::string stopped = Create(kTwoNodes, "?start=false");
  ASSERT_EQ(Call("POST", "/api/executions/" + stopped + "/stop").status, 200);
  auto ids = [&](const std::string& target) {
    std::vector<std::string> out;
    json::value body = Body(Call("GET", target));
    for (const auto& e : body.at("executions").as_array()) {
      out.emplace_back(e.at("executionId").as_string());
    }
    return out;
  };
  EXPECT_EQ(ids("/api/executions"), std::vector<std::string>{running});
  EXPECT_EQ(ids("/api/executions?state=all"), (std::vector<std::string>{running, stopped}));
}

TEST_F(RequestHandlerTest, PauseAndResumeAnswerOnceTheTreesAreFrozenOrThawed) {
  std::string id = Create(R"({"nodes":[{"id":"a","argv":["x"]}]})");
  Settle();
  Response paused = Call("POST", "/api/executions/" + id + "/pause");
  EXPECT_EQ(paused.status, 200) << paused.body;
  EXPECT_EQ(Body(paused).at("status").as_string(), "paused");
  EXPECT_TRUE(runner_->Tree("a")->paused());
  Response resumed = Call("POST", "/api/executions/" + id + "/resume");
  EXPECT_EQ(resumed.status, 200) << resumed.body;
  EXPECT_FALSE(runner_->Tree("a")->paused());
  EXPECT_EQ(Call("POST", "/api/executions/" + id + "/resume").status, 409);
}

TEST_F(RequestHandlerTest, StopWaitsForTheStopResponseAndRecordsTheRequester) {
  std::string id = Create(kTwoNodes);
  Settle();
  Response r = Call("POST", "/api/executions/" + id + "/stop",
                    R"({"reason":"timeout","note":"too slow","graceMs":100})");
  ASSERT_EQ(r.status, 200) << r.body;
  json::value stop = Body(r);
  EXPECT_EQ(stop.at("status").as_string(), "stopped");
  EXPECT_EQ(stop.at("executionId").as_string(), id);
  EXPECT_EQ(stop.at("reason").as_string(), "timeout");
  EXPECT_EQ(stop.at("summary").at("nodesTotal").as_int64(), 2);
  EXPECT_TRUE(stop.at("journaled").as_bool());
  auto events = journal_->ReadExecution(id);
  ASSERT_TRUE(events.ok());
  bool found = false;
  for (const auto& e : *events) {
    if (e.kind == "execution.stop_requested") {
      found = true;
      EXPECT_NE(e.payload.find("uid:1 pid:2"), std::string::npos) << e.payload;
      EXPECT_NE(e.payload.find("too slow"), std::string::npos) << e.payload;
    }
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(Call("POST", "/api/executions/" + id + "/stop").status, 409);
}

TEST_F(RequestHandlerTest, StopWithoutWaitAnswers202AndAJoiningStopGetsTheResult) {
  runner_->SetTermBehavior("a", TermBehavior::kIgnoreTerm);
  std::string id = Create(R"({"nodes":[{"id":"a","argv":["x"]}]})");
  Settle();
  Response accepted = Call("POST", "/api/execute/stop",
                           R"({"executionId":")" + id + R"(","wait":false,"graceMs":50})");
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  EXPECT_EQ(Body(accepted).at("status").as_string(), "stopping");
  Response joined = Call("POST", "/api/executions/" + id + "/stop");
  ASSERT_EQ(joined.status, 200) << joined.body;
  EXPECT_EQ(Body(joined).at("nodesKilled").as_int64(), 1);
}

TEST_F(RequestHandlerTest, BadRequestsGetTheirCodes) {
  EXPECT_EQ(ErrorCode(Call("POST", "/api/executions", "{")), "invalid_argument");
  EXPECT_EQ(Call("POST", "/api/executions", kTwoNodes, "text/plain").status, 415);
  EXPECT_EQ(Call("POST", "/api/executions", kTwoNodes, "application/json; charset=utf-8").status,
            201);
  EXPECT_EQ(Call("POST", "/api/executions", std::string(5u << 20, ' ')).status, 413);
  EXPECT_EQ(Call("GET", "/api/executions/none").status, 404);
  EXPECT_EQ(Call("GET", "/api/executions/none/events").status, 404);
  EXPECT_EQ(Call("GET", "/api/executions/none/events?follow=true").status, 404);
  EXPECT_EQ(Call("GET", "/api/executions/none/events?after=-1").status, 400);
  EXPECT_EQ(Call("POST", "/api/executions/none/stop", R"({"wait":"yes"})").status, 400);
  EXPECT_EQ(Call("POST", "/api/executions/none/stop", R"({"extra":1})").status, 400);
  EXPECT_EQ(Call("POST", "/api/executions/none/stop").status, 404);
  Response wrong = Call("PUT", "/api/health");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.allow, "GET, HEAD");
  EXPECT_EQ(Call("GET", "/api/executions/x/nodes/y/log?stream=both").status, 400);
}

TEST_F(RequestHandlerTest, HeadIsAnsweredOnEveryGetRouteAsGetIs) {
  std::string id = Create(R"({"nodes":[{"id":"a","argv":["x"]}]})");
  Settle();
  for (const std::string& target : std::vector<std::string>{
           "/api/health", "/api/executions", "/api/executions?state=all", "/api/executions/" + id,
           "/api/executions/" + id + "/events", "/api/executions/" + id + "/nodes/a/log",
           "/api/executions/none", "/api/executions?state=bad"}) {
    Response get = Call("GET", target);
    Response head = Call("HEAD", target);
    EXPECT_EQ(head.status, get.status) << target;
    EXPECT_EQ(head.content_type, get.content_type) << target;
    EXPECT_EQ(head.body, get.body) << target << ": the server drops the body, not the handler";
  }
  Response nowhere = Call("HEAD", "/api/nowhere");
  EXPECT_EQ(nowhere.status, 404);
  EXPECT_EQ(Body(nowhere).at("error").at("message").as_string(),
            "no such endpoint: HEAD /api/nowhere");
  Response metrics = Call("HEAD", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.content_type, "text/plain; version=0.0.4; charset=utf-8");
  Response follow = Call("HEAD", "/api/executions/" + id + "/events?follow=true");
  EXPECT_EQ(follow.status, 200);
  EXPECT_EQ(follow.content_type, "application/x-ndjson");
  EXPECT_TRUE(follow.stream);
  EXPECT_EQ(Call("HEAD", "/api/executions/none/events?follow=true").status, 404);
  Response post_only = Call("HEAD", "/api/executions/" + id + "/stop");
  EXPECT_EQ(post_only.status, 405);
  EXPECT_EQ(post_only.allow, "POST");
  EXPECT_EQ(StatusOf(id), "running") << "HEAD changed nothing";
}

TEST_F(RequestHandlerTest, UnknownMethodsAre501AndKnownOnesOnTheWrongRoute405WithAllow) {
  for (const char* target : {"/api/health", "/api/executions", "/nowhere"}) {
    Response brew = Call("BREW", target);
    EXPECT_EQ(brew.status, 501) << target;
    EXPECT_EQ(ErrorCode(brew), "not_implemented") << target;
    EXPECT_EQ(brew.allow, "") << target;
  }
  EXPECT_EQ(Call("get", "/api/health").status, 501) << "methods are case-sensitive";
  struct Case {
    const char* method;
    std::string target;
    const char* allow;
  };
  for (const Case& c :
       {Case{"PUT", "/api/health", "GET, HEAD"}, Case{"POST", "/metrics", "GET, HEAD"},
        Case{"DELETE", "/api/executions", "GET, HEAD, POST"},
        Case{"OPTIONS", "/api/executions/x", "GET, HEAD"},
        Case{"POST", "/api/executions/x/events", "GET, HEAD"},
        Case{"PATCH", "/api/executions/x/nodes/a/log", "GET, HEAD"},
        Case{"GET", "/api/executions/x/stop", "POST"},
        Case{"HEAD", "/api/executions/x/start", "POST"},
        Case{"GET", "/api/execute/stop", "POST"}}) {
    Response r = Call(c.method, c.target);
    EXPECT_EQ(r.status, 405) << c.method << " " << c.target;
    EXPECT_EQ(ErrorCode(r), "method_not_allowed") << c.method << " " << c.target;
    EXPECT_EQ(r.allow, c.allow) << c.method << " " << c.target;
  }
  EXPECT_EQ(Call("PUT", "/api/executions/x/frobnicate").status, 404) << "no such route at all";
}

TEST_F(RequestHandlerTest, EveryPostNeedsAJsonContentTypeEvenWithAnEmptyBody) {
  std::string id = Create(kTwoNodes, "?start=false");
  for (const char* action : {"start", "pause", "resume", "stop"}) {
    for (const char* type : {"", "text/plain", "application/x-www-form-urlencoded"}) {
      Request request;
      request.method = "POST";
      request.target = "/api/executions/" + id + "/" + action;
      request.content_type = type;
      Response refused = Call(request);
      EXPECT_EQ(refused.status, 415) << action << " with '" << type << "'";
      EXPECT_EQ(ErrorCode(refused), "unsupported_media_type");
    }
  }
  Request stop;
  stop.method = "POST";
  stop.target = "/api/execute/stop";
  stop.body = R"({"executionId":")" + id + R"("})";
  EXPECT_EQ(Call(stop).status, 415);
  Request create;
  create.method = "POST";
  create.target = "/api/executions";
  create.body = kTwoNodes;
  EXPECT_EQ(Call(create).status, 415);
  EXPECT_EQ(StatusOf(id), "idle") << "no refused request changed anything";
  EXPECT_EQ(Call("POST", "/api/executions/" + id + "/stop").status, 200)
      << "an empty body with the header is a stop";
}

TEST_F(RequestHandlerTest, ACrossSiteRequestIs403AndASameOriginOneIsServed) {
  std::string id = Create(kTwoNodes, "?start=false");
  auto stop = [&](std::string origin, std::string fetch_site) {
    Request request;
    request.method = "POST";
    request.target = "/api/executions/" + id + "/stop";
    request.content_type = "application/json";
    request.host = "localhost:8080";
    request.origin = std::move(origin);
    request.sec_fetch_site = std::move(fetch_site);
    return Call(std::move(request));
  };
  for (auto [origin, site] :
       std::vector<std::pair<std::string, std::string>>{{"http://evil.example", ""},
                                                        {"null", ""},
                                                        {"http://localhost:8081", ""},
                                                        {"", "cross-site"},
                                                        {"", "same-site"},
                                                        {"http://localhost:8080", "cross-site"}}) {
    Response refused = stop(origin, site);
    EXPECT_EQ(refused.status, 403) << origin << " " << site;
    EXPECT_EQ(ErrorCode(refused), "forbidden");
    EXPECT_NE(Body(refused).at("error").at("message").as_string().find("cross-site"),
              std::string::npos);
  }
  EXPECT_EQ(StatusOf(id), "idle");
  EXPECT_EQ(stop("HTTP://LocalHost:8080", "same-origin").status, 200);
  std::string other = Create(kTwoNodes, "?start=false");
  id = other;
  EXPECT_EQ(stop("", "none").status, 200) << "typed in the address bar";
}

TEST_F(RequestHandlerTest, AHostThatIsNotTheTcpListenersNameIs421) {
  auto names = std::make_shared<ListenerNames>(ListenerNames::ForTcp("127.0.0.1", 8080));
  auto health = [&](std::string host, std::shared_ptr<const ListenerNames> listener) {
    Request request;
    request.method = "GET";
    request.target = "/api/health";
    request.host = std::move(host);
    request.listener = std::move(listener);
    return Call(std::move(request));
  };
  for (const char* host :
       {"127.0.0.1:8080", "localhost:8080", "LOCALHOST:8080", "[::1]:8080", ""}) {
    EXPECT_EQ(health(host, names).status, 200) << host;
  }
  for (const char* host : {"evil.example:8080", "localhost", "127.0.0.1:8081", "10.0.0.1:8080"}) {
    Response refused = health(host, names);
    EXPECT_EQ(refused.status, 421) << host;
    EXPECT_EQ(ErrorCode(refused), "misdirected_request");
  }
  EXPECT_EQ(health("evil.example", nullptr).status, 200) << "the Unix socket takes any name";
  auto any = std::make_shared<ListenerNames>(ListenerNames::ForTcp("0.0.0.0", 8080));
  EXPECT_EQ(health("10.0.0.1:8080", any).status, 200);
  EXPECT_EQ(health("rebound.example:8080", any).status, 421);
  auto v6 = std::make_shared<ListenerNames>(ListenerNames::ForTcp("::1", 9000));
  EXPECT_EQ(health("[::1]:9000", v6).status, 200);
}

TEST_F(RequestHandlerTest, AbsoluteFormTargetIsRoutedByItsPath) {
  Response health = Call("GET", "http://wardend/api/health");
  EXPECT_EQ(health.status, 200) << health.body;
  EXPECT_EQ(Body(health).at("status").as_string(), "ok");
  std::string id = Create(kTwoNodes, "?start=false");
  EXPECT_EQ(Call("GET", "http://x/api/executions/" + id + "?ignored=1").status, 200);
  Response missing = Call("GET", "http://x/api/nowhere?q=1");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(Body(missing).at("error").at("message").as_string(),
            "no such endpoint: GET /api/nowhere");
  EXPECT_EQ(Call("GET", "ftp://x/api/health").status, 400);
}

TEST_F(RequestHandlerTest, ACodedBodyIs415NamingTheCodingThatWouldDo) {
  Request gzip;
  gzip.method = "POST";
  gzip.target = "/api/executions";
  gzip.content_type = "application/json";
  gzip.content_encoding = "gzip";
  gzip.body = std::string("\x1f\x8b\x08\x00", 4) + "rest";
  Response refused = Call(gzip);
  EXPECT_EQ(refused.status, 415);
  EXPECT_EQ(ErrorCode(refused), "unsupported_media_type");
  EXPECT_EQ(refused.accept_encoding, "identity");
  EXPECT_NE(Body(refused).at("error").at("message").as_string().find("gzip"), std::string::npos);
  EXPECT_EQ(Body(Call("GET", "/api/executions")).at("executions").as_array().size(), 0u)
      << "nothing was created";

  Request layered = gzip;
  layered.content_encoding = "identity, br";
  EXPECT_EQ(Call(layered).status, 415);

  Request identity = gzip;
  identity.content_encoding = "Identity";
  identity.body = kTwoNodes;
  EXPECT_EQ(Call(identity).status, 201);

  // Without a body there is nothing coded: the stop is answered as any other.
  Request empty;
  empty.method = "POST";
  empty.target = "/api/executions/none/stop";
  empty.content_type = "application/json";
  empty.content_encoding = "gzip";
  EXPECT_EQ(Call(empty).status, 404);
}

TEST_F(RequestHandlerTest, BytesThatAreNotUtf8AreQuotedAsReplacementCharacters) {
  // A lone continuation byte in the path, an overlong "/" (C0 AF), a surrogate (ED A0 80),
  // a cut sequence: the error quotes each, and its body must still be JSON (UTF-8).
  for (const std::string& target :
       {std::string("/ap\x94/health"), std::string("/api/executions/%C0%AF"),
        std::string("/api/executions/%ED%A0%80"), std::string("/api/executions/\xE2\x80")}) {
    Response r = Call("GET", target);
    EXPECT_EQ(r.status, 404) << target;
    std::string message(Body(r).at("error").at("message").as_string());
    EXPECT_NE(message.find("\uFFFD"), std::string::npos) << message;
  }
}

TEST_F(RequestHandlerTest, AHugeIdOrValueIsQuotedInTheErrorOnlyAsAnExcerpt) {
  const std::string huge(100'000, 'x');
  auto message = [&](const Response& r) {
    return std::string(Body(r).at("error").at("message").as_string());
  };
  auto expect_excerpt = [&](const Response& r, int status, const std::string& what) {
    EXPECT_EQ(r.status, status) << what;
    std::string text = message(r);
    EXPECT_LT(text.size(), 200u) << what;
    EXPECT_NE(text.find("x\u2026"), std::string::npos) << what << ": " << text;
    EXPECT_EQ(text.find(std::string(65, 'x')), std::string::npos) << what << ": " << text;
  };
  expect_excerpt(Call("GET", "/api/executions/" + huge), 404, "GET id");
  expect_excerpt(Call("HEAD", "/api/executions/" + huge), 404, "HEAD id");
  expect_excerpt(Call("GET", "/api/executions/" + huge + "/events"), 404, "events");
  expect_excerpt(Call("GET", "/api/executions/" + huge + "/events?follow=true"), 404, "follow");
  expect_excerpt(Call("POST", "/api/executions/" + huge + "/stop"), 404, "stop");
  expect_excerpt(Call("POST", "/api/executions/" + huge + "/pause"), 404, "pause");
  expect_excerpt(Call("POST", "/api/executions/" + huge + "/start"), 404, "start");
  expect_excerpt(Call("GET", "/api/executions/" + huge + "/nodes/a/log"), 404, "log");
  expect_excerpt(Call("POST", "/api/execute/stop", R"({"executionId":")" + huge + R"("})"), 404,
                 "stop by body");
  expect_excerpt(Call("GET", "/api/" + huge), 404, "unknown endpoint");
  expect_excerpt(Call("GET", "/api/executions?state=" + huge), 400, "state");
  expect_excerpt(Call("GET", "/api/executions/x/events?after=" + huge), 400, "after");
  expect_excerpt(Call("POST", "/api/executions/x/stop", R"({"reason":")" + huge + R"("})"), 400,
                 "reason");
  expect_excerpt(Call("POST", "/api/executions/x/stop", R"({")" + huge + R"(":1})"), 400,
                 "unknown field");
  expect_excerpt(Call("POST", "/api/executions", kTwoNodes, huge), 415, "Content-Type");
  expect_excerpt(Call(huge, "/api/health"), 501, "method");

  std::string id = Create(kTwoNodes, "?start=false");
  expect_excerpt(Call("GET", "/api/executions/" + id + "/nodes/" + huge + "/log"), 404, "node");
  // An excerpt never cuts a UTF-8 sequence in two: 63 ASCII bytes, then two-byte letters.
  std::string accented = std::string(63, 'x');
  for (int i = 0; i < 100; ++i) accented += "\u00e9";
  std::string quoted = message(Call("GET", "/api/executions?state=" + accented));
  EXPECT_NE(quoted.find(std::string(63, 'x') + "\u2026"), std::string::npos) << quoted;
}

TEST_F(RequestHandlerTest, FollowStreamsRecordedRowsThenNewOnesAndEndsAfterTheTerminalEvent) {
  std::string id = Create(R"({"nodes":[{"id":"a","argv":["x"]}]})");
  Settle();
  Response r = Call("GET", "/api/executions/" + id + "/events?follow=true");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/x-ndjson");
  ASSERT_TRUE(r.stream);
  std::string text;
  bool ended = false;
  r.stream->Start([&](std::string chunk) { text += chunk; }, [&] { ended = true; });
  Settle();
  EXPECT_FALSE(ended);
  EXPECT_NE(text.find("\"kind\":\"node.started\""), std::string::npos) << text;
  ASSERT_TRUE(runner_->Exit("a", 0));
  Settle();
  EXPECT_TRUE(ended);
  std::vector<int64_t> seqs;
  std::string last_kind;
  size_t start = 0;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
    json::value e = json::parse(text.substr(start, nl - start));
    seqs.push_back(e.at("seq").as_int64());
    last_kind = e.at("kind").as_string();
  }
  EXPECT_TRUE(std::is_sorted(seqs.begin(), seqs.end()));
  EXPECT_EQ(std::adjacent_find(seqs.begin(), seqs.end()), seqs.end()) << "no repeats";
  EXPECT_EQ(last_kind, "execution.completed");

  // An ended execution: the recorded rows after `after`, then the end.
  Response again = Call("GET", "/api/executions/" + id + "/events?follow=true&after=" +
                                   std::to_string(seqs[seqs.size() - 2]));
  std::string tail;
  bool tail_ended = false;
  again.stream->Start([&](std::string chunk) { tail += chunk; }, [&] { tail_ended = true; });
  Settle();
  EXPECT_TRUE(tail_ended);
  EXPECT_EQ(std::count(tail.begin(), tail.end(), '\n'), 1);

  // Resuming from the terminal event itself (or beyond it): nothing to send, and the end.
  for (int64_t after : {seqs.back(), seqs.back() + 100}) {
    Response resumed =
        Call("GET", "/api/executions/" + id + "/events?follow=true&after=" + std::to_string(after));
    std::string rest;
    bool rest_ended = false;
    resumed.stream->Start([&](std::string chunk) { rest += chunk; }, [&] { rest_ended = true; });
    Settle();
    EXPECT_TRUE(rest_ended) << "after=" << after;
    EXPECT_EQ(rest, "");
  }
}

TEST_F(RequestHandlerTest, HealthAndMetricsDescribeTheDaemon) {
  EXPECT_EQ(Body(Call("GET", "/api/health")).at("activeExecutions").as_int64(), 0);
  Create(kTwoNodes);
  json::value health = Body(Call("GET", "/api/health"));
  EXPECT_EQ(health.at("status").as_string(), "ok");
  EXPECT_EQ(health.at("activeExecutions").as_int64(), 1);
  EXPECT_EQ(health.at("journal").as_string(), "ok");
  EXPECT_EQ(health.at("containment").as_string(), "pgroup");
  Response metrics = Call("GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("warden_executions{state=\"running\"} 1\n"), std::string::npos)
      << metrics.body;
  EXPECT_GE(metrics_.journal_commit_durable.count(), 1u);
  for (const auto& [label, histogram] :
       {std::pair{"durable", &metrics_.journal_commit_durable},
        std::pair{"crash_safe", &metrics_.journal_commit_crash_safe}}) {
    std::string series = std::string("{durability=\"") + label + "\"";
    EXPECT_NE(metrics.body.find("warden_journal_commit_seconds_bucket" + series + ",le=\"+Inf\"} " +
                                std::to_string(histogram->count()) + "\n"),
              std::string::npos)
        << metrics.body;
    EXPECT_NE(metrics.body.find("warden_journal_commit_seconds_count" + series + "} " +
                                std::to_string(histogram->count()) + "\n"),
              std::string::npos)
        << metrics.body;
  }
  EXPECT_EQ(metrics.body.find("# TYPE warden_journal_commit_seconds histogram"),
            metrics.body.rfind("# TYPE warden_journal_commit_seconds histogram"))
      << "one header for both series";
}

TEST_F(RequestHandlerTest, FailedJournalRefusesNewWorkWith503ButStillStops) {
  journal::JournalOptions options;
  options.max_page_count = 96;
  Open(options);
  std::string id = Create(R"({"nodes":[{"id":"a","argv":["x"]}]})");
  std::string idle = Create(kTwoNodes, "?start=false");
  Settle();
  EXPECT_EQ(Body(Call("GET", "/api/health")).at("journal").as_string(), "ok");
  // A follower from before the failure.
  Response follow = Call("GET", "/api/executions/" + id + "/events?follow=true");
  ASSERT_EQ(follow.status, 200);
  std::string followed;
  bool follow_ended = false;
  follow.stream->Start([&](std::string chunk) { followed += chunk; }, [&] { follow_ended = true; });
  Settle();
  for (int i = 0; i < 100'000 && journal_->health().ok(); ++i) {
    journal::Event filler;
    filler.kind = "test.filler";
    filler.payload = R"({"pad":")" + std::string(2000, 'x') + R"("})";
    (void)journal_->Append(filler, journal::Durability::kCrashSafe);
  }
  ASSERT_FALSE(journal_->health().ok());
  json::value health = Body(Call("GET", "/api/health"));
  EXPECT_EQ(health.at("journal").as_string(), "failed");
  EXPECT_NE(health.at("journalError").as_string(), "");
  Response create = Call("POST", "/api/executions", kTwoNodes);
  EXPECT_EQ(create.status, 503);
  EXPECT_EQ(ErrorCode(create), "unavailable");
  EXPECT_EQ(Call("POST", "/api/executions/" + idle + "/start").status, 503);
  EXPECT_EQ(Call("GET", "/api/executions/" + id).status, 200) << "reads still work";
  Response stop = Call("POST", "/api/executions/" + id + "/stop");
  ASSERT_EQ(stop.status, 200) << stop.body;
  EXPECT_FALSE(Body(stop).at("journaled").as_bool());
  // The follower hears the stop the journal could not record (seq null), and its stream
  // ends with it.
  Settle();
  EXPECT_TRUE(follow_ended);
  json::value last;
  size_t start = 0;
  for (size_t nl; (nl = followed.find('\n', start)) != std::string::npos; start = nl + 1) {
    last = json::parse(followed.substr(start, nl - start));
  }
  ASSERT_TRUE(last.is_object()) << followed;
  EXPECT_EQ(last.at("kind").as_string(), "execution.stopped");
  EXPECT_TRUE(last.at("seq").is_null());
}

TEST_F(RequestHandlerTest, ShutdownRefusesNewWorkButServesReadsAndStops) {
  std::string id = Create(kTwoNodes);
  EXPECT_FALSE(Body(Call("GET", "/api/health")).as_object().contains("shuttingDown"));
  handler_->BeginShutdown();
  EXPECT_EQ(Call("POST", "/api/executions", kTwoNodes).status, 503);
  EXPECT_EQ(Call("GET", "/api/executions/" + id).status, 200);
  EXPECT_EQ(Body(Call("GET", "/api/health")).at("shuttingDown").as_bool(), true);
  EXPECT_EQ(Call("POST", "/api/executions/" + id + "/stop").status, 200);
}

}  // namespace
}  // namespace warden::api
