// Crash recovery at moments a signal from outside cannot hit: wardend SIGKILLs itself at a
// test-only crash point (WARDEN_CRASH_POINT, src/base/crash_point.h) inside a launch or inside
// recovery, and the next start must finish the job; also the output keeper and onRecovery
// resume. Both containment modes, every wait bounded, leftovers found by marker and killed.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "daemon_fixture.h"

extern char** environ;

namespace warden::testing {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

json::value Parse(const std::string& text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  return ec ? json::value() : v;
}
std::string Str(const json::value& v, std::string_view key) {
  const json::value* f = v.is_object() ? v.as_object().if_contains(key) : nullptr;
  return f && f->is_string() ? std::string(f->as_string()) : "";
}
int64_t Int(const json::value& v, std::string_view key) {  // -1: absent, null, not a number
  const json::value* f = v.is_object() ? v.as_object().if_contains(key) : nullptr;
  boost::system::error_code ec;
  int64_t n = f && f->is_number() ? f->to_number<int64_t>(ec) : -1;
  return ec ? -1 : n;
}
std::string ReadText(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

// A process seen alive: pid and start time (/proc/PID/stat field 22), so that a recycled pid
// is never taken for it.
struct Process {
  pid_t pid = -1;
  std::string start_time;
};
std::optional<std::pair<char, std::string>> StateAndStart(pid_t pid) {
  std::string text = ReadText("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = text.rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream rest(text.substr(paren + 1));
  std::string field[20];
  for (std::string& f : field) rest >> f;  // fields 3..22
  if (!rest) return std::nullopt;
  return std::make_pair(field[0][0], field[19]);
}
std::optional<Process> Identify(pid_t pid) {
  auto s = pid > 0 ? StateAndStart(pid) : std::nullopt;
  if (!s || s->first == 'Z') return std::nullopt;
  return Process{pid, s->second};
}
bool Alive(const Process& p) {
  auto s = StateAndStart(p.pid);
  return s && s->first != 'Z' && s->second == p.start_time;
}
bool HasEnv(pid_t pid, const std::string& entry) {
  std::istringstream env(ReadText("/proc/" + std::to_string(pid) + "/environ"));
  for (std::string e; std::getline(env, e, '\0');) {
    if (e == entry) return true;
  }
  return false;
}
// Live (not zombie) processes whose environment holds `entry` (NAME=VALUE).
std::vector<pid_t> WithEnv(const std::string& entry) {
  std::vector<pid_t> found;
  DIR* proc = opendir("/proc");
  while (dirent* e = proc ? readdir(proc) : nullptr) {
    pid_t pid = static_cast<pid_t>(std::atol(e->d_name));
    if (pid > 0 && HasEnv(pid, entry) && Identify(pid)) found.push_back(pid);
  }
  if (proc) closedir(proc);
  return found;
}

class CrashPointsTest : public DaemonFixture, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override {
    DaemonFixture::SetUp();
    marker_ = "CRASH_POINTS_TEST_NODE=" + dir_;
    daemon_marker_ = "CRASH_POINTS_TEST_DAEMON=" + dir_;
    daemon_ = Start();
    if (daemon_ < 0 && GetParam() == "cgroup") GTEST_SKIP() << "no cgroup containment here";
    ASSERT_GT(daemon_, 0) << "wardend did not get ready";
  }
  void TearDown() override {
    KillLeftovers(marker_);
    DaemonFixture::TearDown();  // SIGTERM to every daemon still running, by pid
    KillLeftovers(daemon_marker_);
  }
  void KillLeftovers(const std::string& entry) {
    for (pid_t pid : WithEnv(entry)) {
      int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
      if (fd < 0) continue;
      if (HasEnv(pid, entry)) syscall(SYS_pidfd_send_signal, fd, SIGKILL, nullptr, 0);
      close(fd);
    }
  }

  // wardend on this test's directory; `crash_point` empty: none. Its pid once ready, or -1.
  pid_t Start(const std::string& crash_point = "") {
    std::map<std::string, std::string> env = {
        {daemon_marker_.substr(0, daemon_marker_.find('=')), dir_}};
    if (!crash_point.empty()) env["WARDEN_CRASH_POINT"] = crash_point;
    return StartDaemon({"--containment", GetParam(), "--grace-ms", "2000"}, env);
  }
  void Crash() {  // SIGKILL to the daemon, reaped; its nodes run on
    ASSERT_GT(daemon_, 0);
    EXPECT_EQ(StopDaemon(daemon_, SIGKILL), 128 + SIGKILL);
    daemon_ = -1;
  }

  std::string Spec(const std::string& text) {  // every node gets the marker
    json::value spec = Parse(text);
    for (json::value& node : spec.at("nodes").as_array()) {
      node.as_object()["env"] = json::object{{marker_.substr(0, marker_.find('=')), dir_}};
    }
    return json::serialize(spec);
  }
  std::string Create(const std::string& spec) {
    HttpResult r = Http("POST", "/api/executions", Spec(spec), "application/json");
    EXPECT_EQ(r.status, 201) << r.body;
    return r.status == 201 ? Str(Parse(r.body), "executionId") : "";
  }
  json::value Get(const std::string& id) {
    return Parse(Http("GET", "/api/executions/" + id).body);
  }
  json::array Events(const std::string& id) {
    json::value v = Parse(Http("GET", "/api/executions/" + id + "/events").body);
    return v.is_object() && v.as_object().contains("events") ? v.at("events").as_array()
                                                             : json::array{};
  }
  std::string Log(const std::string& id, const std::string& node) {
    HttpResult r = Http("GET", "/api/executions/" + id + "/nodes/" + node + "/log");
    return r.status == 200 ? r.body : "";
  }
  json::value Node(const std::string& id, const std::string& node) {
    json::value e = Get(id);
    if (!e.is_object() || !e.as_object().contains("nodes")) return {};
    for (const json::value& n : e.at("nodes").as_array()) {
      if (Str(n, "id") == node) return n;
    }
    return {};
  }
  // Waits until each of `nodes` runs (its process carries the marker) and has written
  // "started" if it announces; returns the processes in the order given.
  std::vector<Process> WaitRunning(const std::string& id, const std::vector<std::string>& nodes,
                                   bool announce = true) {
    std::vector<Process> found;
    bool ok = Eventually([&] {
      found.clear();
      for (const std::string& node : nodes) {
        json::value n = Node(id, node);
        auto p = Identify(static_cast<pid_t>(Int(n, "pid")));
        if (Str(n, "status") != "running" || !p || !HasEnv(p->pid, marker_)) return false;
        if (announce && Log(id, node) != "started\n") return false;
        found.push_back(*p);
      }
      return true;
    });
    EXPECT_TRUE(ok) << "not running: " << json::serialize(Get(id));
    return ok ? found : std::vector<Process>{};
  }

  json::array Query(const std::string& sql) {
    std::string out = dir_ + "/q.out";
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&actions, 2, (out + ".err").c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    std::string db = data_ + "/warden.db";
    const char* argv[] = {"sqlite3",  "-json",     "-cmd", ".timeout 10000",
                          db.c_str(), sql.c_str(), nullptr};
    pid_t pid = -1;
    int status = -1;
    if (posix_spawnp(&pid, "sqlite3", &actions, nullptr, const_cast<char**>(argv), environ) == 0) {
      auto deadline = steady_clock::now() + std::chrono::seconds(20);
      while (waitpid(pid, &status, WNOHANG) == 0) {
        if (steady_clock::now() > deadline) kill(pid, SIGKILL);
        std::this_thread::sleep_for(milliseconds(5));
      }
    }
    posix_spawn_file_actions_destroy(&actions);
    EXPECT_EQ(status, 0) << sql << ": " << ReadText(out + ".err");
    json::value rows = Parse(ReadText(out));
    return rows.is_array() ? rows.as_array() : json::array{};
  }
  json::array Orphans(const std::string& id) {
    return Query("SELECT * FROM orphans WHERE execution_id = '" + id + "'");
  }
  json::array Stops(const std::string& id) {
    return Query("SELECT * FROM stops WHERE execution_id = '" + id + "' ORDER BY stop_seq");
  }

  std::string marker_;         // NAME=VALUE in every node process of this test
  std::string daemon_marker_;  // NAME=VALUE in every daemon (and what it forks)
  pid_t daemon_ = -1;
};

const char* kCoop = R"(["sh","-c","echo started; exec sleep 60"])";
const char* kStubborn = R"(["sh","-c","trap '' TERM; echo started; while :; do sleep 0.1; done"])";

TEST_P(CrashPointsTest, DaemonKilledBetweenIntentAndIdentityStillFindsTheProcess) {
  ASSERT_EQ(StopDaemon(daemon_), 0) << DaemonLog(daemon_);
  daemon_ = Start("launch.after_intent");
  ASSERT_GT(daemon_, 0) << "wardend did not get ready";
  HttpResult created = Http("POST", "/api/executions",
                            Spec(R"({"graceMs":300,"nodes":[{"id":"s","argv":["sleep","60"]}]})"),
                            "application/json");
  EXPECT_EQ(created.status, 0) << "the daemon answered the create: " << created.body;
  EXPECT_EQ(StopDaemon(daemon_, 0), 128 + SIGKILL) << "it did not die: " << DaemonLog(daemon_);
  daemon_ = -1;
  std::optional<Process> node;
  ASSERT_TRUE(Eventually(
      [&] {
        std::vector<pid_t> pids = WithEnv(marker_);
        if (pids.size() == 1) node = Identify(pids[0]);
        return node.has_value();
      },
      milliseconds(3000)))
      << "the node's process does not exist (or is not alone)";

  daemon_ = Start();
  ASSERT_GT(daemon_, 0) << "wardend did not start after the crash";
  EXPECT_FALSE(Alive(*node)) << "the node's process " << node->pid << " survived the recovery";
  EXPECT_TRUE(WithEnv(marker_).empty());

  json::value list = Parse(Http("GET", "/api/executions?state=all").body);
  ASSERT_TRUE(list.is_object() && list.at("executions").as_array().size() == 1)
      << json::serialize(list);
  std::string id = Str(list.at("executions").at(0), "executionId");
  json::array orphans = Orphans(id);
  ASSERT_EQ(orphans.size(), 1u) << json::serialize(orphans);
  EXPECT_EQ(Str(orphans[0], "node_id"), "s");
  EXPECT_EQ(Int(orphans[0], "pid"), 0) << "no identity was journaled";
  EXPECT_EQ(Str(orphans[0], "detection"), GetParam() == "cgroup" ? "cgroup" : "cookie")
      << json::serialize(orphans);
  EXPECT_EQ(Str(orphans[0], "action"), "terminated") << json::serialize(orphans);
  EXPECT_EQ(Str(Get(id), "status"), "failed");
  json::array stops = Stops(id);
  ASSERT_EQ(stops.size(), 1u) << json::serialize(stops);
  EXPECT_EQ(Str(stops[0], "reason"), "crash_recovery");
}

TEST_P(CrashPointsTest, UnreadableRecordDoesNotKeepRecoveryFromTheOrphans) {
  std::string id = Create(R"({"graceMs":2000,"nodes":[)"
                          R"({"id":"a","argv":["sh","-c","echo started; exec sleep 60"]},)"
                          R"({"id":"b","argv":["sh","-c","echo started; exec sleep 60"]}]})");
  std::vector<Process> nodes = WaitRunning(id, {"a", "b"});
  ASSERT_EQ(nodes.size(), 2u);
  Crash();
  // A record of a known kind that cannot be read (a damaged row, or one written by hand).
  json::array inserted = Query(
      "INSERT INTO journal (at_ms, execution_id, node_id, attempt, kind, payload) VALUES "
      "(CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), '" +
      id + "', 'a', 1, 'cost.reported', '{\"costUsd\":\"lots\"}') RETURNING seq");
  ASSERT_EQ(inserted.size(), 1u);

  daemon_ = Start();
  ASSERT_GT(daemon_, 0) << "wardend did not start after the crash";
  for (const Process& p : nodes) {
    EXPECT_FALSE(Alive(p)) << "node process " << p.pid << " survived the recovery";
  }
  json::array orphans = Orphans(id);
  ASSERT_EQ(orphans.size(), 2u) << json::serialize(orphans);
  for (const json::value& row : orphans) {
    EXPECT_EQ(Str(row, "action"), "terminated") << json::serialize(row);
  }
  EXPECT_NE(DaemonLog(daemon_).find("skipped record " + std::to_string(Int(inserted[0], "seq"))),
            std::string::npos)
      << DaemonLog(daemon_);
  json::array stops = Stops(id);
  ASSERT_EQ(stops.size(), 1u) << json::serialize(stops);
  EXPECT_EQ(Str(stops[0], "reason"), "crash_recovery");
  // The API does not pretend: it names the record it cannot read.
  HttpResult got = Http("GET", "/api/executions/" + id);
  EXPECT_EQ(got.status, 500) << got.body;
  EXPECT_NE(got.body.find("cost.reported"), std::string::npos) << got.body;
}

TEST_P(CrashPointsTest, KillDuringRecoveryAtEachStepAndTheNextStartFinishesIt) {
  for (std::string step :
       {"recovery.after_found", "recovery.after_sigterm", "recovery.before_close"}) {
    SCOPED_TRACE(step);
    // The stubborn node first: recovery signals in launch order, so at after_sigterm the one
    // SIGTERM sent before the crash is the stubborn node's.
    std::string id = Create(R"({"graceMs":300,"maxParallel":2,"nodes":[{"id":"stubborn","argv":)" +
                            std::string(kStubborn) + R"(},{"id":"coop","argv":)" + kCoop + "}]}");
    ASSERT_FALSE(id.empty());
    std::vector<Process> nodes = WaitRunning(id, {"stubborn", "coop"});
    ASSERT_EQ(nodes.size(), 2u);
    Crash();

    pid_t ready = Start(step);
    EXPECT_LT(ready, 0) << "wardend got ready despite the crash point";
    if (ready > 0) StopDaemon(ready, SIGKILL);
    auto last_start = [&] {
      json::array rows = Query(
          "SELECT at_ms, json_extract(payload, '$.pid') AS pid FROM journal WHERE kind = "
          "'daemon.started' ORDER BY seq DESC LIMIT 1");
      return rows.empty() ? json::value() : rows[0];
    };
    pid_t crashed = static_cast<pid_t>(Int(last_start(), "pid"));
    EXPECT_EQ(StopDaemon(crashed, 0), 128 + SIGKILL) << DaemonLog(crashed);
    // Past the first SIGTERM's deadline: a fresh grace would show as a SIGKILL 300 ms after
    // the next start's SIGTERM, the kept deadline as a SIGKILL at once.
    if (step == "recovery.after_sigterm") std::this_thread::sleep_for(milliseconds(500));

    auto began = steady_clock::now();
    daemon_ = Start();
    auto took = steady_clock::now() - began;
    ASSERT_GT(daemon_, 0) << "wardend did not start after the crash in recovery";
    int64_t final_start = Int(last_start(), "at_ms");
    std::cerr << "[ info ] " << step << ": ready in " << took / milliseconds(1) << " ms\n";
    if (step == "recovery.after_sigterm") {
      EXPECT_LT(took, milliseconds(1500)) << "the grace counts from the first SIGTERM";
    }
    for (const Process& p : nodes) EXPECT_FALSE(Alive(p)) << p.pid << " is alive";
    EXPECT_TRUE(WithEnv(marker_).empty());
    EXPECT_EQ(Str(Get(id), "status"), "failed");

    int terminal = 0;
    int64_t first_term = -1, last_term = -1, first_kill = -1;
    json::array events = Events(id);
    for (const json::value& e : events) {
      std::string kind = Str(e, "kind");
      if (kind == "execution.failed" || kind == "execution.completed" ||
          kind == "execution.stopped") {
        ++terminal;
        EXPECT_EQ(kind, "execution.failed");
      }
      if (kind != "node.signalled" || Str(e, "node_id") != "stubborn") continue;
      std::string signal = Str(e.at("payload"), "signal");
      if (signal == "SIGTERM" && first_kill < 0) {
        if (first_term < 0) first_term = Int(e, "at_ms");
        last_term = Int(e, "at_ms");
      }
      if (signal == "SIGKILL" && first_kill < 0) first_kill = Int(e, "at_ms");
    }
    EXPECT_EQ(terminal, 1) << json::serialize(events);
    ASSERT_GE(first_term, 0) << "no SIGTERM journaled: " << json::serialize(events);
    ASSERT_GE(first_kill, 0) << "no SIGKILL journaled: " << json::serialize(events);
    EXPECT_GE(first_kill, first_term + 300) << "SIGKILL before the grace ran out";
    if (step == "recovery.after_sigterm") {
      ASSERT_LT(first_term, final_start) << "the stubborn node's SIGTERM came before the crash";
      EXPECT_LT(first_kill, std::max(last_term, final_start) + 250)
          << "a new grace was given: " << json::serialize(events);
    }
    for (const json::value& row : Orphans(id)) {
      EXPECT_FALSE(Str(row, "action").empty()) << "a finding left open: " << json::serialize(row);
    }
  }
}

TEST_P(CrashPointsTest, NodeWritingAfterTheCrashIsNotKilledBySigpipeAndItsOutputIsKept) {
  std::string id = Create(R"({"graceMs":300,"nodes":[{"id":"w","argv":["sh","-c",
      "trap 'echo got-term; exit 0' TERM; i=0; while :; do i=$((i+1)); echo line $i; sleep 0.1; done"]}]})");
  ASSERT_FALSE(id.empty());
  std::vector<Process> nodes = WaitRunning(id, {"w"}, /*announce=*/false);
  ASSERT_EQ(nodes.size(), 1u);
  std::string before;
  ASSERT_TRUE(Eventually([&] { return (before = Log(id, "w")).find("line 4\n") != before.npos; }));
  Crash();
  std::this_thread::sleep_for(milliseconds(1000));
  EXPECT_TRUE(Alive(nodes[0])) << "the node died while the daemon was down";
  daemon_ = Start();
  ASSERT_GT(daemon_, 0) << "wardend did not start after the crash";
  EXPECT_FALSE(Alive(nodes[0]));

  std::string after;
  EXPECT_TRUE(Eventually([&] { return (after = Log(id, "w")).ends_with("got-term\n"); },
                         milliseconds(3000)))
      << "the log does not end with got-term:\n"
      << after.substr(after.size() > 200 ? after.size() - 200 : 0);
  std::istringstream lines(after);
  int expected = 1, count_before = static_cast<int>(std::count(before.begin(), before.end(), '\n'));
  for (std::string line; std::getline(lines, line);) {
    if (line == "got-term") break;
    EXPECT_EQ(line, "line " + std::to_string(expected)) << "a gap or a stray line";
    if (line != "line " + std::to_string(expected)) break;
    ++expected;
  }
  EXPECT_GT(expected - 1, count_before) << "it wrote for 1 s while the daemon was down";
  json::array orphans = Orphans(id);
  ASSERT_EQ(orphans.size(), 1u) << json::serialize(orphans);
  EXPECT_EQ(Str(orphans[0], "action"), "terminated") << json::serialize(orphans);
}

