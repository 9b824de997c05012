// Crash recovery end to end: wardend is killed with SIGKILL while executions run, and the
// restarted daemon, before its socket accepts, finds every orphan tree through the journal,
// ends it gracefully (SIGTERM, the node's grace, SIGKILL), never signals a process it cannot
// prove is its own, journals every finding (`orphans`) and closes every interrupted
// execution (`stops`, reason crash_recovery). History and requestId idempotence survive.
// Written against docs/api.md and schema/: both containment modes, every wait bounded,
// every process the test causes found again by pid (with its start time) or by a marker
// variable in its environment, and ended in TearDown.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
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

std::optional<json::value> TryParse(const std::string& text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return std::nullopt;
  return v;
}

json::value Parse(const std::string& text) {
  std::optional<json::value> v = TryParse(text);
  EXPECT_TRUE(v.has_value()) << "not JSON: " << text;
  return v ? *v : json::value();
}

std::string Str(const json::value& v, std::string_view key) {
  const json::value* f = v.is_object() ? v.as_object().if_contains(key) : nullptr;
  return f && f->is_string() ? std::string(f->as_string()) : "";
}

bool IsNull(const json::value& v, std::string_view key) {
  const json::value* f = v.is_object() ? v.as_object().if_contains(key) : nullptr;
  return f == nullptr || f->is_null();
}

// An integer field, or -1 when it is absent, null or not a number.
int64_t Int(const json::value& v, std::string_view key) {
  const json::value* f = v.is_object() ? v.as_object().if_contains(key) : nullptr;
  if (f == nullptr || !f->is_number()) return -1;
  boost::system::error_code ec;
  auto n = f->to_number<int64_t>(ec);
  return ec ? -1 : n;
}

std::string ReadText(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

int64_t NowMs() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string BootId() {
  std::string id = ReadText("/proc/sys/kernel/random/boot_id");
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  return id;
}

// /proc/PID/stat: the state (field 3) and the start time (field 22, clock ticks since
// boot), parsed after the last ')' since the command name may hold anything.
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

// A process the test knows: its pid and the start time it had when the test saw it, so
// that a recycled pid is never taken for it.
struct Process {
  pid_t pid = -1;
  unsigned long long start_time = 0;
  std::string what;
};

std::optional<Process> Identify(pid_t pid, const std::string& what) {
  if (pid <= 0) return std::nullopt;
  std::optional<ProcStat> stat = ReadProcStat(pid);
  if (!stat || stat->state == 'Z') return std::nullopt;
  return Process{pid, stat->start_time, what};
}

// Alive: the pid exists, is not a zombie (PID 1 reaps orphans late here) and still has the
// start time it had when the test recorded it.
bool Alive(const Process& p) {
  if (kill(p.pid, 0) != 0 && errno == ESRCH) return false;
  std::optional<ProcStat> stat = ReadProcStat(p.pid);
  return stat && stat->state != 'Z' && stat->start_time == p.start_time;
}

// The cgroup v2 directory of `pid`: the cgroup2 mount point plus its "0::" path.
std::string CgroupDirectory(pid_t pid) {
  std::string mount;
  std::istringstream mounts(ReadText("/proc/self/mountinfo"));
  for (std::string line; mount.empty() && std::getline(mounts, line);) {
    if (line.find(" - cgroup2 ") == std::string::npos) continue;
    std::istringstream fields(line);
    std::string skipped;
    for (int field = 1; field < 5; ++field) fields >> skipped;
    fields >> mount;
  }
  std::istringstream groups(ReadText("/proc/" + std::to_string(pid) + "/cgroup"));
  for (std::string line; std::getline(groups, line);) {
    if (line.rfind("0::", 0) == 0) return mount.empty() ? "" : mount + line.substr(3);
  }
  return "";
}

// Paused as the contract says: stopped by SIGSTOP, or in a frozen cgroup.
bool Frozen(const Process& p) {
  std::optional<ProcStat> stat = ReadProcStat(p.pid);
  if (!stat || stat->start_time != p.start_time) return false;
  if (stat->state == 'T') return true;
  std::string directory = CgroupDirectory(p.pid);
  return !directory.empty() &&
         ReadText(directory + "/cgroup.events").find("frozen 1") != std::string::npos;
}

bool HasEnvironmentEntry(pid_t pid, const std::string& entry) {
  std::string environ = ReadText("/proc/" + std::to_string(pid) + "/environ");
  size_t begin = 0;
  while (begin < environ.size()) {
    size_t end = environ.find('\0', begin);
    if (end == std::string::npos) end = environ.size();
    if (environ.compare(begin, end - begin, entry) == 0) return true;
    begin = end + 1;
  }
  return false;
}

// Live (not zombie) processes whose environment holds `entry` (NAME=VALUE).
std::vector<pid_t> ProcessesWithEnvironmentEntry(const std::string& entry) {
  std::vector<pid_t> found;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return found;
  while (dirent* e = readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || pid <= 0) continue;
    if (!HasEnvironmentEntry(static_cast<pid_t>(pid), entry)) continue;
    std::optional<ProcStat> stat = ReadProcStat(static_cast<pid_t>(pid));
    if (stat && stat->state != 'Z') found.push_back(static_cast<pid_t>(pid));
  }
  closedir(proc);
  return found;
}

std::string Describe(const std::vector<pid_t>& pids) {
  std::string text;
  for (pid_t pid : pids) {
    std::string cmdline = ReadText("/proc/" + std::to_string(pid) + "/cmdline");
    for (char& c : cmdline) c = c == '\0' ? ' ' : c;
    text += std::to_string(pid) + " (" + cmdline + ") ";
  }
  return text;
}

// Runs a program (found in PATH) with stdout to `out_path`; waits at most `limit`.
// Returns its exit code, or -1 if it did not start or had to be killed.
int RunProgram(const std::vector<std::string>& args, const std::string& out_path,
               milliseconds limit) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_addopen(&actions, 2, (out_path + ".err").c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, args[0].c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return -1;
  auto deadline = steady_clock::now() + limit;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (r < 0) return -1;
    if (steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      return -1;
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
}

std::string SqlQuote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) {
    quoted += c;
    if (c == '\'') quoted += '\'';
  }
  return quoted + "'";
}

