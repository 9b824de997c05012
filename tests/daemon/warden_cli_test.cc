// End to end: the real wardend and the real warden CLI, as a user drives them.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "daemon_fixture.h"

namespace warden::testing {
namespace {

namespace json = boost::json;

json::value Parse(const std::string& text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  EXPECT_FALSE(ec) << "not JSON: " << text;
  return v;
}

std::string Str(const json::value& v, std::string_view key) {
  const json::value* f = v.is_object() ? v.as_object().if_contains(key) : nullptr;
  return f && f->is_string() ? std::string(f->as_string()) : "";
}

class WardenCliTest : public DaemonFixture {
 protected:
  void SetUp() override {
    DaemonFixture::SetUp();
    daemon_ = StartDaemon({"--containment", "pgroup", "--grace-ms", "1000"});
    ASSERT_GT(daemon_, 0) << "wardend did not get ready";
  }

  // `warden run SPEC --detach --json` → the created execution's id.
  std::string RunDetached(const std::string& spec) {
    CommandResult r = Warden({"run", WriteFile("spec.json", spec), "--detach"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::string id = r.out;
    while (!id.empty() && id.back() == '\n') id.pop_back();
    return id;
  }
  json::value Show(const std::string& id) {
    CommandResult r = Warden({"show", id, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Parse(r.out);
  }
  std::string Status(const std::string& id) { return Str(Show(id), "status"); }

  pid_t daemon_ = -1;
};

// True when `text` holds a time written as YYYY-MM-DD HH:MM:SS.mmm.
bool HasLocalTime(const std::string& text) {
  static constexpr std::string_view kShape = "dddd-dd-dd dd:dd:dd.ddd";
  for (size_t i = 0; i + kShape.size() <= text.size(); ++i) {
    size_t k = 0;
    while (k < kShape.size() &&
           (kShape[k] == 'd' ? std::isdigit(static_cast<unsigned char>(text[i + k])) != 0
                             : text[i + k] == kShape[k])) {
      ++k;
    }
    if (k == kShape.size()) return true;
  }
  return false;
}

TEST_F(WardenCliTest, RunOfASucceedingDagExitsZeroAndNodesRunInTheClientsDirectory) {
  std::string spec = R"({"name":"ok","nodes":[
      {"id":"a","argv":["sh","-c","pwd"]},
      {"id":"b","argv":["true"],"needs":["a"]},
      {"id":"c","argv":["sh","-c","echo err >&2"],"needs":["a"]}]})";
  CommandResult r = Warden({"run", WriteFile("ok.json", spec)});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("completed"), std::string::npos) << r.out;
  CommandResult ps = Warden({"ps", "--all", "--json"});
  ASSERT_EQ(ps.exit_code, 0);
  json::value list = Parse(ps.out);
  ASSERT_EQ(list.as_array().size(), 1u);
  std::string id = Str(list.as_array()[0], "executionId");
  CommandResult out = Warden({"logs", id, "a"});
  EXPECT_EQ(out.exit_code, 0);
  EXPECT_EQ(out.out, std::filesystem::current_path().string() + "\n");
  CommandResult err = Warden({"logs", id, "c", "--stderr"});
  EXPECT_EQ(err.out, "err\n");
}

TEST_F(WardenCliTest, RunOfAFailingDagExitsOne) {
  CommandResult r =
      Warden({"run", WriteFile("f.json", R"({"nodes":[{"id":"x","argv":["sh","-c","exit 3"]}]})")});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("node x failed with exit code 3"), std::string::npos) << r.err;
}

TEST_F(WardenCliTest, StopFromAnotherClientEndsRunWithTwoAndPrintsTheSummary) {
  pid_t run =
      StartWarden({"run", WriteFile("s.json", R"({"nodes":[{"id":"s","argv":["sleep","30"]}]})")});
  std::string id;
  ASSERT_TRUE(Eventually([&] {
    CommandResult ps = Warden({"ps", "--json"});
    json::value list = Parse(ps.out);
    if (!list.is_array() || list.as_array().empty()) return false;
    id = Str(list.as_array()[0], "executionId");
    return Status(id) == "running";
  }));
  CommandResult stop = Warden({"stop", id, "--note", "enough"});
  EXPECT_EQ(stop.exit_code, 0) << stop.err;
  EXPECT_NE(stop.out.find("stopped (user_abort)"), std::string::npos) << stop.out;
  EXPECT_NE(stop.out.find("0 of 1 nodes completed"), std::string::npos) << stop.out;
  CommandResult r = FinishWarden(run);
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  CommandResult again = Warden({"stop", id});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("stopped"), std::string::npos) << again.err;
}