TEST_P(CrashPointsTest, ResumeKeepsSucceededNodesAndRerunsTheRest) {
  std::string b = "if [ -f " + dir_ + "/second ]; then echo rerun; exit 0; fi; touch " + dir_ +
                  "/second; echo first; exec sleep 60";
  std::string id = Create(R"({"graceMs":300,"maxParallel":3,"onRecovery":"resume","nodes":[
      {"id":"a","argv":["true"]},
      {"id":"b","needs":["a"],"argv":["sh","-c",)" +
                          json::serialize(json::string(b)) + R"(]},
      {"id":"c","needs":["b"],"argv":["true"]}]})");
  ASSERT_FALSE(id.empty());
  ASSERT_EQ(WaitRunning(id, {"b"}, /*announce=*/false).size(), 1u);
  ASSERT_TRUE(Eventually([&] { return Log(id, "b") == "first\n"; })) << Log(id, "b");
  Crash();
  daemon_ = Start();
  ASSERT_GT(daemon_, 0) << "wardend did not start after the crash";

  std::string status;
  EXPECT_TRUE(Eventually(
      [&] {
        status = Str(Get(id), "status");
        return status == "completed" || status == "failed" || status == "stopped";
      },
      milliseconds(15000)));
  EXPECT_EQ(status, "completed") << json::serialize(Get(id));
  EXPECT_EQ(Int(Node(id, "a"), "attempt"), 1) << "a was rerun";
  EXPECT_EQ(Str(Node(id, "a"), "status"), "succeeded");
  EXPECT_EQ(Int(Node(id, "b"), "attempt"), 2);
  EXPECT_EQ(Str(Node(id, "b"), "status"), "succeeded");
  EXPECT_EQ(Str(Node(id, "c"), "status"), "succeeded");
  bool recovered = false;
  for (const json::value& ev : Events(id)) {
    recovered |= Str(ev, "kind") == "execution.recovered";
    if (Str(ev, "kind") == "execution.stop_requested") {
      EXPECT_NE(Str(ev.at("payload"), "reason"), "crash_recovery") << json::serialize(ev);
    }
  }
  EXPECT_TRUE(recovered) << "no execution.recovered row";
  EXPECT_TRUE(Stops(id).empty()) << json::serialize(Stops(id));
  // The crashed attempt's output is kept beside the rerun's.
  EXPECT_EQ(ReadText(data_ + "/output/" + id + "/b.1.stdout"), "first\n");
  EXPECT_EQ(ReadText(data_ + "/output/" + id + "/b.2.stdout"), "rerun\n");
}

INSTANTIATE_TEST_SUITE_P(BothModes, CrashPointsTest, ::testing::Values("cgroup", "pgroup"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace warden::testing