class CrashRecoveryTest : public DaemonFixture, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override {
    DaemonFixture::SetUp();
    marker_ = kMarkerName + std::string("=") + dir_;
    daemon_ = StartWardend();
    if (daemon_ < 0 && GetParam() == "cgroup") {
      GTEST_SKIP() << "wardend cannot start with --containment cgroup on this host";
    }
    ASSERT_GT(daemon_, 0) << "wardend did not get ready";
  }

  void TearDown() override {
    StopFuseServer();
    KillLeftovers();
    for (pid_t pid : children_) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    DaemonFixture::TearDown();
    KillLeftovers();
  }

  pid_t StartWardend() { return StartDaemon({"--containment", GetParam(), "--grace-ms", "2000"}); }

  // SIGKILL to the daemon, reaped; its nodes run on.
  void Crash() {
    ASSERT_GT(daemon_, 0);
    EXPECT_EQ(StopDaemon(daemon_, SIGKILL), 128 + SIGKILL);
    daemon_ = -1;
  }

  // Starts the daemon again on the same data directory; true once its socket accepts.
  bool Restart() {
    daemon_ = StartWardend();
    return daemon_ > 0;
  }

  // Every node of `spec_text` gets the marker variable, so that each process it starts (and
  // every descendant) can be found again through /proc/PID/environ.
  std::string Spec(const std::string& spec_text) {
    json::value spec = Parse(spec_text);
    for (json::value& node : spec.at("nodes").as_array()) {
      json::object& object = node.as_object();
      if (!object.contains("env")) object["env"] = json::object();
      object["env"].as_object()[kMarkerName] = dir_;
    }
    return json::serialize(spec);
  }

  // POST /api/executions; the created execution's id, or "" (with a failure).
  std::string Create(const std::string& spec_text, const std::string& query = "") {
    HttpResult r = Http("POST", "/api/executions" + query, Spec(spec_text), "application/json");
    EXPECT_EQ(r.status, 201) << r.body;
    return r.status == 201 ? Str(Parse(r.body), "executionId") : "";
  }

  json::value Get(const std::string& id) {
    HttpResult r = Http("GET", "/api/executions/" + id);
    EXPECT_EQ(r.status, 200) << r.body;
    return Parse(r.body);
  }

  std::string Status(const std::string& id) {
    HttpResult r = Http("GET", "/api/executions/" + id);
    std::optional<json::value> v = TryParse(r.body);
    return r.status == 200 && v ? Str(*v, "status") : "";
  }

  json::array Events(const std::string& id) {
    HttpResult r = Http("GET", "/api/executions/" + id + "/events");
    std::optional<json::value> v = TryParse(r.body);
    if (r.status != 200 || !v || !v->is_object() || !v->as_object().contains("events")) return {};
    return v->at("events").as_array();
  }

  std::string Log(const std::string& id, const std::string& node) {
    HttpResult r = Http("GET", "/api/executions/" + id + "/nodes/" + node + "/log");
    return r.status == 200 ? r.body : "";
  }

  // Waits until every node of `id` runs and has written `started`; returns its processes,
  // by node id, identified while they run.
  std::map<std::string, Process> WaitUntilRunning(const std::string& id,
                                                  const std::set<std::string>& announcing) {
    std::map<std::string, Process> processes;
    bool running = Eventually([&] {
      processes.clear();
      std::optional<json::value> e = TryParse(Http("GET", "/api/executions/" + id).body);
      if (!e || !e->is_object() || !e->as_object().contains("nodes")) return false;
      for (const json::value& node : e->at("nodes").as_array()) {
        if (Str(node, "status") != "running") return false;
        std::string node_id = Str(node, "id");
        std::optional<Process> p = Identify(static_cast<pid_t>(Int(node, "pid")), node_id);
        if (!p || !HasEnvironmentEntry(p->pid, marker_)) return false;
        processes[node_id] = *p;
      }
      for (const std::string& node : announcing) {
        if (Log(id, node) != "started\n") return false;
      }
      return true;
    });
    EXPECT_TRUE(running) << "the nodes of " << id
                         << " did not all run: " << Http("GET", "/api/executions/" + id).body;
    return running ? processes : std::map<std::string, Process>{};
  }

  // Runs `sql` with the stock sqlite3 shell on the daemon's database; rows as JSON objects.
  json::array Query(const std::string& sql) {
    std::string out = dir_ + "/sqlite.out";
    int code = RunProgram({"sqlite3", "-json", "-cmd", ".timeout 10000", data_ + "/warden.db", sql},
                          out, std::chrono::seconds(20));
    EXPECT_EQ(code, 0) << sql << ": " << ReadText(out + ".err");
    std::string text = ReadText(out);
    if (text.find_first_not_of(" \n") == std::string::npos) return {};  // no rows
    json::value rows = Parse(text);
    return rows.is_array() ? rows.as_array() : json::array{};
  }

  json::array Orphans(const std::string& id) {
    return Query("SELECT * FROM orphans WHERE execution_id = " + SqlQuote(id) +
                 " ORDER BY found_at, node_id");
  }
  json::array Stops(const std::string& id) {
    return Query("SELECT * FROM stops WHERE execution_id = " + SqlQuote(id) + " ORDER BY stop_seq");
  }

  // The orphans row of the recorded pid of `node` attempt 1.
  std::optional<json::object> OrphanRow(const json::array& orphans, const std::string& node,
                                        pid_t pid) {
    for (const json::value& row : orphans) {
      if (Str(row, "node_id") == node && Int(row, "attempt") == 1 && Int(row, "pid") == pid) {
        return row.as_object();
      }
    }
    return std::nullopt;
  }

  // Spawns a `sleep 60` that has nothing to do with Warden, in a session of its own (so that
  // no signal to a process group or session of it reaches this test), the test's child.
  // When `ns_last_pid` is an open descriptor of /proc/sys/kernel/ns_last_pid, writes
  // `last_pid` to it right before: the kernel then gives the next process last_pid + 1, if
  // no other fork comes in between. Returns the pid, or -1.
  static pid_t SpawnSleep(int ns_last_pid = -1, pid_t last_pid = 0) {
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSID);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    for (int fd = 0; fd < 3; ++fd) {
      posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0);
    }
    char* argv[] = {const_cast<char*>("sleep"), const_cast<char*>("60"), nullptr};
    const std::string last = std::to_string(last_pid);
    pid_t pid = -1;
    int rc = -1;
    if (ns_last_pid < 0 ||
        pwrite(ns_last_pid, last.data(), last.size(), 0) == static_cast<ssize_t>(last.size())) {
      rc = posix_spawnp(&pid, "sleep", &actions, &attributes, argv, environ);
      if (rc != 0) errno = rc;
    }
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    return rc == 0 ? pid : -1;
  }

  // The process `pid` this test spawned, identified once it runs sleep (not the spawning
  // copy of this program).
  std::optional<Process> IdentifySleep(pid_t pid) {
    std::optional<Process> p;
    Eventually([&] {
      p = Identify(pid, "unrelated sleep");
      return p && ReadText("/proc/" + std::to_string(pid) + "/comm") == "sleep\n";
    });
    return p;
  }

  std::optional<Process> StartUnrelatedSleep() {
    pid_t pid = SpawnSleep();
    if (pid < 0) return std::nullopt;
    children_.push_back(pid);
    return IdentifySleep(pid);
  }

  // An unrelated sleep (as StartUnrelatedSleep) with exactly the pid `wanted`, which must be
  // free, made through /proc/sys/kernel/ns_last_pid. Another fork on the host may take the
  // pid first: a few tries, then nullopt with `why`.
  std::optional<Process> StartUnrelatedSleepWithPid(pid_t wanted, std::string& why) {
    int ns_last_pid = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
    if (ns_last_pid < 0) {
      why = std::string("/proc/sys/kernel/ns_last_pid: ") + std::strerror(errno);
      return std::nullopt;
    }
    constexpr int kTries = 50;
    pid_t pid = -1;
    for (int tries = 0; tries < kTries && pid != wanted; ++tries) {
      pid = SpawnSleep(ns_last_pid, wanted - 1);
      if (pid < 0) {
        why = std::string("ns_last_pid, then spawn: ") + std::strerror(errno);
        break;
      }
      if (pid != wanted) {  // our unreaped child: the pid is still its own
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
      }
    }
    close(ns_last_pid);
    if (pid != wanted) {
      if (why.empty()) {
        why = "pid " + std::to_string(wanted) + " went to another process in " +
              std::to_string(kTries) + " tries";
      }
      return std::nullopt;
    }
    children_.push_back(pid);
    return IdentifySleep(pid);
  }

  // Starts process_test_helper fuse-serve on a new directory (fuse_dir_): a FUSE file system
  // whose file f is read in direct I/O and whose read requests are taken and never answered.
  // The server is the test's child, in a session of its own, without the marker. Its notes
  // ("mounted=", "blocked=<reader pid>") go to fuse_notes_. Returns "" once mounted, else
  // why not; `unavailable` when the host does not allow it (a reason to skip).
  std::string StartFuseServer(bool& unavailable) {
    unavailable = false;
    if (access("/dev/fuse", R_OK | W_OK) != 0) {
      unavailable = true;
      return std::string("/dev/fuse: ") + std::strerror(errno);
    }
    fuse_dir_ = dir_ + "/fuse";
    fuse_notes_ = dir_ + "/fuse.notes";
    if (mkdir(fuse_dir_.c_str(), 0700) != 0) return "mkdir " + fuse_dir_;
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSID);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    for (int fd = 0; fd < 3; ++fd) {
      posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0);
    }
    posix_spawn_file_actions_addopen(&actions, 3, fuse_notes_.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0600);
    std::string helper = WARDEN_TEST_HELPER;
    char* argv[] = {helper.data(), const_cast<char*>("fuse-serve"), fuse_dir_.data(), nullptr};
    char env_notify[] = "WARDEN_NOTIFY_FD=3";
    char env_path[] = "PATH=/usr/bin:/bin";
    char* envp[] = {env_notify, env_path, nullptr};
    pid_t pid = -1;
    int rc = posix_spawn(&pid, helper.c_str(), &actions, &attributes, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    if (rc != 0) return std::string("spawn the FUSE server: ") + std::strerror(rc);
    fuse_server_ = pid;
    std::string notes;
    Eventually([&] {
      notes = ReadText(fuse_notes_);
      return notes.find("mounted=") != std::string::npos ||
             notes.find("mount-errno=") != std::string::npos;
    });
    if (notes.find("mounted=") != std::string::npos) {
      fuse_mounted_ = true;
      return "";
    }
    size_t at = notes.find("mount-errno=");
    if (at == std::string::npos) return "the FUSE server did not mount: " + notes;
    const int code = std::atoi(notes.c_str() + at + std::strlen("mount-errno="));
    unavailable = code == EPERM || code == EACCES || code == ENODEV || code == ENOENT;
    return "FUSE on " + fuse_dir_ + ": " + std::strerror(code);
  }

  // Ends the FUSE server: its death closes its /dev/fuse descriptor, which aborts the
  // connection and ends every request it left unanswered (its readers can die). Then
  // detaches the mount. Idempotent.
  void StopFuseServer() {
    if (fuse_server_ > 0) {
      // Our child, not reaped yet: the pid cannot belong to anyone else.
      kill(fuse_server_, SIGKILL);
      waitpid(fuse_server_, nullptr, 0);
      fuse_server_ = -1;
    }
    if (fuse_mounted_ && umount2(fuse_dir_.c_str(), MNT_DETACH) == 0) fuse_mounted_ = false;
  }

  // With the daemon stopped: journals an execution (spec: node `a`, `sleep 60`, grace
  // 300 ms) that was running when the daemon died, its node `a` attempt 1 recorded as the
  // process `pid` with `start_time` on boot `boot_id`, in pgroup containment. Returns its id.
  std::string JournalRunningExecution(pid_t pid, unsigned long long start_time,
                                      const std::string& boot_id) {
    std::mt19937_64 random(std::random_device{}());
    char id_text[32];
    std::snprintf(id_text, sizeof id_text, "%012llx%010llx",
                  static_cast<unsigned long long>(NowMs()),
                  static_cast<unsigned long long>(random() & 0xffffffffffULL));
    std::string id = id_text;
    json::array argv = {"sleep", "60"};
    json::object spec = {{"name", "fake"},
                         {"graceMs", 300},
                         {"nodes", json::array{json::object{{"id", "a"}, {"argv", argv}}}}};
    json::object created = {{"name", "fake"}, {"requestedBy", "lib"}, {"spec", spec}};
    json::object started = {{"requestedBy", "lib"}};
    json::object intent = {
        {"argv", argv},
        {"cwd", "/"},
        {"cookie", json::object{{"executionId", id}, {"nodeId", "a"}, {"attempt", 1}}},
        {"cgroup", nullptr},
        {"containment", "pgroup"}};
    json::object identity = {
        {"pid", pid}, {"startTime", start_time}, {"bootId", boot_id},      {"pgid", pid},
        {"sid", pid}, {"cgroup", nullptr},       {"containment", "pgroup"}};
    int64_t at = NowMs();
    auto insert = [&](int64_t at_ms, const char* node, const char* kind,
                      const json::object& payload) {
      return "INSERT INTO journal(at_ms, execution_id, node_id, attempt, kind, payload) VALUES (" +
             std::to_string(at_ms) + ", " + SqlQuote(id) + ", " +
             (node ? SqlQuote(node) + ", 1" : std::string("NULL, NULL")) + ", " + SqlQuote(kind) +
             ", " + SqlQuote(json::serialize(payload)) + ");";
    };
    std::string sql = "BEGIN;" + insert(at, nullptr, "execution.created", created) +
                      insert(at, nullptr, "execution.started", started) +
                      insert(at + 1, "a", "node.intent", intent) +
                      insert(at + 2, "a", "node.started", identity) + "COMMIT;";
    std::string out = dir_ + "/insert.out";
    int code = RunProgram({"sqlite3", data_ + "/warden.db", sql}, out, std::chrono::seconds(20));
    EXPECT_EQ(code, 0) << ReadText(out + ".err");
    return code == 0 ? id : "";
  }

  // SIGKILL, through a pidfd, to every process that still carries this test's marker.
  void KillLeftovers() {
    for (pid_t pid : ProcessesWithEnvironmentEntry(marker_)) {
      int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
      if (fd < 0) continue;
      if (HasEnvironmentEntry(pid, marker_))
        syscall(SYS_pidfd_send_signal, fd, SIGKILL, nullptr, 0);
      close(fd);
    }
  }

  static constexpr const char* kMarkerName = "CRASH_RECOVERY_TEST_DIR";
  std::string marker_;  // NAME=VALUE in the environment of every node process of this test
  pid_t daemon_ = -1;
  std::vector<pid_t> children_;  // processes this test started itself
  pid_t fuse_server_ = -1;       // the test's child, reaped by StopFuseServer
  bool fuse_mounted_ = false;
  std::string fuse_dir_, fuse_notes_;
};