TEST_F(WardenCliTest, CtrlCStopsTheExecutionWithUserAbortAndExits130) {
  pid_t run =
      StartWarden({"run", WriteFile("s.json", R"({"nodes":[{"id":"s","argv":["sleep","30"]}]})")});
  std::string id;
  ASSERT_TRUE(Eventually([&] {
    json::value list = Parse(Warden({"ps", "--json"}).out);
    if (!list.is_array() || list.as_array().empty()) return false;
    id = Str(list.as_array()[0], "executionId");
    return Status(id) == "running";
  }));
  kill(run, SIGINT);
  CommandResult r = FinishWarden(run);
  EXPECT_EQ(r.exit_code, 130) << r.out << r.err;
  EXPECT_NE(r.out.find("stopped (user_abort)"), std::string::npos) << r.out;
  EXPECT_EQ(Status(id), "stopped");
  CommandResult audit = Warden({"audit", "stops", "--db", data_ + "/warden.db", "--json"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  json::value stops = Parse(audit.out);
  ASSERT_EQ(stops.as_array().size(), 1u);
  EXPECT_EQ(Str(stops.as_array()[0], "execution_id"), id);
  EXPECT_EQ(Str(stops.as_array()[0], "reason"), "user_abort");
  EXPECT_EQ(Str(stops.as_array()[0], "requested_by").rfind("uid:" + std::to_string(getuid()), 0),
            0u);
  EXPECT_EQ(Str(stops.as_array()[0], "requested_by_comm"), "warden")
      << "the requesting process's name, read by the daemon";

  CommandResult timeline = Warden({"audit", "stop", id, "--db", data_ + "/warden.db"});
  ASSERT_EQ(timeline.exit_code, 0) << timeline.err;
  EXPECT_NE(timeline.out.find("+0 ms"), std::string::npos) << timeline.out;
  EXPECT_NE(timeline.out.find("stop requested by uid:"), std::string::npos) << timeline.out;
  EXPECT_NE(timeline.out.find(": SIGTERM, grace "), std::string::npos) << timeline.out;
  EXPECT_NE(timeline.out.find("stop completed: stopped"), std::string::npos) << timeline.out;
  CommandResult rows = Warden({"audit", "stop", id, "--db", data_ + "/warden.db", "--json"});
  ASSERT_EQ(rows.exit_code, 0) << rows.err;
  json::value parsed = Parse(rows.out);
  EXPECT_EQ(Str(parsed.at("stop"), "reason"), "user_abort");
  ASSERT_FALSE(parsed.at("nodes").as_array().empty());
  EXPECT_EQ(Str(parsed.at("nodes").as_array()[0], "outcome"), "graceful");
  EXPECT_EQ(Warden({"audit", "stop", "no-such-id", "--db", data_ + "/warden.db"}).exit_code, 1);
}

TEST_F(WardenCliTest, PauseFreezesTheNodeAndResumeThawsIt) {
  std::string id = RunDetached(R"({"nodes":[{"id":"s","argv":["sleep","30"]}]})");
  ASSERT_TRUE(Eventually([&] { return Status(id) == "running"; }));
  CommandResult pause = Warden({"pause", id});
  EXPECT_EQ(pause.exit_code, 0) << pause.err;
  json::value paused = Show(id);
  EXPECT_EQ(Str(paused, "status"), "paused");
  int pid = static_cast<int>(paused.at("nodes").at(0).at("pid").as_int64());
  auto state = [pid] {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), {});
    size_t paren = text.rfind(')');
    return paren == std::string::npos ? '?' : text[paren + 2];
  };
  EXPECT_TRUE(Eventually([&] { return state() == 'T'; })) << state();
  EXPECT_EQ(Warden({"pause", id}).exit_code, 1) << "a second pause is refused";
  CommandResult resume = Warden({"resume", id});
  EXPECT_EQ(resume.exit_code, 0) << resume.err;
  EXPECT_EQ(Status(id), "running");
  EXPECT_TRUE(Eventually([&] { return state() == 'S'; })) << state();
  EXPECT_EQ(Warden({"stop", id}).exit_code, 0);
}

