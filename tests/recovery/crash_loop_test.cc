// The crash loop: wardend is killed with SIGKILL at random moments while a mixed workload
// runs through the HTTP API (creates, some with a requestId, some with ?start=false, some
// with "onRecovery":"resume"; starts, stops, pauses, resumes; some requests still in flight
// at the kill), and restarted at once every time. Nodes are cooperative (`sleep`),
// TERM-ignoring, short (`true`) and double-forking (`setsid sleep 30 &`); none writes to
// stdout or stderr (output pipes die with the daemon: a writer would get SIGPIPE). The test
// keeps every change the daemon acknowledged and checks at the end, after stopping
// everything and a clean shutdown, that nothing leaked, nothing acknowledged is missing from
// the journal, everything ended, and the API still knows every execution exactly once. It
// prints a table of those counts and asserts that each is 0.
//
// Run (both containment modes; cgroup skips itself where wardend cannot use it):
//   build/tests/recovery/crash_loop_test
//   WARDEN_CRASH_LOOP_CRASHES=50 build/tests/recovery/crash_loop_test   # the long run
//   WARDEN_CRASH_LOOP_SEED=1234 build/tests/recovery/crash_loop_test    # replay a seed
// WARDEN_CRASH_LOOP_CRASHES defaults to 20 (CI's short run). The seed is printed.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "daemon_fixture.h"

namespace warden::testing {
namespace {

namespace json = boost::json;
namespace http = boost::beast::http;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr const char* kMarkerName = "CRASH_LOOP_TEST_DIR";  // in every node's env
constexpr milliseconds kRequestTimeout{30'000};

std::optional<json::value> TryParse(const std::string& text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return std::nullopt;
  return v;
}

std::string Str(const json::value& v, std::string_view key) {
  const json::value* f = v.is_object() ? v.as_object().if_contains(key) : nullptr;
  return f && f->is_string() ? std::string(f->as_string()) : "";
}

std::string ReadText(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  long n = std::strtol(v, &end, 10);
  return (*end == '\0' && n > 0) ? static_cast<int>(n) : fallback;
}

// /proc/PID/stat: state (field 3) and start time (field 22), read after the last ')'.
struct ProcStat {
  char state = '?';
  unsigned long long start_time = 0;
};

std::optional<ProcStat> ReadProcStat(pid_t pid) {
  std::string text = ReadText("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = text.rfind(')');
  if (paren == std::string::npos || paren + 2 > text.size()) return std::nullopt;
  std::istringstream rest(text.substr(paren + 2));
  ProcStat stat;
  rest >> stat.state;
  std::string skipped;
  for (int field = 4; field < 22; ++field) rest >> skipped;
  rest >> stat.start_time;
  if (!rest) return std::nullopt;
  return stat;
}

// A live (not zombie) process of this test's nodes, as seen in /proc.
struct NodeProcess {
  pid_t pid = -1;
  unsigned long long start_time = 0;
  std::string execution_id;  // its WARDEN_EXECUTION_ID
  std::string cmdline;
};

std::map<std::string, std::string> Environment(pid_t pid) {
  std::map<std::string, std::string> vars;
  std::string text = ReadText("/proc/" + std::to_string(pid) + "/environ");
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\0', begin);
    if (end == std::string::npos) end = text.size();
    std::string entry = text.substr(begin, end - begin);
    size_t eq = entry.find('=');
    if (eq != std::string::npos) vars[entry.substr(0, eq)] = entry.substr(eq + 1);
    begin = end + 1;
  }
  return vars;
}

// Every live process that carries `marker_value` in kMarkerName, or whose
// WARDEN_EXECUTION_ID is one of `ids`.
std::vector<NodeProcess> FindNodeProcesses(const std::string& marker_value,
                                           const std::set<std::string>& ids) {
  std::vector<NodeProcess> found;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return found;
  while (dirent* e = readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || pid <= 0) continue;
    std::map<std::string, std::string> env = Environment(static_cast<pid_t>(pid));
    auto marker = env.find(kMarkerName);
    auto cookie = env.find("WARDEN_EXECUTION_ID");
    bool ours = (marker != env.end() && marker->second == marker_value) ||
                (cookie != env.end() && ids.count(cookie->second));
    if (!ours) continue;
    std::optional<ProcStat> stat = ReadProcStat(static_cast<pid_t>(pid));
    if (!stat || stat->state == 'Z') continue;
    NodeProcess p;
    p.pid = static_cast<pid_t>(pid);
    p.start_time = stat->start_time;
    p.execution_id = cookie == env.end() ? "" : cookie->second;
    p.cmdline = ReadText("/proc/" + std::to_string(pid) + "/cmdline");
    for (char& c : p.cmdline) c = c == '\0' ? ' ' : c;
    found.push_back(p);
  }
  closedir(proc);
  return found;
}

bool StillAlive(const NodeProcess& p) {
  std::optional<ProcStat> stat = ReadProcStat(p.pid);
  return stat && stat->state != 'Z' && stat->start_time == p.start_time;
}

std::string Describe(const std::vector<NodeProcess>& processes) {
  std::string text;
  for (const NodeProcess& p : processes) {
    text +=
        "  pid " + std::to_string(p.pid) + " execution " + p.execution_id + ": " + p.cmdline + "\n";
  }
  return text;
}

// One HTTP/1.1 request on the Unix socket with `Connection: close`, bounded by `limit`
// (the fixture's Http blocks without a bound; a hung daemon must fail the test, not hang
// it). status 0: no complete answer (refused, reset by the kill, or timed out).
struct Answer {
  int status = 0;
  bool timed_out = false;
  std::string body;
  int64_t at_ms = 0;  // wall clock when the answer was complete
};

int64_t WallMs() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Answer Request(const std::string& socket_path, const std::string& method, const std::string& target,
               const std::string& body, milliseconds limit) {
  Answer answer;
  auto deadline = steady_clock::now() + limit;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return answer;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, socket_path.c_str(), sizeof address.sun_path - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    close(fd);
    return answer;
  }
  std::string request = method + " " + target +
                        " HTTP/1.1\r\nHost: wardend\r\nConnection: close\r\n"
                        "Content-Type: application/json\r\nContent-Length: " +
                        std::to_string(body.size()) + "\r\n\r\n" + body;
  auto remaining_ms = [&] {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now()).count();
    return static_cast<int>(std::max<int64_t>(left, 0));
  };
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      close(fd);
      return answer;
    }
    pollfd pfd{fd, POLLOUT, 0};
    if (remaining_ms() == 0 || poll(&pfd, 1, remaining_ms()) == 0) {
      answer.timed_out = true;
      close(fd);
      return answer;
    }
  }
  // Read until the answer is complete (or the peer closes, or the time is up).
  std::string received;
  auto complete = [&](bool eof) {
    if (received.empty()) return false;  // (Beast's put_eof would "complete" an empty message)
    http::response_parser<http::string_body> parser;
    parser.eager(true);
    parser.body_limit(boost::none);
    boost::system::error_code ec;
    size_t used = 0;
    while (!ec && used < received.size() && !parser.is_done()) {
      size_t n =
          parser.put(boost::asio::buffer(received.data() + used, received.size() - used), ec);
      if (n == 0) break;
      used += n;
    }
    if (eof && !ec && !parser.is_done()) parser.put_eof(ec);
    if (ec || !parser.is_done()) return false;
    answer.status = static_cast<int>(parser.get().result_int());
    answer.at_ms = WallMs();
    answer.body = parser.get().body();
    return true;
  };
  for (;;) {
    pollfd pfd{fd, POLLIN, 0};
    int ready = remaining_ms() == 0 ? 0 : poll(&pfd, 1, remaining_ms());
    if (ready == 0) {
      answer.timed_out = true;
      break;
    }
    if (ready < 0) {
      if (errno == EINTR) continue;
      break;
    }
    char buf[8192];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) {
      complete(/*eof=*/true);
      break;
    }
    received.append(buf, static_cast<size_t>(n));
    if (complete(/*eof=*/false)) break;
  }
  close(fd);
  return answer;
}