TEST_P(CrashRecoveryTest, KillNineMidRunTerminatesEveryOrphanBeforeTheSocketAccepts) {
  std::string done =
      Create(R"({"name":"done","graceMs":300,"nodes":[{"id":"t","argv":["true"]}]})");
  ASSERT_FALSE(done.empty());
  ASSERT_TRUE(Eventually([&] { return Status(done) == "completed"; })) << Status(done);

  // The escapee node forks a subshell that starts, in a new session, a grandchild writing
  // its pid to a file, then exits: the grandchild is orphaned outside the node's session
  // and process group.
  std::string pid_file = dir_ + "/grandchild.pid";
  std::string escapee_script =
      "(setsid sh -c 'echo $$ > " + pid_file + "; exec sleep 60' &); echo started; exec sleep 60";
  json::array escapee_argv = {"sh", "-c", escapee_script};
  std::string spec = R"({"name":"crash","maxParallel":4,"graceMs":300,"nodes":[
      {"id":"coop","argv":["sh","-c","echo started; exec sleep 60"]},
      {"id":"stubborn","argv":["sh","-c","trap '' TERM; echo started; while :; do sleep 0.1; done"]},
      {"id":"escapee","argv":)" +
                     json::serialize(escapee_argv) + "}]}";
  std::string id = Create(spec);
  ASSERT_FALSE(id.empty());
  std::map<std::string, Process> nodes = WaitUntilRunning(id, {"coop", "stubborn", "escapee"});
  ASSERT_EQ(nodes.size(), 3u);
  std::optional<Process> grandchild;
  ASSERT_TRUE(Eventually([&] {
    std::string text = ReadText(pid_file);
    if (text.empty() || text.back() != '\n') return false;
    grandchild = Identify(static_cast<pid_t>(std::stol(text)), "escapee's grandchild");
    return grandchild.has_value();
  })) << "the escapee's grandchild did not write its pid";
  ASSERT_NE(getsid(grandchild->pid), getsid(nodes["escapee"].pid)) << "not in its own session";
  std::vector<Process> recorded = {nodes["coop"], nodes["stubborn"], nodes["escapee"], *grandchild};

  Crash();
  for (const Process& p : recorded) {
    EXPECT_TRUE(Alive(p)) << p.what << " " << p.pid << " must outlive the daemon's crash";
  }
  ASSERT_TRUE(Restart()) << "wardend did not start after the crash";
  // The socket accepts: recovery is over, so every orphan has already ended.
  for (const Process& p : recorded) {
    EXPECT_FALSE(Alive(p)) << p.what << " " << p.pid << " is alive after the restart";
  }
  std::vector<pid_t> left = ProcessesWithEnvironmentEntry(marker_);
  EXPECT_TRUE(left.empty()) << "processes of the nodes left: " << Describe(left);

  json::array orphans = Orphans(id);
  std::map<std::string, std::string> expected = {
      {"coop", "terminated"}, {"stubborn", "killed"}, {"escapee", "terminated"}};
  for (const auto& [node, action] : expected) {
    SCOPED_TRACE("node " + node);
    std::optional<json::object> row = OrphanRow(orphans, node, nodes[node].pid);
    ASSERT_TRUE(row.has_value()) << json::serialize(orphans);
    EXPECT_EQ(Str(*row, "action"), action) << json::serialize(*row);
    EXPECT_EQ(Str(*row, "detection"), "pid") << json::serialize(*row);
    EXPECT_FALSE(IsNull(*row, "finished_at")) << json::serialize(*row);
    EXPECT_GE(Int(*row, "finished_at"), Int(*row, "found_at")) << json::serialize(*row);
    EXPECT_EQ(Int(*row, "grace_ms"), 300) << json::serialize(*row);
    EXPECT_EQ(Int(*row, "recorded_start_time"), static_cast<int64_t>(nodes[node].start_time));
    EXPECT_EQ(Int(*row, "observed_start_time"), static_cast<int64_t>(nodes[node].start_time));
  }
  for (const json::value& row : orphans) {
    EXPECT_FALSE(IsNull(row, "action")) << "every finding is closed: " << json::serialize(row);
    EXPECT_FALSE(IsNull(row, "finished_at")) << json::serialize(row);
  }

  EXPECT_EQ(Status(id), "failed");
  json::array stops = Stops(id);
  ASSERT_EQ(stops.size(), 1u) << json::serialize(stops);
  EXPECT_EQ(Str(stops[0], "reason"), "crash_recovery");
  EXPECT_EQ(Str(stops[0], "requested_by"), "warden");
  EXPECT_EQ(Int(stops[0], "joined"), 0);
  EXPECT_FALSE(IsNull(stops[0], "completed_at")) << json::serialize(stops);

  // History: the execution that ended before the crash, and the recovered one.
  json::value completed = Get(done);
  EXPECT_EQ(Str(completed, "status"), "completed");
  EXPECT_FALSE(IsNull(completed, "endedAt"));
  bool completed_event = false;
  for (const json::value& event : Events(done)) {
    completed_event |= Str(event, "kind") == "execution.completed";
  }
  EXPECT_TRUE(completed_event) << "the events of " << done << " survive the crash";
  for (const std::string& each : {done, id}) {
    CommandResult show = Warden({"show", each});
    EXPECT_EQ(show.exit_code, 0) << show.out << show.err;
  }
  HttpResult all = Http("GET", "/api/executions?state=all");
  ASSERT_EQ(all.status, 200) << all.body;
  std::vector<std::string> listed;
  json::value list = Parse(all.body);
  for (const json::value& e : list.at("executions").as_array()) {
    listed.push_back(Str(e, "executionId"));
  }
  EXPECT_EQ(listed, (std::vector<std::string>{done, id})) << all.body;
}