TEST_F(WardenCliTest, EventsListTheJournalAndFollowEndsAfterTheTerminalEvent) {
  std::string id = RunDetached(R"({"nodes":[{"id":"a","argv":["sleep","0.3"]}]})");
  CommandResult follow = Warden({"events", id, "--follow", "--json"});
  EXPECT_EQ(follow.exit_code, 0) << follow.err;
  std::vector<std::string> kinds;
  std::istringstream lines(follow.out);
  int64_t last_seq = 0;
  for (std::string line; std::getline(lines, line);) {
    json::value event = Parse(line);
    kinds.push_back(Str(event, "kind"));
    EXPECT_GT(event.at("seq").as_int64(), last_seq) << "in order, no repeats";
    last_seq = event.at("seq").as_int64();
  }
  ASSERT_FALSE(kinds.empty());
  EXPECT_EQ(kinds.front(), "execution.created");
  EXPECT_EQ(kinds.back(), "execution.completed");
  CommandResult all = Warden({"events", id});
  EXPECT_EQ(all.exit_code, 0);
  EXPECT_NE(all.out.find("node.started"), std::string::npos) << all.out;
  HttpResult after =
      Http("GET", "/api/executions/" + id + "/events?after=" + std::to_string(last_seq - 1));
  EXPECT_EQ(after.status, 200);
  EXPECT_EQ(Parse(after.body).at("events").as_array().size(), 1u);
}

TEST_F(WardenCliTest, ARepeatedRequestIdReturnsTheFirstExecution) {
  std::string spec = R"({"requestId":"job-42","nodes":[{"id":"a","argv":["true"]}]})";
  HttpResult first = Http("POST", "/api/executions", spec, "application/json");
  HttpResult second = Http("POST", "/api/executions", spec, "application/json");
  EXPECT_EQ(first.status, 201) << first.body;
  EXPECT_EQ(second.status, 200) << second.body;
  EXPECT_EQ(Str(Parse(first.body), "executionId"), Str(Parse(second.body), "executionId"));
  EXPECT_EQ(Parse(Warden({"ps", "--all", "--json"}).out).as_array().size(), 1u);
}

