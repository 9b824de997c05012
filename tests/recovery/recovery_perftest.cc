// recovery_perftest: how fast wardend is ready to serve after a start, measured from the
// exec of wardend to the moment its Unix socket accepts a connection.
//
//   1. A journal of about 10k events, then one of about 1M, mostly ended executions (each
//      execution.created with a small spec, execution.started, per node node.intent,
//      node.started and node.exited, then execution.completed; ~10 nodes each; 8% stopped
//      by a user; 5 idle ones, the newest, in either journal). The data directory is made by
//      a first wardend that ran its migrations and stopped cleanly; the rows are then
//      inserted with SQLite in big transactions, and one more wardend starts on them and is
//      killed, as the start before the measured ones would have been: each measured start
//      is a later start (no migrations; the previous start's scanFrom in force). Also
//      RssAnon of the daemon (from /proc/PID/status) right after its socket accepts.
//      --containment pgroup.
//   2. 100 live orphans: a wardend runs one execution of 100 `sleep 60` nodes
//      (maxParallel 100), is killed with SIGKILL once all 100 run, and a new wardend is
//      exec'd: the time until its socket accepts, whether all 100 pids are gone at that
//      moment, and what the `orphans` view says (terminated / killed). Both containment
//      modes (cgroup where wardend can use it).
//
// Timing: the child takes CLOCK_MONOTONIC just before execve and hands it over through a
// pipe; the benchmark tries connect() on the socket every 0.2 ms. Each figure is the median
// (and min-max) of --runs runs (default 5). It prints a Markdown table with the targets
// beside the figures (PASS/FAIL; nothing is asserted). Not run by ctest. Run:
//   build/tests/recovery/recovery_perftest [--runs N] [--big-events N] [--keep]
// (--keep leaves the data directories, e.g. to query the fabricated journals.)
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <boost/beast/http.hpp>
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
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace json = boost::json;
namespace http = boost::beast::http;
namespace fs = std::filesystem;

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::string ReadText(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

// A field of /proc/PID/status in kB (e.g. "RssAnon"), or -1.
int64_t StatusKb(pid_t pid, const std::string& field) {
  std::istringstream status(ReadText("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::atoll(line.c_str() + field.size() + 1);
  }
  return -1;
}

// State (field 3) and start time (field 22) from /proc/PID/stat.
std::optional<std::pair<char, unsigned long long>> ProcStat(pid_t pid) {
  std::string text = ReadText("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = text.rfind(')');
  if (paren == std::string::npos || paren + 2 > text.size()) return std::nullopt;
  std::istringstream rest(text.substr(paren + 2));
  char state = '?';
  std::string skipped;
  unsigned long long start_time = 0;
  rest >> state;
  for (int field = 4; field < 22; ++field) rest >> skipped;
  rest >> start_time;
  if (!rest) return std::nullopt;
  return std::make_pair(state, start_time);
}

// A process that is still the one recorded (same start time) and not a zombie.
bool Alive(pid_t pid, unsigned long long start_time) {
  auto stat = ProcStat(pid);
  return stat && stat->first != 'Z' && stat->second == start_time;
}

// Waits (bounded) for `pid`; SIGKILL if it outlives `limit`. Returns its exit code or -1.
int WaitExit(pid_t pid, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r < 0) return -1;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      return -1;
    }
    timespec pause{0, 2'000'000};
    nanosleep(&pause, nullptr);
  }
}

struct Daemon {
  pid_t pid = -1;
  int64_t exec_ns = 0;  // CLOCK_MONOTONIC in the child, just before execve
};

// fork + exec of wardend; stderr appended to `log`.
Daemon SpawnWardend(const std::string& data, const std::string& socket_path,
                    const std::string& containment, const std::string& log) {
  Daemon d;
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return d;
  std::vector<std::string> args = {WARDEND,     "--data-dir",    data,       "--socket",
                                   socket_path, "--containment", containment};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    int null_fd = open("/dev/null", O_RDWR);
    int log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    dup2(null_fd, 0);
    dup2(null_fd, 1);
    dup2(log_fd, 2);
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t ns = static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
    if (write(p[1], &ns, sizeof ns) != sizeof ns) _exit(127);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(p[1]);
  if (pid < 0) {
    close(p[0]);
    return d;
  }
  int64_t ns = 0;
  ssize_t n = read(p[0], &ns, sizeof ns);
  close(p[0]);
  d.pid = pid;
  d.exec_ns = n == sizeof ns ? ns : MonotonicNs();
  return d;
}