TEST_P(CrashRecoveryTest, PidReuseIsNeverSignalled) {
  ASSERT_EQ(StopDaemon(daemon_), 0) << DaemonLog(daemon_);
  daemon_ = -1;
  std::optional<Process> sleeper = StartUnrelatedSleep();
  ASSERT_TRUE(sleeper.has_value());
  ASSERT_EQ(getsid(sleeper->pid), sleeper->pid);
  // The journal says the node's process had this pid, but it started at another time: the
  // pid now belongs to someone else.
  unsigned long long recorded =
      sleeper->start_time > 1000 ? sleeper->start_time - 1000 : sleeper->start_time + 1000;
  std::string id = JournalRunningExecution(sleeper->pid, recorded, BootId());
  ASSERT_FALSE(id.empty());

  ASSERT_TRUE(Restart()) << "wardend did not start with the journaled execution";
  EXPECT_TRUE(Alive(*sleeper)) << "the unrelated sleep was signalled";
  EXPECT_NE(ReadProcStat(sleeper->pid).value_or(ProcStat{}).state, 'T') << "it was stopped";
  EXPECT_EQ(waitpid(sleeper->pid, nullptr, WNOHANG), 0) << "it ended";

  json::array orphans = Orphans(id);
  ASSERT_EQ(orphans.size(), 1u) << json::serialize(orphans);
  EXPECT_EQ(Str(orphans[0], "node_id"), "a");
  EXPECT_EQ(Int(orphans[0], "attempt"), 1);
  EXPECT_EQ(Int(orphans[0], "pid"), sleeper->pid);
  EXPECT_EQ(Str(orphans[0], "action"), "pid_reused") << json::serialize(orphans);
  EXPECT_FALSE(IsNull(orphans[0], "finished_at"));
  EXPECT_EQ(Int(orphans[0], "recorded_start_time"), static_cast<int64_t>(recorded));
  EXPECT_EQ(Int(orphans[0], "observed_start_time"), static_cast<int64_t>(sleeper->start_time));

  json::value execution = Get(id);
  EXPECT_EQ(Str(execution, "status"), "failed") << json::serialize(execution);
  EXPECT_EQ(Str(execution.at("nodes").at(0), "status"), "lost") << json::serialize(execution);
  json::array stops = Stops(id);
  ASSERT_EQ(stops.size(), 1u) << json::serialize(stops);
  EXPECT_EQ(Str(stops[0], "reason"), "crash_recovery");
  EXPECT_EQ(Str(stops[0], "requested_by"), "warden");
  EXPECT_TRUE(Alive(*sleeper)) << "the unrelated sleep was signalled after the recovery";
}