TEST_F(WardenCliTest, EveryErrorHasItsCodeAndAJsonBody) {
  auto expect_error = [&](const HttpResult& r, int status, const std::string& code) {
    EXPECT_EQ(r.status, status) << r.body;
    json::value body = Parse(r.body);
    EXPECT_EQ(Str(body.at("error"), "code"), code) << r.body;
    EXPECT_FALSE(Str(body.at("error"), "message").empty());
  };
  HttpResult cycle = Http("POST", "/api/executions",
                          R"({"nodes":[{"id":"a","argv":["x"],"needs":["b"]},)"
                          R"({"id":"b","argv":["x"],"needs":["a"]}]})",
                          "application/json");
  expect_error(cycle, 400, "invalid_argument");
  EXPECT_NE(cycle.body.find("cycle"), std::string::npos) << cycle.body;
  expect_error(Http("POST", "/api/executions", R"({"nodes":[],"bogus":1})", "application/json"),
               400, "invalid_argument");
  expect_error(Http("POST", "/api/executions", "nodes: []", "text/yaml"), 415,
               "unsupported_media_type");
  expect_error(Http("POST", "/api/executions", std::string(5u << 20, ' '), "application/json"), 413,
               "too_large");
  expect_error(Http("GET", "/api/executions/nope"), 404, "not_found");
  expect_error(Http("POST", "/api/executions/nope/pause"), 404, "not_found");
  expect_error(Http("GET", "/api/nothing-here"), 404, "not_found");
  expect_error(Http("DELETE", "/api/executions"), 405, "method_not_allowed");
  expect_error(Http("GET", "/api/executions?state=sleepy"), 400, "invalid_argument");
  expect_error(Http("POST", "/api/execute/stop", R"({"reason":"user_abort"})", "application/json"),
               400, "invalid_argument");

  std::string id = RunDetached(R"({"nodes":[{"id":"a","argv":["true"]}]})");
  ASSERT_TRUE(Eventually([&] { return Status(id) == "completed"; }));
  HttpResult pause = Http("POST", "/api/executions/" + id + "/pause");
  expect_error(pause, 409, "conflict");
  EXPECT_NE(pause.body.find("pause"), std::string::npos);
  EXPECT_NE(pause.body.find("completed"), std::string::npos) << "names request and state";
  expect_error(
      Http("POST", "/api/execute/stop", R"({"executionId":")" + id + R"("})", "application/json"),
      409, "conflict");
  expect_error(Http("GET", "/api/executions/" + id + "/nodes/zzz/log"), 404, "not_found");
  // A node that wrote nothing has an empty log, not a missing one.
  HttpResult silent = Http("GET", "/api/executions/" + id + "/nodes/a/log?stream=stderr");
  EXPECT_EQ(silent.status, 200) << silent.body;
  EXPECT_EQ(silent.body, "");
  expect_error(
      Http("POST", "/api/executions/" + id + "/stop", R"({"reason":"bored"})", "application/json"),
      400, "invalid_argument");
}

TEST_F(WardenCliTest, StopWithoutWaitAnswers202WhileStopping) {
  std::string id =
      RunDetached(R"({"nodes":[{"id":"t","argv":["sh","-c","trap '' TERM; echo armed; sleep 30"],)"
                  R"("graceMs":300}]})");
  ASSERT_TRUE(Eventually([&] { return Warden({"logs", id, "t"}).out == "armed\n"; }));
  HttpResult r = Http("POST", "/api/execute/stop",
                      R"({"executionId":")" + id + R"(","wait":false})", "application/json");
  EXPECT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(Str(Parse(r.body), "status"), "stopping");
  HttpResult joined = Http("POST", "/api/executions/" + id + "/stop");
  EXPECT_EQ(joined.status, 200) << joined.body;
  json::value result = Parse(joined.body);
  EXPECT_EQ(Str(result, "status"), "stopped");
  EXPECT_EQ(result.at("nodesKilled").as_int64(), 1);
}