// True when connect() succeeds and the listening socket is `daemon`'s (SO_PEERCRED names the
// process that called listen()). Right after a SIGKILL'd daemon is reaped, its listening
// socket can still take a connect() for a millisecond or two before the kernel releases
// it: without the pid check, that ghost would pass for the new daemon.
bool TryConnect(const std::string& socket_path, pid_t daemon) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, socket_path.c_str(), sizeof address.sun_path - 1);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  if (ok) {
    ucred peer{};
    socklen_t length = sizeof peer;
    ok = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &length) == 0 && peer.pid == daemon;
  }
  close(fd);
  return ok;
}

// CLOCK_MONOTONIC when connect() first succeeds (tried every 0.2 ms), or -1 if the daemon
// exits or `limit` passes first.
int64_t WaitAccepting(const Daemon& d, const std::string& socket_path,
                      std::chrono::milliseconds limit) {
  int64_t deadline = MonotonicNs() + limit.count() * 1'000'000;
  for (;;) {
    if (TryConnect(socket_path, d.pid)) return MonotonicNs();
    if (MonotonicNs() > deadline || waitpid(d.pid, nullptr, WNOHANG) != 0) return -1;
    timespec pause{0, 200'000};
    nanosleep(&pause, nullptr);
  }
}

int StopWardend(const Daemon& d) {
  kill(d.pid, SIGTERM);
  return WaitExit(d.pid, std::chrono::seconds(30));
}

// One HTTP/1.1 request on the socket (Connection: close), bounded by 30 s. status 0: none.
std::pair<int, std::string> Request(const std::string& socket_path, const std::string& method,
                                    const std::string& target, const std::string& body = "") {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return {0, ""};
  timeval timeout{30, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, socket_path.c_str(), sizeof address.sun_path - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    close(fd);
    return {0, ""};
  }
  std::string request = method + " " + target +
                        " HTTP/1.1\r\nHost: wardend\r\nConnection: close\r\n"
                        "Content-Type: application/json\r\nContent-Length: " +
                        std::to_string(body.size()) + "\r\n\r\n" + body;
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    close(fd);
    return {0, ""};
  }
  std::string received;
  char buf[65536];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    received.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  if (received.empty()) return {0, ""};
  http::response_parser<http::string_body> parser;
  parser.eager(true);
  parser.body_limit(boost::none);
  boost::system::error_code ec;
  parser.put(boost::asio::buffer(received), ec);
  if (!ec && !parser.is_done()) parser.put_eof(ec);
  if (ec || !parser.is_done()) return {0, ""};
  return {static_cast<int>(parser.get().result_int()), parser.get().body()};
}

// ---- fabricated journals ----

struct JournalShape {
  int64_t events = 0;
  int64_t executions = 0;
  int64_t idle = 0;
  std::string some_completed_id;
};

// Appends about `target_events` rows to the journal of a migrated database: executions of
// ~10 nodes, 92% completed and 8% stopped by a user, but for kIdle idle ones (created, never
// started) spread over the history, the same number whatever the size, so that two journals
// differ only in the amount of ended history.
constexpr int kIdle = 5;