TEST_P(CrashRecoveryTest, PidOfADeadNodeTakenByAnotherProcessIsNeverSignalled) {
  std::string id = Create(R"({"graceMs":300,"nodes":[{"id":"s","argv":["sleep","60"]}]})");
  ASSERT_FALSE(id.empty());
  std::map<std::string, Process> nodes = WaitUntilRunning(id, {});
  ASSERT_EQ(nodes.size(), 1u);
  const Process node = nodes["s"];

  Crash();
  // The node dies while no daemon runs, and its pid becomes free once PID 1 reaps it.
  ASSERT_TRUE(Alive(node));
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, node.pid, 0));
  ASSERT_GE(pidfd, 0);
  ASSERT_TRUE(Alive(node));  // checked after pinning: the pidfd is the node's
  ASSERT_EQ(syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0), 0);
  close(pidfd);
  const std::string proc_dir = "/proc/" + std::to_string(node.pid);
  if (!Eventually([&] { return access(proc_dir.c_str(), F_OK) != 0; }, milliseconds(15000))) {
    GTEST_SKIP() << "the killed node " << node.pid << " was not reaped within 15 s";
  }
  // Then an unrelated process gets exactly that pid: the journal's identity of the node
  // now names a live stranger that started later.
  std::string why;
  std::optional<Process> stranger = StartUnrelatedSleepWithPid(node.pid, why);
  if (!stranger) GTEST_SKIP() << "could not give pid " << node.pid << " to a new process: " << why;
  ASSERT_EQ(stranger->pid, node.pid);
  ASSERT_NE(stranger->start_time, node.start_time);

  ASSERT_TRUE(Restart()) << "wardend did not start after the crash";
  EXPECT_TRUE(Alive(*stranger)) << "the process that took the node's pid was signalled";
  EXPECT_NE(ReadProcStat(stranger->pid).value_or(ProcStat{}).state, 'T') << "it was stopped";
  EXPECT_EQ(waitpid(stranger->pid, nullptr, WNOHANG), 0) << "it ended";

  json::array orphans = Orphans(id);
  ASSERT_EQ(orphans.size(), 1u) << json::serialize(orphans);
  EXPECT_EQ(Str(orphans[0], "node_id"), "s");
  EXPECT_EQ(Int(orphans[0], "attempt"), 1);
  EXPECT_EQ(Int(orphans[0], "pid"), node.pid);
  EXPECT_EQ(Str(orphans[0], "action"), "pid_reused") << json::serialize(orphans);
  EXPECT_EQ(Str(orphans[0], "detection"), "pid") << json::serialize(orphans);
  EXPECT_FALSE(IsNull(orphans[0], "finished_at"));
  EXPECT_EQ(Int(orphans[0], "recorded_start_time"), static_cast<int64_t>(node.start_time));
  EXPECT_EQ(Int(orphans[0], "observed_start_time"), static_cast<int64_t>(stranger->start_time));

  json::value execution = Get(id);
  EXPECT_EQ(Str(execution, "status"), "failed") << json::serialize(execution);
  EXPECT_EQ(Str(execution.at("nodes").at(0), "status"), "lost") << json::serialize(execution);
  json::array stops = Stops(id);
  ASSERT_EQ(stops.size(), 1u) << json::serialize(stops);
  EXPECT_EQ(Str(stops[0], "reason"), "crash_recovery");
  EXPECT_TRUE(Alive(*stranger)) << "the process that took the node's pid was signalled later";
}