TEST_F(WardenCliTest, HealthAndMetricsReportTheDaemon) {
  HttpResult health = Http("GET", "/api/health");
  ASSERT_EQ(health.status, 200);
  json::value h = Parse(health.body);
  EXPECT_EQ(Str(h, "status"), "ok");
  EXPECT_EQ(Str(h, "containment"), "pgroup");
  EXPECT_EQ(Str(h, "journal"), "ok");
  EXPECT_EQ(h.at("activeExecutions").as_int64(), 0);
  RunDetached(R"({"nodes":[{"id":"a","argv":["true"]}]})");
  HttpResult metrics = Http("GET", "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.content_type.rfind("text/plain", 0), 0u);
  for (const char* line :
       {"warden_executions{state=\"running\"}", "warden_running_nodes ",
        "warden_stops_total{reason=\"server_shutdown\"} 0", "warden_sigkill_escalations_total 0",
        "warden_journal_commit_seconds_count{durability=\"crash_safe\"} ",
        "warden_last_recovery_duration_seconds 0"}) {
    EXPECT_NE(metrics.body.find(line), std::string::npos) << line << "\n" << metrics.body;
  }
  // At least the create's durable commit is counted.
  const std::string durable = "warden_journal_commit_seconds_count{durability=\"durable\"} ";
  size_t at = metrics.body.find(durable);
  ASSERT_NE(at, std::string::npos);
  EXPECT_GE(std::atoi(metrics.body.c_str() + at + durable.size()), 1);
}

TEST_F(WardenCliTest, UnreachableDaemonExits69AndSaysWhere) {
  std::string missing = dir_ + "/no.sock";
  std::vector<std::string> args = {"--socket", missing, "ps"};
  CommandResult r = Warden(args);
  EXPECT_EQ(r.exit_code, 69);
  EXPECT_NE(r.err.find("cannot connect to wardend at " + missing + ": "), std::string::npos)
      << r.err;
  EXPECT_EQ(Warden({"frobnicate"}).exit_code, 64);
  EXPECT_EQ(Warden({"run"}).exit_code, 64);
}

TEST_F(WardenCliTest, AMissingArgumentIsNamedAsTheUsageLineShowsIt) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"run"}, "warden: missing SPEC\n"},
      {{"stop"}, "warden: missing ID\n"},
      {{"stop", "--grace-ms", "5"}, "warden: missing ID\n"},
      {{"logs", "some-id"}, "warden: missing NODE\n"},
      {{"audit"}, "warden: missing VIEW\n"},
  };
  for (const auto& [args, want] : cases) {
    CommandResult r = Warden(args);
    EXPECT_EQ(r.exit_code, 64) << args[0];
    EXPECT_EQ(r.err.rfind(want, 0), 0u) << args[0] << ": " << r.err;
    EXPECT_NE(r.err.find("usage: warden " + args[0]), std::string::npos) << r.err;
  }
}

TEST_F(WardenCliTest, SecondCtrlCKillsTheNodesAtOnceAndRunStillExits130) {
  // The node ignores SIGTERM and has a grace of 60 s: only SIGKILL ends it early.
  pid_t run = StartWarden(
      {"run", WriteFile("t.json", R"({"nodes":[{"id":"t","argv":["sh","-c",)"
                                  R"("trap '' TERM; echo armed; sleep 120"],"graceMs":60000}]})")});
  std::string id;
  ASSERT_TRUE(Eventually([&] {
    json::value list = Parse(Warden({"ps", "--json"}).out);
    if (!list.is_array() || list.as_array().empty()) return false;
    id = Str(list.as_array()[0], "executionId");
    return Warden({"logs", id, "t"}).out == "armed\n";
  }));
  const auto first = std::chrono::steady_clock::now();
  kill(run, SIGINT);
  ASSERT_TRUE(Eventually([&] { return Status(id) == "stopping"; }));
  kill(run, SIGINT);
  CommandResult r = FinishWarden(run, std::chrono::seconds(20));
  const auto took = std::chrono::steady_clock::now() - first;
  EXPECT_EQ(r.exit_code, 130) << r.out << r.err;
  EXPECT_NE(r.out.find("stopped (user_abort)"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("interrupted again: killing the nodes"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("cannot connect"), std::string::npos) << r.err;
  EXPECT_LT(took, std::chrono::seconds(30)) << "SIGKILL came before the 60 s grace ran out";
  json::value execution = Show(id);
  EXPECT_EQ(Str(execution, "status"), "stopped");
  EXPECT_EQ(Str(execution.at("nodes").at(0), "signal"), "SIGKILL");

  CommandResult rows = Warden({"audit", "stop", id, "--db", data_ + "/warden.db", "--json"});
  ASSERT_EQ(rows.exit_code, 0) << rows.err;
  json::value stop = Parse(rows.out);
  ASSERT_EQ(stop.at("requests").as_array().size(), 2u) << rows.out;
  const json::value& joined = stop.at("requests").at(1);
  EXPECT_EQ(joined.at("joined").as_int64(), 1);
  EXPECT_EQ(joined.at("grace_ms").as_int64(), 0);
  const json::value& node = stop.at("nodes").at(0);
  EXPECT_EQ(Str(node, "outcome"), "killed");
  EXPECT_LT(node.at("sigkill_at").as_int64() - node.at("sigterm_at").as_int64(), 60000);
}

TEST_F(WardenCliTest, AnEmptyOrMalformedIdIsAUsageErrorThatNamesIt) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"show", ""}, "warden: '' is not an execution ID"},
      {{"stop", ""}, "warden: '' is not an execution ID"},
      {{"pause", "a/b"}, "warden: 'a/b' is not an execution ID"},
      {{"resume", " "}, "warden: ' ' is not an execution ID"},
      {{"events", "../x"}, "warden: '../x' is not an execution ID"},
      {{"logs", "", "n"}, "warden: '' is not an execution ID"},
      {{"logs", "abc", ""}, "warden: '' is not a node ID"},
      {{"audit", "stop", "x?y", "--db", "/nonexistent"}, "warden: 'x?y' is not an execution ID"},
  };
  for (const auto& [args, want] : cases) {
    CommandResult r = Warden(args);
    EXPECT_EQ(r.exit_code, 64) << args[0] << ": " << r.out << r.err;
    EXPECT_EQ(r.err.rfind(want, 0), 0u) << args[0] << ": " << r.err;
    EXPECT_NE(r.err.find("usage: warden " + args[0]), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "") << args[0];
  }
  CommandResult huge = Warden({"show", std::string(5000, 'a')});
  EXPECT_EQ(huge.exit_code, 64);
  EXPECT_LT(huge.err.size(), 1000u) << "a huge id is not echoed whole";
}