JournalShape Fabricate(const std::string& db_path, int64_t target_events) {
  SQLite::Database db(db_path, SQLite::OPEN_READWRITE);
  db.exec("PRAGMA synchronous = OFF");
  SQLite::Statement insert(db,
                           "INSERT INTO journal(at_ms, execution_id, node_id, attempt, kind, "
                           "payload) VALUES (?, ?, ?, ?, ?, ?)");
  const std::string requested_by = "uid:0 pid:4242";
  const std::string boot_id = "5f2c8a8e-0d7e-4a3c-9a51-3f4b8f0e2d11";
  constexpr int kNodes = 10;
  std::string spec_nodes;
  for (int n = 0; n < kNodes; ++n) {
    spec_nodes += std::string(n ? "," : "") + R"({"id":"n)" + std::to_string(n) +
                  R"(","argv":["/usr/local/bin/step","--part",")" + std::to_string(n) +
                  R"("],"cwd":"/srv/batch"})";
  }
  JournalShape shape;
  int64_t at = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count() -
               int64_t{40} * 24 * 3600 * 1000;
  int pid = 1000;
  auto add = [&](const std::string& id, const char* node, int attempt, const char* kind,
                 const std::string& payload) {
    insert.bind(1, at);
    insert.bind(2, id);
    if (node) {
      insert.bind(3, node);
      insert.bind(4, attempt);
    } else {
      insert.bind(3);
      insert.bind(4);
    }
    insert.bind(5, kind);
    insert.bind(6, payload);
    insert.exec();
    insert.reset();
    ++shape.events;
  };
  std::optional<SQLite::Transaction> tx;
  tx.emplace(db);
  int64_t in_tx = 0;
  // The history first, then the idle executions: executions created and never started are
  // the newest (an old one that is still idle makes every start read the history after it).
  while (shape.events < target_events || shape.idle < kIdle) {
    at += 1000;
    char id_buf[32];
    std::snprintf(id_buf, sizeof id_buf, "%012llx%04x%06x", static_cast<unsigned long long>(at), 0,
                  0xbe4c17);
    std::string id = id_buf;
    // 0: idle; 1-4 of every 50: stopped by a user; the rest completed.
    int kind = static_cast<int>(shape.executions % 50);
    if (kind == 0) kind = 5;
    if (shape.events >= target_events) kind = 0;
    std::string name = "batch-" + std::to_string(shape.executions);
    std::string request_id = shape.executions % 2
                                 ? R"(,"requestId":"req-)" + std::to_string(shape.executions) + "\""
                                 : "";
    add(id, nullptr, 0, "execution.created",
        R"({"name":")" + name + "\"" + request_id + R"(,"requestedBy":")" + requested_by +
            R"(","spec":{"name":")" + name + R"(","maxParallel":4,"graceMs":2000,"nodes":[)" +
            spec_nodes + "]}}");
    ++shape.executions;
    if (kind == 0) {
      ++shape.idle;
    } else {
      add(id, nullptr, 0, "execution.started", R"({"requestedBy":")" + requested_by + "\"}");
      for (int n = 0; n < kNodes; ++n) {
        std::string node = "n" + std::to_string(n);
        at += 3;
        add(id, node.c_str(), 1, "node.intent",
            R"({"argv":["/usr/local/bin/step","--part",")" + std::to_string(n) +
                R"("],"cwd":"/srv/batch","cookie":{"executionId":")" + id + R"(","nodeId":")" +
                node + R"(","attempt":1},"cgroup":null,"containment":"pgroup"})");
        pid = pid >= 4'000'000 ? 1000 : pid + 7;
        std::string p = std::to_string(pid);
        add(id, node.c_str(), 1, "node.started",
            R"({"pid":)" + p + R"(,"startTime":)" + std::to_string(at / 10) + R"(,"bootId":")" +
                boot_id + R"(","pgid":)" + p + R"(,"sid":)" + p +
                R"(,"cgroup":null,"containment":"pgroup"})");
      }
      if (kind <= 4) {
        at += 500;
        add(id, nullptr, 0, "execution.stop_requested",
            R"({"requestedBy":")" + requested_by + R"(","reason":"user_abort","graceMs":null})");
        for (int n = 0; n < kNodes; ++n) {
          std::string node = "n" + std::to_string(n);
          add(id, node.c_str(), 1, "node.signalled", R"({"signal":"SIGTERM","why":"stop"})");
        }
      }
      for (int n = 0; n < kNodes; ++n) {
        std::string node = "n" + std::to_string(n);
        at += 40;
        add(id, node.c_str(), 1, "node.exited",
            kind <= 4
                ? std::string(R"({"exitCode":null,"signal":"SIGTERM","graceful":true,)"
                              R"("killed":false,"costUsd":0,"durationMs":540,"pausedMs":0})")
                : std::string(R"({"exitCode":0,"signal":null,"graceful":true,)"
                              R"("killed":false,"costUsd":0,"durationMs":412,"pausedMs":0})"));
      }
      if (kind <= 4) {
        add(id, nullptr, 0, "execution.stop_completed",
            R"({"status":"stopped","reason":"user_abort","finalCostUsd":0,"nodesCompleted":0,)"
            R"("nodesFailed":0,"nodesTotal":10,"durationMs":1040,"stoppedAt":)" +
                std::to_string(at) + R"(,"journaled":true})");
        add(id, nullptr, 0, "execution.stopped", R"({"costUsd":0})");
      } else {
        add(id, nullptr, 0, "execution.completed", R"({"costUsd":0})");
        shape.some_completed_id = id;
      }
    }
    if (shape.events - in_tx >= 100'000) {
      tx->commit();
      tx.emplace(db);
      in_tx = shape.events;
    }
  }
  tx->commit();
  return shape;
}

