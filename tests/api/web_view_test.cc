// What the web view relies on: the UI's files served with their types and security header
// fields, ETag revalidation, and the Execution object's `asOfSeq` and `needs` (api.md, "Web
// view").
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "api/web_ui.h"
#include "request_handler_fixture.h"

namespace warden::api {
namespace {

namespace json = boost::json;

std::string Header(const Response& r, const std::string& name) {
  for (const auto& [key, value] : r.headers) {
    if (key == name) return value;
  }
  return "";
}

class WebViewTest : public RequestHandlerTest {
 protected:
  // The seqs of the execution's journal rows after `after`.
  std::vector<int64_t> SeqsAfter(const std::string& id, int64_t after) {
    Response r = Call("GET", "/api/executions/" + id + "/events?after=" + std::to_string(after));
    EXPECT_EQ(r.status, 200) << r.body;
    std::vector<int64_t> seqs;
    const json::value body = Body(r);
    for (const auto& e : body.at("events").as_array()) seqs.push_back(e.at("seq").as_int64());
    return seqs;
  }
  int64_t AsOfSeq(const std::string& id) {
    return Body(Call("GET", "/api/executions/" + id)).at("asOfSeq").as_int64();
  }
};

TEST_F(WebViewTest, TheUiFilesAreServedWithTheirTypesAndSecurityHeaderFields) {
  struct Case {
    std::string path, type, starts_with;
  };
  for (const Case& c : {Case{"/", "text/html; charset=utf-8", "<!doctype html>"},
                        Case{"/ui/", "text/html; charset=utf-8", "<!doctype html>"},
                        Case{"/ui", "text/html; charset=utf-8", "<!doctype html>"},
                        Case{"/?x=1", "text/html; charset=utf-8", "<!doctype html>"},
                        Case{"/ui/app.js", "text/javascript; charset=utf-8", "//"},
                        Case{"/ui/dag.js", "text/javascript; charset=utf-8", "//"},
                        Case{"/ui/panels.js", "text/javascript; charset=utf-8", "//"},
                        Case{"/ui/app.css", "text/css; charset=utf-8", "/*"}}) {
    Response r = Call("GET", c.path);
    EXPECT_EQ(r.status, 200) << c.path;
    EXPECT_EQ(r.content_type, c.type) << c.path;
    EXPECT_TRUE(r.body.starts_with(c.starts_with)) << c.path;
    EXPECT_EQ(Header(r, "Content-Security-Policy"), kWebUiContentSecurityPolicy) << c.path;
    EXPECT_NE(Header(r, "Content-Security-Policy").find("frame-ancestors 'none'"),
              std::string::npos);
    EXPECT_EQ(Header(r, "X-Content-Type-Options"), "nosniff") << c.path;
    EXPECT_EQ(Header(r, "Referrer-Policy"), "no-referrer") << c.path;
    EXPECT_EQ(Header(r, "Cache-Control"), "no-cache") << c.path;
    EXPECT_EQ(Header(r, "ETag").size(), 34u) << c.path << ": a quoted 32-digit hash";
    EXPECT_EQ(Call("HEAD", c.path).status, 200) << c.path;
  }
  // Each file has its own ETag; the page loads every script it needs.
  EXPECT_NE(Header(Call("GET", "/ui/app.js"), "ETag"), Header(Call("GET", "/ui/dag.js"), "ETag"));
  const std::string page = Call("GET", "/").body;
  for (const char* script : {"/ui/app.js", "/ui/dag.js", "/ui/panels.js", "/ui/app.css"}) {
    EXPECT_NE(page.find(script), std::string::npos) << script;
  }
  EXPECT_EQ(page.find("style=\""), std::string::npos) << "the CSP forbids inline styles";
  EXPECT_EQ(Call("GET", "/ui/nothing.js").status, 404);
  EXPECT_EQ(Call("GET", "/uix").status, 404);
  Response post = Call("POST", "/", "{}");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.allow, "GET, HEAD");
}

TEST_F(WebViewTest, AMatchingIfNoneMatchGets304WithoutABody) {
  const std::string etag = Header(Call("GET", "/ui/app.js"), "ETag");
  ASSERT_FALSE(etag.empty());
  for (const std::string& header : {etag, "W/" + etag, "\"other\", " + etag, std::string("*")}) {
    Request request;
    request.method = "GET";
    request.target = "/ui/app.js";
    request.if_none_match = header;
    Response r = Call(std::move(request));
    EXPECT_EQ(r.status, 304) << header;
    EXPECT_TRUE(r.body.empty()) << header;
    EXPECT_EQ(Header(r, "ETag"), etag) << header;
    EXPECT_EQ(Header(r, "Cache-Control"), "no-cache") << header;
  }
  Request stale;
  stale.method = "GET";
  stale.target = "/ui/app.js";
  stale.if_none_match = "\"0123\"";
  Response r = Call(std::move(stale));
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(r.body.empty());
}

TEST_F(WebViewTest, OnlyGetAndHeadOfTheUiFilesAreReadsThatNeedNoToken) {
  EXPECT_TRUE(IsWebUiRead("GET", "/"));
  EXPECT_TRUE(IsWebUiRead("HEAD", "/ui/app.js?v=2"));
  EXPECT_TRUE(IsWebUiRead("GET", "http://localhost:8080/ui/"));
  EXPECT_FALSE(IsWebUiRead("POST", "/"));
  EXPECT_FALSE(IsWebUiRead("GET", "/api/executions"));
  EXPECT_FALSE(IsWebUiRead("GET", "/api/health"));
  EXPECT_FALSE(IsWebUiRead("GET", "/metrics"));
  EXPECT_FALSE(IsWebUiRead("GET", "/ui/../api/executions"));
}

TEST_F(WebViewTest, NodesCarryTheirNeedsFromTheSpec) {
  std::string id = Create(R"({"nodes":[{"id":"a","argv":["x"]},{"id":"b","argv":["x"]},)"
                          R"({"id":"c","argv":["y"],"needs":["b","a"]}]})");
  json::value e = Body(Call("GET", "/api/executions/" + id));
  const auto& nodes = e.at("nodes").as_array();
  EXPECT_TRUE(nodes.at(0).at("needs").as_array().empty());
  EXPECT_TRUE(nodes.at(1).at("needs").as_array().empty());
  EXPECT_EQ(nodes.at(2).at("needs"), json::parse(R"(["b","a"])"));
  // The list carries them too.
  json::value list = Body(Call("GET", "/api/executions"));
  EXPECT_EQ(list.at("executions").at(0).at("nodes").at(2).at("needs"), json::parse(R"(["b","a"])"));
}

TEST_F(WebViewTest, AsOfSeqGrowsWithTheExecutionAndFollowingAfterItYieldsTheLaterRows) {
  std::string id =
      Create(R"({"nodes":[{"id":"a","argv":["x"]},{"id":"b","argv":["y"],"needs":["a"]}]})");
  Settle();
  const int64_t first = AsOfSeq(id);
  EXPECT_GT(first, 0);
  // The view reflects every committed row: none comes after it.
  EXPECT_TRUE(SeqsAfter(id, first).empty());

  ASSERT_TRUE(runner_->Exit("a", 0));
  Settle();
  const int64_t second = AsOfSeq(id);
  EXPECT_GT(second, first);
  std::vector<int64_t> between = SeqsAfter(id, first);
  ASSERT_FALSE(between.empty());
  EXPECT_EQ(between.back(), second);
  EXPECT_TRUE(SeqsAfter(id, second).empty());

  // A follower that starts at asOfSeq gets exactly the later rows, up to the end.
  Response r =
      Call("GET", "/api/executions/" + id + "/events?follow=true&after=" + std::to_string(second));
  ASSERT_TRUE(r.stream);
  std::string text;
  bool ended = false;
  r.stream->Start([&](std::string chunk) { text += chunk; }, [&] { ended = true; });
  Settle();
  EXPECT_EQ(text, "") << "nothing happened after asOfSeq yet";
  ASSERT_TRUE(runner_->Exit("b", 0));
  Settle();
  EXPECT_TRUE(ended);
  std::vector<int64_t> followed;
  for (size_t start = 0, nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
    followed.push_back(json::parse(text.substr(start, nl - start)).at("seq").as_int64());
  }
  ASSERT_FALSE(followed.empty());
  EXPECT_GT(followed.front(), second);

  // Ended and served from the journal: asOfSeq is its last row.
  const int64_t last = AsOfSeq(id);
  EXPECT_EQ(StatusOf(id), "completed");
  EXPECT_EQ(last, followed.back());
  EXPECT_TRUE(SeqsAfter(id, last).empty());
  EXPECT_EQ(SeqsAfter(id, 0).back(), last);
}

}  // namespace
}  // namespace warden::api