TEST_F(WardenCliTest, EveryCommandHasHelp) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"run", "--help"},
                                             {"ps", "--help"},
                                             {"show", "--help"},
                                             {"stop", "-h"},
                                             {"pause", "--help"},
                                             {"resume", "--help"},
                                             {"logs", "--help"},
                                             {"events", "--help"},
                                             {"audit", "--help"},
                                             {"audit", "stop", "--help"}}) {
    CommandResult r = Warden(args);
    EXPECT_EQ(r.exit_code, 0) << args[0] << ": " << r.err;
    EXPECT_EQ(r.out.rfind("usage: warden " + args[0] + " ", 0), 0u) << r.out;
    EXPECT_NE(r.out.find("--help"), std::string::npos) << r.out;
    EXPECT_EQ(r.err, "") << args[0];
  }
  CommandResult run = Warden({"run", "--help"});
  EXPECT_NE(run.out.find("65 the spec is not\nJSON or wardend refused it"), std::string::npos)
      << run.out;
  CommandResult top = Warden({"--help"});
  EXPECT_EQ(top.exit_code, 0);
  for (const char* code : {" 0 success", " 1 ", " 2 ", " 64 ", " 65 ", " 69 ", " 130 "}) {
    EXPECT_NE(top.out.find(code), std::string::npos) << code << "\n" << top.out;
  }
}

TEST_F(WardenCliTest, ASpecTheDaemonRefusesExits65NotOneLikeAFailedRun) {
  CommandResult cycle =
      Warden({"run", WriteFile("c.json", R"({"nodes":[{"id":"a","argv":["x"],"needs":["b"]},)"
                                         R"({"id":"b","argv":["x"],"needs":["a"]}]})")});
  EXPECT_EQ(cycle.exit_code, 65) << cycle.err;
  EXPECT_NE(cycle.err.find("cycle"), std::string::npos) << cycle.err;
  CommandResult unknown =
      Warden({"run", WriteFile("u.json", R"({"nodes":[{"id":"a","argv":["true"],"colour":1}]})"),
              "--detach"});
  EXPECT_EQ(unknown.exit_code, 65) << unknown.err;
  CommandResult not_json = Warden({"run", WriteFile("n.json", "nodes: [a]")});
  EXPECT_EQ(not_json.exit_code, 65) << not_json.err;
  EXPECT_EQ(Warden({"run", dir_ + "/missing.json"}).exit_code, 64);
  EXPECT_EQ(Parse(Warden({"ps", "--all", "--json"}).out).as_array().size(), 0u);
}