TEST_P(CrashRecoveryTest, NodeThatSurvivesSigkillIsUnkillableAndRecoveryStillEnds) {
  bool unavailable = false;
  std::string error = StartFuseServer(unavailable);
  if (unavailable) GTEST_SKIP() << "no FUSE here: " << error;
  ASSERT_EQ(error, "");
  // The node reads a file whose FUSE server took the request and never answers: after a
  // fatal signal it waits for the answer in uninterruptible sleep (D state).
  json::array argv = {"sh", "-c", "echo started; exec cat " + fuse_dir_ + "/f"};
  std::string id =
      Create(R"({"graceMs":300,"nodes":[{"id":"d","argv":)" + json::serialize(argv) + "}]}");
  ASSERT_FALSE(id.empty());
  std::map<std::string, Process> nodes = WaitUntilRunning(id, {"d"});
  ASSERT_EQ(nodes.size(), 1u);
  const Process reader = nodes["d"];
  const std::string blocked = "blocked=" + std::to_string(reader.pid) + "\n";
  ASSERT_TRUE(Eventually([&] { return ReadText(fuse_notes_).find(blocked) != std::string::npos; }))
      << "the FUSE server took no read request from the node: " << ReadText(fuse_notes_);

  Crash();
  EXPECT_TRUE(Alive(reader));
  auto began = steady_clock::now();
  ASSERT_TRUE(Restart()) << "wardend did not start while a node tree was unkillable";
  // The grace (300 ms), then the reaper's kill timeout (5 s), then it serves.
  EXPECT_LT(steady_clock::now() - began, milliseconds(9000));
  std::optional<ProcStat> stat = ReadProcStat(reader.pid);
  ASSERT_TRUE(stat.has_value());
  EXPECT_EQ(stat->state, 'D') << "the node survived SIGKILL in uninterruptible sleep";

  json::array orphans = Orphans(id);
  std::optional<json::object> row = OrphanRow(orphans, "d", reader.pid);
  ASSERT_TRUE(row.has_value()) << json::serialize(orphans);
  EXPECT_EQ(Str(*row, "action"), "unkillable") << json::serialize(*row);
  EXPECT_EQ(Str(*row, "detection"), "pid") << json::serialize(*row);
  EXPECT_FALSE(IsNull(*row, "finished_at")) << json::serialize(*row);
  EXPECT_EQ(Int(*row, "grace_ms"), 300) << json::serialize(*row);
  // The journal names the process that survived.
  std::optional<json::value> unkillable;
  for (const json::value& event : Events(id)) {
    if (Str(event, "kind") == "orphan.unkillable") unkillable = event.at("payload");
  }
  ASSERT_TRUE(unkillable.has_value()) << "no orphan.unkillable event";
  EXPECT_EQ(json::serialize(unkillable->at("pids")), "[" + std::to_string(reader.pid) + "]");

  json::value execution = Get(id);
  EXPECT_EQ(Str(execution, "status"), "failed") << json::serialize(execution);
  EXPECT_EQ(Str(execution.at("nodes").at(0), "status"), "unkillable") << json::serialize(execution);
  json::array stops = Stops(id);
  ASSERT_EQ(stops.size(), 1u) << json::serialize(stops);
  EXPECT_EQ(Str(stops[0], "reason"), "crash_recovery");
  EXPECT_FALSE(IsNull(stops[0], "completed_at")) << json::serialize(stops);
  EXPECT_EQ(Int(stops[0], "nodes_unkillable"), 1) << json::serialize(stops);

  // The daemon works as ever: a new execution runs to completion.
  std::string next = Create(R"({"graceMs":300,"nodes":[{"id":"t","argv":["true"]}]})");
  ASSERT_FALSE(next.empty());
  EXPECT_TRUE(Eventually([&] { return Status(next) == "completed"; })) << Status(next);

  // Without its server, the request ends and the node dies at last.
  StopFuseServer();
  EXPECT_TRUE(Eventually([&] { return !Alive(reader); })) << "the node outlived its FUSE server";
  // Recovery keeps the group of an unkillable tree (cgroup mode); empty now, it goes.
  for (const json::value& intent :
       Query("SELECT json_extract(payload, '$.cgroup') AS cgroup FROM journal WHERE "
             "kind = 'node.intent' AND execution_id = " +
             SqlQuote(id))) {
    std::string group = Str(intent, "cgroup");
    if (group.empty()) continue;
    EXPECT_TRUE(Eventually([&] { return rmdir(group.c_str()) == 0 || errno == ENOENT; }))
        << group << ": " << std::strerror(errno);
  }
}