// What the test asks the daemon to do; performed (possibly on another thread, in flight at
// the kill) and then applied to the test's record of acknowledged changes.
enum class Kind { kCreate, kStart, kStop, kPause, kResume };

struct Action {
  Kind kind = Kind::kCreate;
  std::string execution_id;  // start, stop, pause, resume
  std::string spec;          // create
  std::string request_id;    // create ("" for none)
  bool start = true;         // create: false for ?start=false
  bool resume_on_recovery = false;
  std::string stop_body;  // stop
};

const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::kCreate:
      return "create";
    case Kind::kStart:
      return "start";
    case Kind::kStop:
      return "stop";
    case Kind::kPause:
      return "pause";
    case Kind::kResume:
      return "resume";
  }
  return "?";
}

// An execution whose create the daemon acknowledged, and what it acknowledged since.
struct Tracked {
  std::string status;              // as last answered (may be stale after a crash)
  bool deliberately_idle = false;  // ?start=false, and no start or stop ever sent
  bool start_sent = false;
  int starts = 0, stops = 0, pauses = 0, resumes = 0;  // acknowledged
  std::string history;  // every acknowledgement: what, when (wall ms), in which daemon's life
};

bool IsActive(const std::string& status) {
  return status == "idle" || status == "running" || status == "paused" || status == "stopping";
}