TEST_F(WardenCliTest, PsCountsCompletedNodesNotStoppedOnes) {
  std::string id = RunDetached(R"({"name":"three","nodes":[{"id":"a","argv":["true"]},)"
                               R"({"id":"b","argv":["sleep","30"],"needs":["a"]},)"
                               R"({"id":"c","argv":["true"],"needs":["b"]}]})");
  ASSERT_TRUE(Eventually([&] { return Str(Show(id).at("nodes").at(1), "status") == "running"; }));
  ASSERT_EQ(Warden({"stop", id}).exit_code, 0);
  CommandResult ps = Warden({"ps", "--all"});
  ASSERT_EQ(ps.exit_code, 0) << ps.err;
  std::istringstream lines(ps.out);
  std::string header, row;
  std::getline(lines, header);
  std::getline(lines, row);
  EXPECT_NE(header.find("COMPLETED"), std::string::npos) << ps.out;
  EXPECT_NE(row.find("stopped"), std::string::npos) << ps.out;
  EXPECT_NE(row.find(" 1/3 "), std::string::npos) << ps.out;
}

TEST_F(WardenCliTest, AuditStopsShowsLocalTimesAndCutsLongNotes) {
  std::string id = RunDetached(R"({"nodes":[{"id":"s","argv":["sleep","30"]}]})");
  ASSERT_TRUE(Eventually([&] { return Status(id) == "running"; }));
  const std::string note = "a note that goes on " + std::string(130, 'z');
  ASSERT_EQ(Warden({"stop", id, "--note", note}).exit_code, 0);
  const std::string db = data_ + "/warden.db";
  CommandResult json_rows = Warden({"audit", "stops", "--db", db, "--json"});
  ASSERT_EQ(json_rows.exit_code, 0) << json_rows.err;
  const json::value rows = Parse(json_rows.out);
  const json::value& raw = rows.at(0);
  EXPECT_EQ(Str(raw, "note"), note) << "--json keeps the raw row";
  const std::string requested_at = std::to_string(raw.at("requested_at").as_int64());

  CommandResult table = Warden({"audit", "stops", "--db", db});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(table.out.find(requested_at), std::string::npos) << table.out;
  EXPECT_TRUE(HasLocalTime(table.out)) << table.out;
  EXPECT_EQ(table.out.find(note), std::string::npos) << table.out;
  EXPECT_NE(table.out.find(note.substr(0, 37) + "..."), std::string::npos) << table.out;
  // The note column is as wide as its cut cell, 40 characters, not 150.
  const std::string header = table.out.substr(0, table.out.find('\n'));
  const size_t note_at = header.find(" note ") + 1;
  const size_t next_at = header.find_first_not_of(' ', note_at + 4);
  ASSERT_NE(next_at, std::string::npos) << header;
  EXPECT_EQ(next_at - note_at, 42u) << header;
}

TEST_F(WardenCliTest, NotifyLinesWithoutAnEqualsSignAreCountedAsMalformed) {
  std::string id = RunDetached(
      R"({"nodes":[{"id":"n","argv":["sh","-c",)"
      R"("echo no equals sign >&$WARDEN_NOTIFY_FD; echo cost_usd=lots >&$WARDEN_NOTIFY_FD; )"
      R"(echo cost_usd=0.5 >&$WARDEN_NOTIFY_FD"]}]})");
  ASSERT_TRUE(Eventually([&] { return Status(id) == "completed"; }));
  EXPECT_EQ(Show(id).at("costUsd").to_number<double>(), 0.5);
  HttpResult metrics = Http("GET", "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("\nwarden_malformed_notify_lines_total 2\n"), std::string::npos)
      << metrics.body;
}

}  // namespace
}  // namespace warden::testing