TEST_P(CrashRecoveryTest, AnotherBootIdMeansHostRebootedAndNothingIsSignalled) {
  ASSERT_EQ(StopDaemon(daemon_), 0) << DaemonLog(daemon_);
  daemon_ = -1;
  std::optional<Process> sleeper = StartUnrelatedSleep();
  ASSERT_TRUE(sleeper.has_value());
  ASSERT_EQ(getsid(sleeper->pid), sleeper->pid);
  // The very identity of the live sleep, but recorded on another boot.
  std::string boot = BootId();
  ASSERT_FALSE(boot.empty());
  boot[0] = boot[0] == '0' ? '1' : '0';
  std::string id = JournalRunningExecution(sleeper->pid, sleeper->start_time, boot);
  ASSERT_FALSE(id.empty());

  ASSERT_TRUE(Restart()) << "wardend did not start with the journaled execution";
  EXPECT_TRUE(Alive(*sleeper)) << "the sleep of this boot was signalled";
  EXPECT_NE(ReadProcStat(sleeper->pid).value_or(ProcStat{}).state, 'T') << "it was stopped";
  EXPECT_EQ(waitpid(sleeper->pid, nullptr, WNOHANG), 0) << "it ended";

  json::array orphans = Orphans(id);
  ASSERT_EQ(orphans.size(), 1u) << json::serialize(orphans);
  EXPECT_EQ(Str(orphans[0], "node_id"), "a");
  EXPECT_EQ(Int(orphans[0], "pid"), sleeper->pid);
  EXPECT_EQ(Str(orphans[0], "action"), "host_rebooted") << json::serialize(orphans);
  EXPECT_FALSE(IsNull(orphans[0], "finished_at"));

  json::value execution = Get(id);
  EXPECT_EQ(Str(execution, "status"), "failed") << json::serialize(execution);
  EXPECT_EQ(Str(execution.at("nodes").at(0), "status"), "lost") << json::serialize(execution);
  EXPECT_TRUE(Alive(*sleeper)) << "the sleep of this boot was signalled after the recovery";
}

TEST_P(CrashRecoveryTest, PausedExecutionAtTheCrashIsTerminatedAfterAThaw) {
  std::string id = Create(
      R"({"graceMs":300,"nodes":[{"id":"coop","argv":["sh","-c","echo started; exec sleep 60"]}]})");
  ASSERT_FALSE(id.empty());
  std::map<std::string, Process> nodes = WaitUntilRunning(id, {"coop"});
  ASSERT_EQ(nodes.size(), 1u);
  HttpResult paused = Http("POST", "/api/executions/" + id + "/pause");
  ASSERT_EQ(paused.status, 200) << paused.body;
  EXPECT_EQ(Str(Parse(paused.body), "status"), "paused");
  // The crash must find the tree frozen (pgroup: stopped by SIGSTOP, which the kernel may
  // carry out a few ms after the answer).
  ASSERT_TRUE(Eventually([&] { return Frozen(nodes["coop"]); }, milliseconds(2000)))
      << "the paused node is neither stopped nor frozen";

  Crash();
  EXPECT_TRUE(Alive(nodes["coop"]));
  ASSERT_TRUE(Restart()) << "wardend did not start after the crash";
  EXPECT_FALSE(Alive(nodes["coop"])) << "the frozen node is alive after the restart";

  json::array orphans = Orphans(id);
  std::optional<json::object> row = OrphanRow(orphans, "coop", nodes["coop"].pid);
  ASSERT_TRUE(row.has_value()) << json::serialize(orphans);
  EXPECT_EQ(Str(*row, "action"), "terminated")
      << "a frozen cooperative node ends at SIGTERM once thawed: " << json::serialize(*row);
  EXPECT_EQ(Int(*row, "grace_ms"), 300);
  EXPECT_EQ(Status(id), "failed");
  json::array stops = Stops(id);
  ASSERT_EQ(stops.size(), 1u) << json::serialize(stops);
  EXPECT_EQ(Str(stops[0], "reason"), "crash_recovery");
}

TEST_P(CrashRecoveryTest, StoppingExecutionAtTheCrashFinishesItsStop) {
  std::string id = Create(R"({"graceMs":3000,"nodes":[{"id":"t","argv":["sh","-c",
      "trap '' TERM; echo started; while :; do sleep 0.1; done"]}]})");
  ASSERT_FALSE(id.empty());
  std::map<std::string, Process> nodes = WaitUntilRunning(id, {"t"});
  ASSERT_EQ(nodes.size(), 1u);

  auto requested = steady_clock::now();
  HttpResult stop = Http("POST", "/api/executions/" + id + "/stop",
                         R"({"wait":false,"reason":"user_abort"})", "application/json");
  ASSERT_EQ(stop.status, 202) << stop.body;
  EXPECT_EQ(Str(Parse(stop.body), "status"), "stopping");
  int64_t sigterm_at = -1;
  ASSERT_TRUE(Eventually([&] {
    for (const json::value& event : Events(id)) {
      if (Str(event, "kind") == "node.signalled" &&
          Str(event.at("payload"), "signal") == "SIGTERM") {
        sigterm_at = Int(event, "at_ms");
        return true;
      }
    }
    return false;
  })) << "no SIGTERM journaled";
  // The crash comes a third into the 3 s grace: a recovery that gave the node a fresh
  // grace from the restart would take it past the bound below.
  std::this_thread::sleep_until(requested + milliseconds(1000));
  Crash();
  EXPECT_TRUE(Alive(nodes["t"])) << "the TERM-ignoring node outlives the crash";
  ASSERT_TRUE(Restart()) << "wardend did not start after the crash";
  auto accepted = steady_clock::now();
  EXPECT_FALSE(Alive(nodes["t"])) << "the stopping node is alive after the restart";
  EXPECT_LT(accepted - requested, milliseconds(4000))
      << "SIGKILL is due 3 s after the first SIGTERM, not 3 s after the restart";

  json::array orphans = Orphans(id);
  std::optional<json::object> row = OrphanRow(orphans, "t", nodes["t"].pid);
  ASSERT_TRUE(row.has_value()) << json::serialize(orphans);
  EXPECT_EQ(Str(*row, "action"), "killed") << json::serialize(*row);
  EXPECT_GE(Int(*row, "finished_at"), sigterm_at + 2900)
      << "the grace counts from the first SIGTERM and is not cut short: " << json::serialize(*row);

  json::array stops = Stops(id);
  ASSERT_EQ(stops.size(), 2u) << json::serialize(stops);
  EXPECT_EQ(Str(stops[0], "reason"), "user_abort");
  EXPECT_EQ(Int(stops[0], "joined"), 0);
  EXPECT_EQ(Str(stops[0], "requested_by").rfind("uid:", 0), 0u) << json::serialize(stops);
  EXPECT_EQ(Str(stops[1], "reason"), "crash_recovery");
  EXPECT_EQ(Int(stops[1], "joined"), 1);
  EXPECT_EQ(Str(stops[1], "requested_by"), "warden");
  for (const json::value& s : stops) {
    EXPECT_FALSE(IsNull(s, "completed_at")) << json::serialize(s);
    EXPECT_EQ(Str(s, "status"), Str(stops[0], "status")) << "one outcome for both requests";
  }
  bool completed_with_original_reason = false;
  for (const json::value& event : Events(id)) {
    if (Str(event, "kind") == "execution.stop_completed") {
      completed_with_original_reason = Str(event.at("payload"), "reason") == "user_abort";
    }
  }
  EXPECT_TRUE(completed_with_original_reason) << "the first request's reason stands";
  // The original stop (user_abort, no tree unkillable) ends as every such stop does.
  EXPECT_EQ(Str(stops[0], "status"), "stopped");
  EXPECT_EQ(Status(id), "stopped");
}