class CrashLoopTest : public DaemonFixture, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override {
    DaemonFixture::SetUp();
    marker_ = dir_;
    daemon_ = StartWardend();
    if (daemon_ < 0 && GetParam() == "cgroup") {
      GTEST_SKIP() << "wardend cannot start with --containment cgroup on this host";
    }
    ASSERT_GT(daemon_, 0) << "wardend did not get ready";
  }

  void TearDown() override {
    for (std::thread& t : in_flight_) {
      if (t.joinable()) t.join();
    }
    KillLeftovers();
    DaemonFixture::TearDown();
    KillLeftovers();
  }

  pid_t StartWardend() { return StartDaemon({"--containment", GetParam(), "--grace-ms", "200"}); }

  // The wardend process of this test that StartDaemon gave up on (not ready in time), found
  // by its command line in /proc, or -1.
  pid_t FindUnreadyDaemon() {
    DIR* proc = opendir("/proc");
    if (proc == nullptr) return -1;
    pid_t found = -1;
    while (dirent* e = readdir(proc)) {
      char* end = nullptr;
      long pid = std::strtol(e->d_name, &end, 10);
      if (end == e->d_name || *end != '\0' || pid <= 0) continue;
      std::string cmdline = ReadText("/proc/" + std::to_string(pid) + "/cmdline");
      if (cmdline.rfind(std::string(WARDEND) + '\0', 0) == 0 &&
          cmdline.find('\0' + data_ + '\0') != std::string::npos) {
        std::optional<ProcStat> stat = ReadProcStat(static_cast<pid_t>(pid));
        if (stat && stat->state != 'Z') found = static_cast<pid_t>(pid);
      }
    }
    closedir(proc);
    return found;
  }

  // Restarts the daemon at once; counts a start that does not get ready in StartDaemon's
  // 10 s as failed, then gives that daemon 20 s more, else kills it and tries again.
  bool Restart() {
    for (int tries = 0; tries < 3; ++tries) {
      daemon_ = StartWardend();
      if (daemon_ > 0) {
        ++life_;
        return true;
      }
      ++failed_restarts_;
      pid_t slow = FindUnreadyDaemon();
      std::cout << "[crash loop] restart failed (try " << tries + 1 << "), wardend "
                << (slow > 0 ? std::to_string(slow) : std::string("exited")) << "\n";
      if (slow > 0) {
        if (Eventually([&] { return Call("GET", "/api/health").status == 200; },
                       milliseconds(20'000))) {
          daemon_ = slow;
          ++life_;
          return true;
        }
        std::cout << DaemonLog(slow);
        StopDaemon(slow, SIGKILL);
      }
    }
    daemon_ = -1;
    return false;
  }

  Answer Call(const std::string& method, const std::string& target, const std::string& body = "") {
    Answer a = Request(socket_, method, target, body, kRequestTimeout);
    if (a.timed_out) {
      std::lock_guard<std::mutex> lock(mutex_);
      ++timeouts_;
      timeout_notes_.push_back(method + " " + target);
    }
    return a;
  }

  // A random DAG of 2-6 nodes, graceMs 200, maxParallel 4; every node carries the marker.
  std::string RandomSpec(const std::string& request_id, bool resume_on_recovery) {
    static const json::array kCoop = {"sleep", "30"};
    static const json::array kStubborn = {"sh", "-c",
                                          "trap \"\" TERM; while :; do sleep 0.1; done"};
    static const json::array kShort = {"true"};
    static const json::array kDoubleFork = {"sh", "-c", "setsid sleep 30 & sleep 30"};
    json::object spec;
    spec["name"] = "crash-loop";
    spec["graceMs"] = 200;
    spec["maxParallel"] = 4;
    if (!request_id.empty()) spec["requestId"] = request_id;
    if (resume_on_recovery) spec["onRecovery"] = "resume";
    json::array nodes;
    int count = std::uniform_int_distribution<int>(2, 6)(random_);
    for (int i = 0; i < count; ++i) {
      json::object node;
      node["id"] = "n" + std::to_string(i);
      int kind = std::uniform_int_distribution<int>(0, 99)(random_);
      node["argv"] = kind < 35 ? kCoop : kind < 55 ? kStubborn : kind < 80 ? kShort : kDoubleFork;
      node["env"] = json::object{{kMarkerName, marker_}};
      if (i > 0 && std::uniform_int_distribution<int>(0, 99)(random_) < 30) {
        int need = std::uniform_int_distribution<int>(0, i - 1)(random_);
        node["needs"] = json::array{"n" + std::to_string(need)};
      }
      nodes.push_back(std::move(node));
    }
    spec["nodes"] = std::move(nodes);
    return json::serialize(spec);
  }

  std::vector<std::string> WithStatus(const std::function<bool(const Tracked&)>& pick) {
    std::vector<std::string> ids;
    for (const auto& [id, t] : acked_) {
      if (pick(t)) ids.push_back(id);
    }
    return ids;
  }

  std::string Pick(const std::vector<std::string>& ids) {
    return ids[std::uniform_int_distribution<size_t>(0, ids.size() - 1)(random_)];
  }

  int Percent() { return std::uniform_int_distribution<int>(0, 99)(random_); }

  Action NewCreate() {
    Action a;
    a.kind = Kind::kCreate;
    if (!retry_creates_.empty() && Percent() < 70) {
      // A create whose answer the crash swallowed, sent again with its requestId.
      a = retry_creates_.back();
      retry_creates_.pop_back();
      return a;
    }
    int r = Percent();
    if (r < 10 && !request_ids_.empty()) {
      // A repeat of an acknowledged requestId (another spec): must answer 200, same id.
      auto it = request_ids_.begin();
      std::advance(it, std::uniform_int_distribution<size_t>(0, request_ids_.size() - 1)(random_));
      a.request_id = it->first;
    } else if (r < 40) {
      a.request_id = "crash-loop-" + std::to_string(seed_) + "-" + std::to_string(++request_seq_);
    }
    a.start = Percent() >= 15;
    a.resume_on_recovery = Percent() < 25;
    a.spec = RandomSpec(a.request_id, a.resume_on_recovery);
    return a;
  }

  // A random action on the executions the test believes are in a state that allows it
  // (its belief may be stale: a refusal is fine, only acknowledgements are kept).
  Action NextAction() {
    auto active = WithStatus([](const Tracked& t) { return IsActive(t.status); });
    auto running = WithStatus([](const Tracked& t) { return t.status == "running"; });
    auto paused = WithStatus([](const Tracked& t) { return t.status == "paused"; });
    auto idle = WithStatus([](const Tracked& t) { return t.deliberately_idle; });
    auto stoppable = WithStatus([](const Tracked& t) {
      return IsActive(t.status) && t.status != "idle" && !t.deliberately_idle;
    });
    int r = Percent();
    // Keep the load bounded: with many active executions, mostly stop.
    if (stoppable.size() > 8) r = 40;
    Action a;
    if (r < 35 || active.empty()) return NewCreate();
    if (r < 55 && !stoppable.empty()) {
      a.kind = Kind::kStop;
      a.execution_id = Pick(stoppable);
    } else if (r < 58 && !idle.empty()) {
      a.kind = Kind::kStop;  // idle --stop--> stopped
      a.execution_id = Pick(idle);
    } else if (r < 72 && !running.empty()) {
      a.kind = Kind::kPause;
      a.execution_id = Pick(running);
    } else if (r < 88 && !paused.empty()) {
      a.kind = Kind::kResume;
      a.execution_id = Pick(paused);
    } else if (r < 95 && !idle.empty()) {
      a.kind = Kind::kStart;
      a.execution_id = Pick(idle);
    } else {
      return NewCreate();
    }
    if (a.kind == Kind::kStop) {
      json::object body{{"wait", Percent() < 50}, {"note", "crash loop"}};
      if (Percent() < 20) body["graceMs"] = 0;
      a.stop_body = json::serialize(body);
    }
    if (a.kind == Kind::kStart || a.kind == Kind::kStop) {
      Tracked& t = acked_[a.execution_id];
      t.deliberately_idle = false;
      if (a.kind == Kind::kStart) t.start_sent = true;
    }
    return a;
  }

  Answer Perform(const Action& a) {
    std::string base = "/api/executions/" + a.execution_id;
    switch (a.kind) {
      case Kind::kCreate:
        return Call("POST", a.start ? "/api/executions" : "/api/executions?start=false", a.spec);
      case Kind::kStart:
        return Call("POST", base + "/start");
      case Kind::kStop:
        return Call("POST", base + "/stop", a.stop_body);
      case Kind::kPause:
        return Call("POST", base + "/pause");
      case Kind::kResume:
        return Call("POST", base + "/resume");
    }
    return {};
  }

  // Keeps what the daemon acknowledged.
  void Apply(const Action& a, const Answer& answer) {
    ++requests_;
    if (answer.status == 0) ++unanswered_;
    std::optional<json::value> body = TryParse(answer.body);
    std::string status = body ? Str(*body, "status") : "";
    if (a.kind == Kind::kCreate) {
      if (answer.status == 201 || answer.status == 200) {
        std::string id = body ? Str(*body, "executionId") : "";
        if (id.empty()) {
          ++bad_answers_;
          notes_.push_back("create answered " + std::to_string(answer.status) +
                           " without an id: " + answer.body);
          return;
        }
        if (answer.status == 201 && acked_.count(id)) {
          ++bad_answers_;
          notes_.push_back("create answered 201 with a known execution " + id);
        }
        if (!a.request_id.empty()) {
          auto known = request_ids_.find(a.request_id);
          if (known != request_ids_.end() && known->second != id) {
            ++request_id_mismatches_;
            notes_.push_back("requestId " + a.request_id + " answered " + id + ", first " +
                             known->second);
          }
          if (answer.status == 201 && known != request_ids_.end()) {
            ++request_id_mismatches_;
            notes_.push_back("requestId " + a.request_id + " made a second execution " + id);
          }
          request_ids_.emplace(a.request_id, id);
        } else if (answer.status == 200) {
          ++bad_answers_;
          notes_.push_back("create without requestId answered 200: " + answer.body);
        }
        bool known = acked_.count(id) > 0;
        Tracked& t = acked_[id];
        t.status = status;
        if (!known) {
          created_order_.push_back(id);
          t.deliberately_idle = !a.start && status == "idle";
        }
        t.history += "create acknowledged at " + std::to_string(answer.at_ms) + " (daemon life " +
                     std::to_string(life_) + ", answer " + std::to_string(answer.status) + ")\n";
        ++acked_creates_;
      } else if (!a.request_id.empty() && answer.status == 0) {
        retry_creates_.push_back(a);
      }
      return;
    }
    Tracked& t = acked_[a.execution_id];
    if (answer.status == 409 || answer.status == 404) t.status = "";  // stale: refresh later
    bool acked = false;
    switch (a.kind) {
      case Kind::kStart:
        acked = answer.status == 200;
        t.starts += acked;
        break;
      case Kind::kStop:
        acked = answer.status == 200 || answer.status == 202;
        t.stops += acked;
        break;
      case Kind::kPause:
        acked = answer.status == 200;
        t.pauses += acked;
        break;
      case Kind::kResume:
        acked = answer.status == 200;
        t.resumes += acked;
        break;
      case Kind::kCreate:
        break;
    }
    if (acked) {
      t.history += std::string(KindName(a.kind)) + " acknowledged at " +
                   std::to_string(answer.at_ms) + " (daemon life " + std::to_string(life_) +
                   ", answer " + std::to_string(answer.status) + " status " + status + ")\n";
      ++acked_changes_[a.kind];
      if (!status.empty()) t.status = status;
    } else if (answer.status >= 500) {
      notes_.push_back(std::string(KindName(a.kind)) + " " + a.execution_id + " answered " +
                       std::to_string(answer.status) + ": " + answer.body);
    }
  }

  // After a restart: the test's belief about each execution, from the daemon.
  void RefreshStatuses() {
    Answer active = Call("GET", "/api/executions?state=active");
    std::optional<json::value> v = TryParse(active.body);
    if (active.status != 200 || !v || !v->is_object() || !v->as_object().contains("executions")) {
      return;
    }
    std::map<std::string, std::string> listed;
    for (const json::value& e : v->at("executions").as_array()) {
      listed[Str(e, "executionId")] = Str(e, "status");
    }
    for (auto& [id, t] : acked_) {
      auto it = listed.find(id);
      t.status = it == listed.end() ? "ended" : it->second;
    }
  }

  // Reads what the daemon wrote to its stderr pipe so far, so that it never blocks on a full
  // pipe (the fixture reads that pipe only when asked).
  void DrainLog() {
    if (daemon_ > 0) DaemonLog(daemon_);
  }

  std::set<std::string> AllIds() {
    std::set<std::string> ids(created_order_.begin(), created_order_.end());
    for (const std::string& id : journal_ids_) ids.insert(id);
    return ids;
  }

  // SIGKILL, through a pidfd, to every process still carrying this test's marker or one of
  // its execution ids (checked again after the pidfd pins it).
  int KillLeftovers() {
    int killed = 0;
    std::set<std::string> ids = AllIds();
    for (const NodeProcess& p : FindNodeProcesses(marker_, ids)) {
      int fd = static_cast<int>(syscall(SYS_pidfd_open, p.pid, 0));
      if (fd < 0) continue;
      if (StillAlive(p) && syscall(SYS_pidfd_send_signal, fd, SIGKILL, nullptr, 0) == 0) ++killed;
      close(fd);
    }
    return killed;
  }

  // Runs `sql` on the daemon's database (read-only, busy timeout 10 s); rows as strings.
  std::vector<std::vector<std::string>> Query(const std::string& sql) {
    std::vector<std::vector<std::string>> rows;
    try {
      SQLite::Database db(data_ + "/warden.db", SQLite::OPEN_READONLY);
      db.setBusyTimeout(10'000);
      SQLite::Statement query(db, sql);
      while (query.executeStep()) {
        std::vector<std::string> row;
        for (int i = 0; i < query.getColumnCount(); ++i) {
          row.push_back(query.getColumn(i).isNull() ? "NULL" : query.getColumn(i).getString());
        }
        rows.push_back(std::move(row));
      }
    } catch (const std::exception& e) {
      ADD_FAILURE() << sql << ": " << e.what();
    }
    return rows;
  }

  bool IntegrityOk() {
    auto rows = Query("PRAGMA integrity_check");
    bool ok = rows.size() == 1 && rows[0].size() == 1 && rows[0][0] == "ok";
    if (!ok) {
      std::string text;
      for (const auto& row : rows) text += (row.empty() ? "" : row[0]) + "; ";
      notes_.push_back("integrity_check: " + text);
    }
    return ok;
  }

  // Lines of wardend.log (every daemon of this test) at warn level and above.
  std::string WarningsFromLog(size_t max_lines) {
    std::istringstream log(ReadText(data_ + "/wardend.log"));
    std::string line, text;
    size_t lines = 0;
    while (std::getline(log, line) && lines < max_lines) {
      if (line.find("[warning]") != std::string::npos || line.find("[warn]") != std::string::npos ||
          line.find("[error]") != std::string::npos ||
          line.find("[critical]") != std::string::npos) {
        text += "  " + line + "\n";
        ++lines;
      }
    }
    return text;
  }

  std::string JournalOf(const std::string& id) {
    std::string text;
    for (const auto& row : Query("SELECT seq, node_id, attempt, kind, payload FROM journal "
                                 "WHERE execution_id = '" +
                                 id + "' ORDER BY seq")) {
      text += "  ";
      for (const std::string& col : row) text += col + " | ";
      text += "\n";
    }
    return text;
  }

  std::string marker_;
  std::string kill_times_;
  int life_ = 0;  // how many restarts so far
  pid_t daemon_ = -1;
  std::vector<std::thread> in_flight_;
  std::mt19937_64 random_;
  uint64_t seed_ = 0;
  int request_seq_ = 0;

  std::map<std::string, Tracked> acked_;
  std::vector<std::string> created_order_;
  std::map<std::string, std::string> request_ids_;  // requestId -> acknowledged execution
  std::vector<Action> retry_creates_;
  std::vector<std::string> journal_ids_;
  std::map<Kind, int> acked_changes_;
  int acked_creates_ = 0;
  int requests_ = 0, unanswered_ = 0, bad_answers_ = 0, request_id_mismatches_ = 0;
  int failed_restarts_ = 0;
  std::mutex mutex_;
  int timeouts_ = 0;
  std::vector<std::string> timeout_notes_;
  std::vector<std::string> notes_;
};

TEST_P(CrashLoopTest, RandomKillNineUnderLoadLosesNothingAcknowledgedAndLeaksNothing) {
  const auto began = steady_clock::now();
  const int crashes = EnvInt("WARDEN_CRASH_LOOP_CRASHES", 20);
  seed_ = static_cast<uint64_t>(EnvInt("WARDEN_CRASH_LOOP_SEED", 0));
  if (seed_ == 0) seed_ = std::random_device{}() & 0x7fffffff;
  random_.seed(seed_);
  std::cout << "[crash loop] containment " << GetParam() << ", " << crashes << " crashes, seed "
            << seed_ << " (WARDEN_CRASH_LOOP_SEED=" << seed_ << " replays the choices)\n";
  RecordProperty("seed", std::to_string(seed_));

  int crashed = 0, in_flight_at_kill = 0, orphans_alive_after_restart = 0, integrity_failures = 0;
  std::string orphan_evidence;
  for (int cycle = 0; cycle < crashes; ++cycle) {
    // A burst of actions, each answered before the next.
    int burst = std::uniform_int_distribution<int>(2, 6)(random_);
    for (int i = 0; i < burst; ++i) {
      Action a = NextAction();
      Apply(a, Perform(a));
    }
    DrainLog();
    // Two streams of further requests (5-25 each, one after another) run on while the kill
    // comes; a stream ends at its first unanswered request.
    struct Stream {
      std::vector<Action> actions;
      std::vector<Answer> answers;
    };
    std::vector<Stream> streams(2);
    for (Stream& stream : streams) {
      int length = std::uniform_int_distribution<int>(5, 25)(random_);
      for (int i = 0; i < length; ++i) stream.actions.push_back(NextAction());
    }
    for (Stream& stream : streams) {
      in_flight_.emplace_back([this, &stream] {
        for (const Action& a : stream.actions) {
          stream.answers.push_back(Perform(a));
          if (stream.answers.back().status == 0) break;
        }
      });
    }
    int delay_ms = std::uniform_int_distribution<int>(0, 400)(random_);
    std::this_thread::sleep_for(milliseconds(delay_ms));  // the random moment of the crash

    ASSERT_GT(daemon_, 0);
    kill_times_ +=
        "  kill " + std::to_string(crashed + 1) + " at " + std::to_string(WallMs()) + "\n";
    StopDaemon(daemon_, SIGKILL);
    ++crashed;
    for (std::thread& t : in_flight_) t.join();
    in_flight_.clear();
    for (const Stream& stream : streams) {
      for (size_t i = 0; i < stream.answers.size(); ++i) {
        in_flight_at_kill += stream.answers[i].status == 0;
        Apply(stream.actions[i], stream.answers[i]);
      }
    }
    // Whatever ran when the daemon died: none of it may outlive the restart's recovery.
    std::vector<NodeProcess> before = FindNodeProcesses(marker_, AllIds());

    ASSERT_TRUE(Restart()) << "wardend did not start after crash " << crashed << ", seed " << seed_;
    std::vector<NodeProcess> survivors;
    for (const NodeProcess& p : before) {
      if (StillAlive(p)) survivors.push_back(p);
    }
    if (!survivors.empty()) {
      orphans_alive_after_restart += static_cast<int>(survivors.size());
      orphan_evidence += "after crash " + std::to_string(crashed) + ":\n" + Describe(survivors);
    }
    integrity_failures += !IntegrityOk();
    RefreshStatuses();
    DrainLog();
  }

  // Stop everything cleanly through the API (except the executions deliberately left idle),
  // so that what follows checks the daemon's own stops, not the shutdown's.
  auto deliberately_idle = [&](const std::string& id) {
    auto it = acked_.find(id);
    return it != acked_.end() && it->second.deliberately_idle && !it->second.start_sent;
  };
  for (int pass = 0; pass < 3; ++pass) {
    Answer active = Call("GET", "/api/executions?state=active");
    std::optional<json::value> v = TryParse(active.body);
    ASSERT_EQ(active.status, 200) << active.body;
    ASSERT_TRUE(v && v->is_object() && v->as_object().contains("executions")) << active.body;
    int stopped = 0;
    for (const json::value& e : v->at("executions").as_array()) {
      std::string id = Str(e, "executionId");
      if (deliberately_idle(id)) continue;
      Action a;
      a.kind = Kind::kStop;
      a.execution_id = id;
      a.stop_body = R"({"wait":true,"note":"crash loop: final stop"})";
      Answer answer = Perform(a);
      if (acked_.count(id)) Apply(a, answer);
      ++stopped;
    }
    if (stopped == 0) break;
  }
  std::vector<NodeProcess> after_stops = FindNodeProcesses(marker_, AllIds());

  // The API: every acknowledged execution answers, and is listed exactly once.
  int unknown_to_api = 0, listing_errors = 0;
  std::string api_evidence;
  for (const std::string& id : created_order_) {
    Answer one = Call("GET", "/api/executions/" + id);
    if (one.status != 200) {
      ++unknown_to_api;
      api_evidence += "  GET " + id + ": " + std::to_string(one.status) + " " + one.body + "\n";
    }
  }
  Answer all = Call("GET", "/api/executions?state=all");
  std::map<std::string, int> listed;
  if (std::optional<json::value> v = TryParse(all.body);
      all.status == 200 && v && v->is_object() && v->as_object().contains("executions")) {
    for (const json::value& e : v->at("executions").as_array()) ++listed[Str(e, "executionId")];
  } else {
    api_evidence += "  GET ?state=all: " + std::to_string(all.status) + "\n";
  }
  for (const std::string& id : created_order_) {
    if (listed[id] != 1) {
      ++listing_errors;
      api_evidence += "  " + id + " listed " + std::to_string(listed[id]) + " times\n";
    }
  }

  // The journal's view of every execution, while the daemon still runs.
  int not_terminal = 0;
  std::string status_evidence;
  for (const auto& row : Query("SELECT id, status FROM executions ORDER BY id")) {
    journal_ids_.push_back(row[0]);
    bool idle_on_purpose = deliberately_idle(row[0]);
    bool wrong = idle_on_purpose ? row[1] != "idle" : IsActive(row[1]) || row[1] == "NULL";
    if (wrong) {
      ++not_terminal;
      status_evidence += "  " + row[0] + " is " + row[1] +
                         (idle_on_purpose ? " (left idle on purpose)" : "") + "\n";
    }
  }

  // The final clean shutdown; then nothing of this test's executions may be alive.
  pid_t last = daemon_;
  int shutdown_code = StopDaemon(daemon_);
  daemon_ = -1;
  std::vector<NodeProcess> leaked = FindNodeProcesses(marker_, AllIds());
  int leaked_count = static_cast<int>(leaked.size());
  KillLeftovers();

  // Acknowledged changes against the journal (the daemon has exited: nothing more comes).
  std::map<std::pair<std::string, std::string>, int> rows;
  for (const auto& row :
       Query("SELECT execution_id, kind, count(*) FROM journal WHERE kind IN ('execution.created',"
             " 'execution.started', 'execution.stop_requested', 'execution.paused',"
             " 'execution.resumed') AND json_extract(payload, '$.requestedBy') LIKE 'uid:%'"
             " GROUP BY execution_id, kind")) {
    rows[{row[0], row[1]}] = std::stoi(row[2]);
  }
  int missing = 0;
  std::string missing_evidence;
  std::set<std::string> missing_ids;
  auto expect_rows = [&](const std::string& id, const char* kind, int acked) {
    int found = rows[{id, kind}];
    if (found < acked) {
      missing += acked - found;
      missing_ids.insert(id);
      missing_evidence += "  " + id + ": " + std::to_string(acked) + " acknowledged, " +
                          std::to_string(found) + " " + kind + " row(s)\n";
    }
  };
  for (const auto& [id, t] : acked_) {
    expect_rows(id, "execution.created", 1);
    expect_rows(id, "execution.started", t.starts);
    expect_rows(id, "execution.stop_requested", t.stops);
    expect_rows(id, "execution.paused", t.pauses);
    expect_rows(id, "execution.resumed", t.resumes);
  }
  int duplicate_request_ids = 0;
  for (const auto& row : Query("SELECT json_extract(payload, '$.requestId') AS r, count(*) "
                               "FROM journal WHERE kind = 'execution.created' "
                               "AND json_extract(payload, '$.requestId') IS NOT NULL "
                               "GROUP BY r HAVING count(*) > 1")) {
    ++duplicate_request_ids;
    api_evidence += "  requestId " + row[0] + " created " + row[1] + " executions\n";
  }
  integrity_failures += !IntegrityOk();
  std::string orphan_actions;
  for (const auto& row :
       Query("SELECT action, count(*) FROM orphans GROUP BY action ORDER BY action")) {
    orphan_actions += row[0] + " " + row[1] + ", ";
  }
  if (!orphan_actions.empty()) orphan_actions.resize(orphan_actions.size() - 2);

  double seconds = std::chrono::duration<double>(steady_clock::now() - began).count();
  std::ostringstream table;
  table << "\n### Crash loop, --containment " << GetParam() << ", seed " << seed_ << ", " << crashed
        << " crashes, " << seconds << " s\n\n"
        << "| check | count |\n|---|---|\n"
        << "| leaked processes after the final shutdown | " << leaked_count << " |\n"
        << "| acknowledged changes missing from the journal | " << missing << " |\n"
        << "| executions not terminal at the end (idle on purpose excluded) | " << not_terminal
        << " |\n"
        << "| acknowledged executions GET does not answer | " << unknown_to_api << " |\n"
        << "| acknowledged executions not listed exactly once by ?state=all | " << listing_errors
        << " |\n"
        << "| requestIds with more than one execution (journal) | " << duplicate_request_ids
        << " |\n"
        << "| requestId answered with another execution | " << request_id_mismatches_ << " |\n"
        << "| create answers against the contract (no id; 201 for a known id; 200 without "
           "requestId) | "
        << bad_answers_ << " |\n"
        << "| restarts that failed | " << failed_restarts_ << " |\n"
        << "| PRAGMA integrity_check not ok | " << integrity_failures << " |\n"
        << "| node processes alive after a restart's socket accepted | "
        << orphans_alive_after_restart << " |\n"
        << "| node processes alive after every final stop answered | " << after_stops.size()
        << " |\n"
        << "| requests unanswered within 30 s | " << timeouts_ << " |\n"
        << "| final shutdown exit code | " << shutdown_code << " |\n\n"
        << "acknowledged: " << acked_creates_ << " creates (" << created_order_.size()
        << " executions), " << acked_changes_[Kind::kStart] << " starts, "
        << acked_changes_[Kind::kStop] << " stops, " << acked_changes_[Kind::kPause] << " pauses, "
        << acked_changes_[Kind::kResume] << " resumes; " << requests_ << " requests, "
        << unanswered_ << " unanswered (" << in_flight_at_kill
        << " in flight at a kill); orphans view: " << orphan_actions << "\n";
  std::cout << table.str();
  for (const std::string& note : notes_) std::cout << "note: " << note << "\n";

  std::string evidence;
  if (leaked_count) evidence += "leaked:\n" + Describe(leaked);
  if (!after_stops.empty()) evidence += "alive after the final stops:\n" + Describe(after_stops);
  if (!orphan_evidence.empty()) evidence += "alive after a restart:\n" + orphan_evidence;
  if (!missing_evidence.empty()) evidence += "missing from the journal:\n" + missing_evidence;
  if (!status_evidence.empty()) evidence += "not terminal:\n" + status_evidence;
  if (!api_evidence.empty()) evidence += "API:\n" + api_evidence;
  for (const std::string& t : timeout_notes_) evidence += "timed out: " + t + "\n";
  if (!evidence.empty()) {
    std::set<std::string> shown;
    for (const NodeProcess& p : leaked) shown.insert(p.execution_id);
    for (const NodeProcess& p : after_stops) shown.insert(p.execution_id);
    for (const std::string& id : missing_ids) {
      if (shown.size() < 8) shown.insert(id);
    }
    for (const std::string& id : shown) {
      if (id.empty()) continue;
      evidence += "journal of " + id + ":\n" + JournalOf(id);
      if (acked_.count(id)) evidence += "acknowledged:\n" + acked_[id].history;
    }
    if (!missing_ids.empty()) evidence += "kills:\n" + kill_times_;
    evidence += "wardend.log warnings and errors:\n" + WarningsFromLog(60);
    std::cout << evidence;
  }

  EXPECT_EQ(leaked_count, 0) << "seed " << seed_;
  EXPECT_EQ(missing, 0) << "seed " << seed_;
  EXPECT_EQ(not_terminal, 0) << "seed " << seed_;
  EXPECT_EQ(unknown_to_api, 0) << "seed " << seed_;
  EXPECT_EQ(listing_errors, 0) << "seed " << seed_;
  EXPECT_EQ(duplicate_request_ids, 0) << "seed " << seed_;
  EXPECT_EQ(request_id_mismatches_, 0) << "seed " << seed_;
  EXPECT_EQ(failed_restarts_, 0) << "seed " << seed_;
  EXPECT_EQ(integrity_failures, 0) << "seed " << seed_;
  EXPECT_EQ(orphans_alive_after_restart, 0) << "seed " << seed_;
  EXPECT_EQ(after_stops.size(), 0u) << "seed " << seed_;
  EXPECT_EQ(timeouts_, 0) << "seed " << seed_;
  EXPECT_EQ(bad_answers_, 0) << "seed " << seed_;
  EXPECT_EQ(shutdown_code, 0) << "seed " << seed_ << "\n" << DaemonLog(last);
  EXPECT_GT(acked_creates_, 0);
}

INSTANTIATE_TEST_SUITE_P(BothModes, CrashLoopTest, ::testing::Values("cgroup", "pgroup"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace warden::testing