int64_t FileSize(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
}

std::string Mib(int64_t bytes) {
  char buf[32];
  if (bytes < 1024 * 1024) {
    std::snprintf(buf, sizeof buf, "%.0f KiB", static_cast<double>(bytes) / 1024.0);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  }
  return buf;
}

struct Stats {
  double median = 0, min = 0, max = 0;
};

Stats Summarize(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.min = v.front();
  s.max = v.back();
  s.median = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  return s;
}

std::string Fixed(double v, int digits = 1) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

const char* Verdict(bool pass) { return pass ? "PASS" : "FAIL"; }

// ---- scenarios ----

struct StartFigures {
  std::vector<double> ms;
  std::vector<double> rss_anon_kb;
  int64_t db_at_accept = 0, wal_at_accept = 0;  // first run
  bool ok = true;
  std::string note;
};

// A data directory whose migrations a first wardend ran; that wardend stopped cleanly.
bool PrepareDataDir(const std::string& data, const std::string& socket_path,
                    const std::string& log) {
  Daemon d = SpawnWardend(data, socket_path, "pgroup", log);
  if (d.pid < 0) return false;
  bool ready = WaitAccepting(d, socket_path, std::chrono::seconds(20)) > 0;
  int code = StopWardend(d);
  return ready && code == 0;
}

// Each run starts on the same database: the shutdown after a run stops the idle executions
// (reason server_shutdown), so the prepared warden.db is put back before every run. The
// prepared database has had one start after its history was written (killed at once, so
// nothing but its daemon.started is added): every start but the very first reads only
// what happened since the previous one's scanFrom.
StartFigures MeasureStarts(const std::string& data, const std::string& socket_path,
                           const std::string& log, int runs, const std::string& probe_id) {
  StartFigures f;
  const std::string db = data + "/warden.db";
  std::error_code ec;
  Daemon first = SpawnWardend(data, socket_path, "pgroup", log);
  if (first.pid < 0 || WaitAccepting(first, socket_path, std::chrono::seconds(60)) < 0) {
    f.ok = false;
    f.note = "the first start after the history was written failed (see " + log + ")";
    if (first.pid > 0) StopWardend(first);
    return f;
  }
  kill(first.pid, SIGKILL);
  WaitExit(first.pid, std::chrono::seconds(10));
  {
    // Folds the WAL into the database file, so that the copy below is all of it.
    SQLite::Database checkpoint(db, SQLite::OPEN_READWRITE);
    checkpoint.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  }
  fs::copy_file(db, db + ".prepared", fs::copy_options::overwrite_existing, ec);
  for (int run = 0; run < runs; ++run) {
    fs::remove(db + "-wal", ec);
    fs::remove(db + "-shm", ec);
    if (!fs::copy_file(db + ".prepared", db, fs::copy_options::overwrite_existing, ec)) {
      f.ok = false;
      f.note = "could not restore " + db + ": " + ec.message();
      return f;
    }
    ::sync();  // the copy's writeback must not land inside the measured start
    Daemon d = SpawnWardend(data, socket_path, "pgroup", log);
    if (d.pid < 0) {
      f.ok = false;
      f.note = "fork failed";
      return f;
    }
    int64_t accepted = WaitAccepting(d, socket_path, std::chrono::seconds(60));
    int64_t rss = StatusKb(d.pid, "RssAnon");
    if (accepted < 0) {
      f.ok = false;
      f.note = "wardend did not accept within 60 s (see " + log + ")";
      StopWardend(d);
      return f;
    }
    f.ms.push_back(static_cast<double>(accepted - d.exec_ns) / 1e6);
    f.rss_anon_kb.push_back(static_cast<double>(rss));
    if (run == 0) {
      f.db_at_accept = FileSize(db);
      f.wal_at_accept = FileSize(db + "-wal");
    }
    if (run == 0 && !probe_id.empty()) {
      // The fabricated history is what the daemon serves.
      auto [status, body] = Request(socket_path, "GET", "/api/executions/" + probe_id);
      boost::system::error_code ec;
      json::value v = json::parse(body, ec);
      std::string s =
          !ec && v.is_object() && v.as_object().contains("status") && v.at("status").is_string()
              ? std::string(v.at("status").as_string())
              : "";
      if (status != 200 || s != "completed") {
        f.note = "GET of a fabricated execution answered " + std::to_string(status) + " " + s;
      }
    }
    if (StopWardend(d) != 0) f.note += " (a shutdown did not exit 0)";
  }
  return f;
}