TEST_P(CrashRecoveryTest, IdleExecutionStaysIdleAndCanBeStartedAfterTheCrash) {
  std::string id =
      Create(R"({"graceMs":300,"nodes":[{"id":"a","argv":["true"]}]})", "?start=false");
  ASSERT_FALSE(id.empty());
  ASSERT_EQ(Status(id), "idle");

  Crash();
  ASSERT_TRUE(Restart()) << "wardend did not start after the crash";
  EXPECT_EQ(Status(id), "idle");
  EXPECT_TRUE(Orphans(id).empty());
  EXPECT_TRUE(Stops(id).empty()) << "an idle execution is not stopped by recovery";

  HttpResult started = Http("POST", "/api/executions/" + id + "/start");
  ASSERT_EQ(started.status, 200) << started.body;
  EXPECT_TRUE(Eventually([&] { return Status(id) == "completed"; })) << Status(id);
}

TEST_P(CrashRecoveryTest, RequestIdMadeBeforeACrashReturnsTheSameExecution) {
  std::string id = Create(R"({"requestId":"crash-recovery-request-1","graceMs":300,
      "nodes":[{"id":"s","argv":["sh","-c","exec sleep 60"]}]})");
  ASSERT_FALSE(id.empty());
  std::map<std::string, Process> nodes = WaitUntilRunning(id, {});
  ASSERT_EQ(nodes.size(), 1u);

  Crash();
  ASSERT_TRUE(Restart()) << "wardend did not start after the crash";
  EXPECT_FALSE(Alive(nodes["s"]));

  // The same requestId with another (valid) spec: the existing execution, nothing new.
  HttpResult again =
      Http("POST", "/api/executions", Spec(R"({"requestId":"crash-recovery-request-1",
                                   "nodes":[{"id":"other","argv":["true"]}]})"),
           "application/json");
  ASSERT_EQ(again.status, 200) << again.body;
  json::value existing = Parse(again.body);
  EXPECT_EQ(Str(existing, "executionId"), id);
  EXPECT_EQ(Str(existing, "status"), "failed") << again.body;
  HttpResult all = Http("GET", "/api/executions?state=all");
  ASSERT_EQ(all.status, 200);
  json::array listed = Parse(all.body).at("executions").as_array();
  ASSERT_EQ(listed.size(), 1u) << all.body;
  EXPECT_EQ(Str(listed[0], "executionId"), id);
}

TEST_P(CrashRecoveryTest, RestartImmediatelyAfterKillNineWhileNodesSpawnStartsEveryTime) {
  std::string many = R"({"name":"many","maxParallel":4,"graceMs":300,"nodes":[)";
  for (int i = 0; i < 50; ++i) {
    many +=
        (i ? "," : "") + std::string(R"({"id":"t)") + std::to_string(i) + R"(","argv":["true"]})";
  }
  many += "]}";
  const std::string sleepers = R"({"name":"sleepers","maxParallel":3,"graceMs":300,"nodes":[
      {"id":"s1","argv":["sh","-c","exec sleep 60"]},
      {"id":"s2","argv":["sh","-c","exec sleep 60"]},
      {"id":"s3","argv":["sleep","60"]}]})";
  std::vector<std::string> ids;
  for (int round = 0; round < 5; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    ids.push_back(Create(sleepers));
    ids.push_back(Create(many));
    ASSERT_FALSE(ids.back().empty());
    // A few ms: the crash lands while nodes are being launched.
    std::this_thread::sleep_for(milliseconds(2 + 3 * round));
    Crash();
    auto began = steady_clock::now();
    ASSERT_TRUE(Restart()) << "wardend did not start right after the crash";
    EXPECT_LT(steady_clock::now() - began, milliseconds(8000));
    std::vector<pid_t> left = ProcessesWithEnvironmentEntry(marker_);
    EXPECT_TRUE(left.empty()) << "processes of earlier nodes left: " << Describe(left);
    for (const std::string& id : ids) {
      std::string status = Status(id);
      EXPECT_TRUE(status == "failed" || status == "completed") << id << ": " << status;
      for (const json::value& row : Orphans(id)) {
        EXPECT_FALSE(IsNull(row, "action")) << "a finding left open: " << json::serialize(row);
      }
    }
  }
  HttpResult all = Http("GET", "/api/executions?state=all");
  ASSERT_EQ(all.status, 200);
  EXPECT_EQ(Parse(all.body).at("executions").as_array().size(), ids.size());
}

INSTANTIATE_TEST_SUITE_P(BothModes, CrashRecoveryTest, ::testing::Values("cgroup", "pgroup"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace warden::testing