struct OrphanFigures {
  std::vector<double> ms;
  int alive_at_accept = 0;  // summed over runs
  int terminated = 0;       // orphans rows, summed over runs
  int killed = 0;           // orphans rows, summed over runs
  int other_actions = 0;    // rows of another action, summed over runs
  int runs_done = 0;
  bool available = true;
  std::string note;
};

OrphanFigures MeasureOrphans(const std::string& base, const std::string& containment, int runs) {
  OrphanFigures f;
  constexpr int kOrphans = 100;
  std::string spec = R"({"name":"orphans","maxParallel":100,"graceMs":2000,"nodes":[)";
  for (int i = 0; i < kOrphans; ++i) {
    spec += std::string(i ? "," : "") + R"({"id":"s)" + std::to_string(i) +
            R"(","argv":["sleep","60"]})";
  }
  spec += "]}";
  for (int run = 0; run < runs; ++run) {
    std::string dir = base + "/orphans-" + containment + "-" + std::to_string(run);
    fs::create_directories(dir);
    std::string data = dir + "/data", socket_path = dir + "/wardend.sock",
                log = dir + "/wardend.stderr";
    Daemon first = SpawnWardend(data, socket_path, containment, log);
    if (first.pid < 0 || WaitAccepting(first, socket_path, std::chrono::seconds(20)) < 0) {
      if (first.pid > 0) StopWardend(first);
      f.available = run > 0;
      f.note = containment + ": wardend did not start (" + log + ")";
      return f;
    }
    auto [status, body] = Request(socket_path, "POST", "/api/executions", spec);
    boost::system::error_code ec;
    json::value created = json::parse(body, ec);
    if (status != 201 || ec) {
      f.note = "create answered " + std::to_string(status) + ": " + body;
      StopWardend(first);
      return f;
    }
    std::string id(created.at("executionId").as_string());
    // Until every node runs with a pid (bounded, 60 s).
    std::vector<std::pair<pid_t, unsigned long long>> pids;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      pids.clear();
      auto [s, b] = Request(socket_path, "GET", "/api/executions/" + id);
      json::value e = json::parse(b, ec);
      if (s != 200 || ec) break;
      for (const json::value& node : e.at("nodes").as_array()) {
        const json::value& pid = node.at("pid");
        const json::value& status_value = node.at("status");
        if (!status_value.is_string() || status_value.as_string() != "running" || !pid.is_int64()) {
          break;
        }
        auto stat = ProcStat(static_cast<pid_t>(pid.as_int64()));
        if (!stat || stat->first == 'Z') break;
        pids.emplace_back(static_cast<pid_t>(pid.as_int64()), stat->second);
      }
      if (pids.size() == kOrphans) break;
      timespec pause{0, 20'000'000};
      nanosleep(&pause, nullptr);
    }
    if (pids.size() != kOrphans) {
      f.note = "only " + std::to_string(pids.size()) + " of 100 nodes ran";
      StopWardend(first);
      return f;
    }
    kill(first.pid, SIGKILL);
    WaitExit(first.pid, std::chrono::seconds(10));

    Daemon second = SpawnWardend(data, socket_path, containment, log);
    int64_t accepted = WaitAccepting(second, socket_path, std::chrono::seconds(60));
    int alive = 0;
    for (const auto& [pid, start_time] : pids) alive += Alive(pid, start_time);
    if (accepted < 0) {
      f.note = "the restarted wardend did not accept within 60 s (" + log + ")";
      StopWardend(second);
      for (const auto& [pid, start_time] : pids) {
        if (Alive(pid, start_time)) kill(pid, SIGKILL);
      }
      return f;
    }
    f.ms.push_back(static_cast<double>(accepted - second.exec_ns) / 1e6);
    f.alive_at_accept += alive;
    SQLite::Database db(data + "/warden.db", SQLite::OPEN_READONLY);
    db.setBusyTimeout(10'000);
    SQLite::Statement q(db,
                        "SELECT action, count(*) FROM orphans WHERE execution_id = ? "
                        "GROUP BY action");
    q.bind(1, id);
    while (q.executeStep()) {
      std::string action = q.getColumn(0).isNull() ? "NULL" : q.getColumn(0).getString();
      int n = q.getColumn(1).getInt();
      if (action == "terminated") {
        f.terminated += n;
      } else if (action == "killed") {
        f.killed += n;
      } else {
        f.other_actions += n;
        f.note += " " + action + ":" + std::to_string(n);
      }
    }
    StopWardend(second);
    for (const auto& [pid, start_time] : pids) {
      if (Alive(pid, start_time)) kill(pid, SIGKILL);  // only if the daemon failed to
    }
    ++f.runs_done;
  }
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 5;
  int64_t big_events = 1'000'000;
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--big-events" && i + 1 < argc) {
      big_events = std::max<int64_t>(1000, std::atoll(argv[++i]));
    } else if (a == "--keep") {
      keep = true;
    } else {
      std::fprintf(stderr, "usage: %s [--runs N] [--big-events N] [--keep]\n", argv[0]);
      return 64;
    }
  }
  std::string tmpl = (fs::temp_directory_path() / "warden-recovery-perf-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) return 1;
  const std::string base = tmpl;

  struct Journal {
    std::string label;
    int64_t target;
    JournalShape shape;
    StartFigures figures;
    int64_t db_bytes = 0, wal_bytes = 0;
    double fabricate_s = 0;
  };
  std::vector<Journal> journals = {
      {"empty (reference)", 0, {}, {}},
      {"10k events", 10'000, {}, {}},
      {big_events == 1'000'000 ? std::string("1M events") : std::to_string(big_events) + " events",
       big_events,
       {},
       {}}};
  for (size_t j = 0; j < journals.size(); ++j) {
    Journal& journal = journals[j];
    std::string dir = base + "/journal-" + std::to_string(j);
    fs::create_directories(dir);
    std::string data = dir + "/data", socket_path = dir + "/wardend.sock",
                log = dir + "/wardend.stderr";
    if (!PrepareDataDir(data, socket_path, log)) {
      std::fprintf(stderr, "wardend could not prepare %s (see %s)\n", data.c_str(), log.c_str());
      return 1;
    }
    auto t0 = std::chrono::steady_clock::now();
    if (journal.target > 0) journal.shape = Fabricate(data + "/warden.db", journal.target);
    journal.fabricate_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    journal.db_bytes = FileSize(data + "/warden.db");
    journal.wal_bytes = FileSize(data + "/warden.db-wal");
    journal.figures = MeasureStarts(data, socket_path, log, runs, journal.shape.some_completed_id);
    std::fprintf(stderr, "journal %s: %lld events, %lld executions, fabricated in %.1f s\n",
                 journal.label.c_str(), static_cast<long long>(journal.shape.events),
                 static_cast<long long>(journal.shape.executions), journal.fabricate_s);
    if (!keep) fs::remove_all(data);
  }

  std::vector<std::pair<std::string, OrphanFigures>> orphans;
  for (const std::string mode : {"pgroup", "cgroup"}) {
    orphans.emplace_back(mode, MeasureOrphans(base, mode, runs));
  }

  // ---- the table ----
  std::printf("## wardend start-up: exec until the socket accepts (%d runs each)\n\n", runs);
  std::printf("| measurement | median | min–max | target | verdict |\n|---|---|---|---|---|\n");
  Stats small{}, big{}, rss_small{}, rss_big{};
  for (size_t j = 0; j < journals.size(); ++j) {
    const Journal& journal = journals[j];
    Stats t = Summarize(journal.figures.ms);
    Stats r = Summarize(journal.figures.rss_anon_kb);
    if (j == 1) small = t, rss_small = r;
    if (j == 2) big = t, rss_big = r;
    std::string target = j == 2 ? "≤ 500 ms" : "—";
    std::string verdict = j == 2 ? Verdict(journal.figures.ok && t.median <= 500) : "";
    if (!journal.figures.ok) verdict = "FAIL: " + journal.figures.note;
    std::printf("| exec → accepting, journal %s | %s ms | %s–%s ms | %s | %s |\n",
                journal.label.c_str(), Fixed(t.median).c_str(), Fixed(t.min).c_str(),
                Fixed(t.max).c_str(), target.c_str(), verdict.c_str());
  }
  double ratio = small.median > 0 ? big.median / small.median : 0;
  std::printf("| ratio 1M / 10k (medians) | %s× | | ≤ 1.5× | %s |\n", Fixed(ratio, 2).c_str(),
              Verdict(ratio > 0 && ratio <= 1.5));
  for (size_t j = 0; j < journals.size(); ++j) {
    Stats r = Summarize(journals[j].figures.rss_anon_kb);
    std::printf("| RssAnon after accept, journal %s | %s kB | %s–%s kB | — | |\n",
                journals[j].label.c_str(), Fixed(r.median, 0).c_str(), Fixed(r.min, 0).c_str(),
                Fixed(r.max, 0).c_str());
  }
  double rss_ratio = rss_small.median > 0 ? rss_big.median / rss_small.median : 0;
  std::printf("| RssAnon ratio 1M / 10k (medians) | %s× | | ≤ 2× | %s |\n",
              Fixed(rss_ratio, 2).c_str(), Verdict(rss_ratio > 0 && rss_ratio <= 2));
  for (const auto& [mode, f] : orphans) {
    if (!f.available) {
      std::printf("| 100 orphans, %s | not available: %s | | | |\n", mode.c_str(), f.note.c_str());
      continue;
    }
    Stats t = Summarize(f.ms);
    bool complete = f.runs_done == runs;
    std::printf("| 100 orphans, %s: exec → accepting | %s ms | %s–%s ms | ≤ 1000 ms | %s |\n",
                mode.c_str(), Fixed(t.median).c_str(), Fixed(t.min).c_str(), Fixed(t.max).c_str(),
                Verdict(complete && t.max <= 1000));
    std::printf(
        "| 100 orphans, %s: pids alive when the socket accepted (all runs) | %d | | 0 | %s "
        "|\n",
        mode.c_str(), f.alive_at_accept, Verdict(complete && f.alive_at_accept == 0));
    std::printf(
        "| 100 orphans, %s: `orphans` rows terminated / killed / other (all runs) | "
        "%d / %d / %d | | %d / 0 / 0 | %s |\n",
        mode.c_str(), f.terminated, f.killed, f.other_actions, 100 * runs,
        Verdict(complete && f.terminated == 100 * runs && f.killed == 0 && f.other_actions == 0));
    if (!f.note.empty()) std::printf("|   note | %s | | | |\n", f.note.c_str());
  }
  std::printf("\nJournals (fabricated after a first start ran the migrations):\n\n");
  std::printf(
      "| journal | events | executions (idle) | warden.db / -wal before the start | "
      "when the socket accepts (run 1) | fabricated in |\n|---|---|---|---|---|---|\n");
  for (const Journal& journal : journals) {
    std::printf("| %s | %lld | %lld (%lld) | %s / %s | %s / %s | %.1f s |\n", journal.label.c_str(),
                static_cast<long long>(journal.shape.events),
                static_cast<long long>(journal.shape.executions),
                static_cast<long long>(journal.shape.idle), Mib(journal.db_bytes).c_str(),
                Mib(journal.wal_bytes).c_str(), Mib(journal.figures.db_at_accept).c_str(),
                Mib(journal.figures.wal_at_accept).c_str(), journal.fabricate_s);
  }
  for (const Journal& journal : journals) {
    if (!journal.figures.note.empty()) {
      std::printf("\nnote (%s): %s\n", journal.label.c_str(), journal.figures.note.c_str());
    }
  }
  bool trouble = false;
  for (const Journal& journal : journals) trouble |= !journal.figures.note.empty();
  for (const auto& [mode, f] : orphans) trouble |= f.available && !f.note.empty();
  if (trouble || keep) {
    std::printf("\nkept for inspection (wardend.stderr in each directory): %s\n", base.c_str());
  } else {
    std::error_code ec;
    fs::remove_all(base, ec);
  }
  return 0;
}
