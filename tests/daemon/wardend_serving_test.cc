// The real wardend as a service: its socket (permissions, stale and live files), readiness
// for systemd, TCP with tokens, HTTP as curl speaks it, and graceful shutdown with running
// executions.
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "daemon_fixture.h"
#include "journal/journal.h"

extern char** environ;

namespace warden::testing {
namespace {

namespace json = boost::json;

json::value Parse(const std::string& text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  EXPECT_FALSE(ec) << "not JSON: " << text;
  return v;
}

// The first `name` on PATH that can be executed, or "".
std::string FindProgram(const std::string& name) {
  const char* path = getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    std::string candidate = dir + "/" + name;
    if (!dir.empty() && access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::string ReadWhole(const std::string& path) {
  std::ifstream file(path);
  return std::string((std::istreambuf_iterator<char>(file)), {});
}

class WardendServingTest : public DaemonFixture {
 protected:
  // Runs curl on the daemon's socket with `args` (the URL among them), for at most 20 s.
  // Nothing when curl is not installed; exit_code -1 when it had to be killed.
  std::optional<CommandResult> Curl(const std::vector<std::string>& args) {
    static const std::string curl = FindProgram("curl");
    if (curl.empty()) return std::nullopt;
    std::vector<std::string> argv = {curl, "-sS", "--max-time", "15", "--unix-socket", socket_};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> pointers;
    for (auto& arg : argv) pointers.push_back(arg.data());
    pointers.push_back(nullptr);
    const std::string out = dir_ + "/curl.out", err = dir_ + "/curl.err";
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, curl.c_str(), &actions, nullptr, pointers.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    CommandResult result;
    if (rc != 0) return result;
    int status = 0;
    bool ended =
        Eventually([&] { return waitpid(pid, &status, WNOHANG) == pid; }, std::chrono::seconds(20));
    if (!ended) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
    } else if (WIFEXITED(status)) {
      result.exit_code = WEXITSTATUS(status);
    }
    result.out = ReadWhole(out);
    result.err = ReadWhole(err);
    return result;
  }
};

// The status code of the final response in curl's `-i`/`-I` output (after any 100 Continue).
int StatusOf(const std::string& curl_output) {
  int status = 0;
  for (size_t at = 0; curl_output.compare(at, 7, "HTTP/1.") == 0 && curl_output.size() > at + 12;) {
    status = std::atoi(curl_output.c_str() + at + 9);
    size_t end = curl_output.find("\r\n\r\n", at);
    if (end == std::string::npos) break;
    at = end + 4;
  }
  return status;
}

// A header field's value in curl's `-i`/`-I` output (field names in any case), or "".
std::string HeaderOf(const std::string& curl_output, std::string name) {
  std::string lower = curl_output;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  size_t at = lower.find("\r\n" + name + ": ");
  if (at == std::string::npos) return "";
  at += name.size() + 4;
  return curl_output.substr(at, curl_output.find("\r\n", at) - at);
}

TEST_F(WardendServingTest, SocketIsOwnerOnlyAndAppearsOnlyWhenReady) {
  EXPECT_FALSE(std::filesystem::exists(socket_));
  pid_t d = StartDaemon();
  ASSERT_GT(d, 0);
  struct stat st;
  ASSERT_EQ(lstat(socket_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_uid, geteuid());
  ASSERT_EQ(stat(std::filesystem::path(socket_).parent_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 022, 0u) << "only the daemon's user may write the socket directory";
  EXPECT_EQ(Http("GET", "/api/health").status, 200);
  EXPECT_EQ(StopDaemon(d), 0);
  EXPECT_FALSE(std::filesystem::exists(socket_)) << "removed at shutdown";
}

TEST_F(WardendServingTest, SocketGroupMakesItGroupReadable) {
  const group* g = getgrnam("nogroup");
  if (!g) g = getgrnam("daemon");
  if (!g) GTEST_SKIP() << "no nogroup or daemon group on this host";
  pid_t d = StartDaemon({"--socket-group", g->gr_name});
  ASSERT_GT(d, 0);
  struct stat st;
  ASSERT_EQ(lstat(socket_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  EXPECT_EQ(st.st_gid, g->gr_gid);
  EXPECT_EQ(StopDaemon(d), 0);
}

TEST_F(WardendServingTest, StaleSocketIsReplacedAndALiveOneRefusesASecondDaemon) {
  // A socket file whose daemon died: bound, then closed without unlink.
  std::filesystem::create_directories(std::filesystem::path(socket_).parent_path());
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strcpy(address.sun_path, socket_.c_str());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  close(fd);
  pid_t first = StartDaemon();
  ASSERT_GT(first, 0) << "the stale socket is replaced";
  EXPECT_EQ(Http("GET", "/api/health").status, 200);

  // Another data directory, the same socket: refused, and the first one is unharmed.
  std::string data = data_;
  data_ = dir_ + "/other";
  pid_t second = StartDaemon();
  EXPECT_EQ(second, -1);
  data_ = data;
  EXPECT_EQ(Http("GET", "/api/health").status, 200);
  EXPECT_EQ(StopDaemon(first), 0);
}

TEST_F(WardendServingTest, ASecondDaemonOnTheSameDataDirectoryIsRefusedNamingTheFirst) {
  pid_t first = StartDaemon();
  ASSERT_GT(first, 0);
  std::string socket = socket_;
  socket_ = dir_ + "/run/second.sock";
  EXPECT_EQ(StartDaemon(), -1);
  socket_ = socket;
  EXPECT_EQ(Http("GET", "/api/health").status, 200);
  EXPECT_EQ(StopDaemon(first), 0);
}

TEST_F(WardendServingTest, LogsToAFileInTheDataDirectoryAndSighupReopensIt) {
  pid_t d = StartDaemon();
  ASSERT_GT(d, 0);
  std::string log = data_ + "/wardend.log";
  ASSERT_TRUE(std::filesystem::exists(log));
  std::filesystem::rename(log, log + ".rotated");
  kill(d, SIGHUP);
  ASSERT_TRUE(Eventually([&] { return std::filesystem::exists(log); }));
  auto read = [](const std::string& path) {
    std::ifstream file(path);
    return std::string((std::istreambuf_iterator<char>(file)), {});
  };
  EXPECT_TRUE(Eventually([&] { return read(log).find("log file reopened") != std::string::npos; }));
  EXPECT_NE(read(log + ".rotated").find(" ready: "), std::string::npos);
  EXPECT_EQ(StopDaemon(d), 0);
}

TEST_F(WardendServingTest, TellsSystemdReadyOnNotifySocket) {
  std::string notify = dir_ + "/notify.sock";
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strcpy(address.sun_path, notify.c_str());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  pid_t d = StartDaemon({}, {{"NOTIFY_SOCKET", notify}});
  ASSERT_GT(d, 0);
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  char buf[256] = {};
  ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
  ASSERT_GT(n, 0);
  std::string message(buf, static_cast<size_t>(n));
  EXPECT_NE(message.find("READY=1"), std::string::npos) << message;
  EXPECT_NE(message.find("MAINPID=" + std::to_string(d)), std::string::npos) << message;
  EXPECT_TRUE(std::filesystem::exists(socket_)) << "ready means the socket is there";
  EXPECT_EQ(StopDaemon(d), 0);
  close(fd);
}

TEST_F(WardendServingTest, TcpNeedsABearerTokenAndRecordsItsName) {
  std::string tokens = WriteFile("tokens", "ci:s3cret\n");
  chmod(tokens.c_str(), 0600);
  // Refused: a non-loopback address without --allow-remote.
  EXPECT_EQ(StartDaemon({"--listen", "0.0.0.0:0", "--token-file", tokens}), -1);
  int probe = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof in;
  ASSERT_EQ(bind(probe, reinterpret_cast<sockaddr*>(&in), sizeof in), 0);
  getsockname(probe, reinterpret_cast<sockaddr*>(&in), &len);
  int port = ntohs(in.sin_port);
  close(probe);
  pid_t d = StartDaemon({"--listen", "127.0.0.1:" + std::to_string(port), "--token-file", tokens});
  ASSERT_GT(d, 0);
  const std::string host = "127.0.0.1:" + std::to_string(port);
  auto raw = [&](const std::string& request) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&in), sizeof in), 0);
    EXPECT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
    std::string answer;
    char buf[4096];
    for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) answer.append(buf, n);
    close(fd);
    return answer;
  };
  std::string denied =
      raw("GET /api/health HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(denied.rfind("HTTP/1.1 401", 0), 0u) << denied;
  std::string spec = R"({"nodes":[{"id":"s","argv":["sleep","30"]}]})";
  std::string created = raw("POST /api/executions HTTP/1.1\r\nHost: " + host +
                            "\r\nConnection: close\r\n"
                            "Authorization: Bearer s3cret\r\nContent-Type: application/json\r\n"
                            "Content-Length: " +
                            std::to_string(spec.size()) + "\r\n\r\n" + spec);
  EXPECT_EQ(created.rfind("HTTP/1.1 201", 0), 0u) << created;
  std::string id =
      Parse(created.substr(created.find("\r\n\r\n") + 4)).at("executionId").as_string().c_str();
  std::string stop = "{}";
  std::string stopped = raw("POST /api/executions/" + id + "/stop HTTP/1.1\r\nHost: " + host +
                            "\r\nConnection: close\r\n"
                            "Authorization: Bearer s3cret\r\nContent-Type: application/json\r\n"
                            "Content-Length: 2\r\n\r\n{}");
  EXPECT_EQ(stopped.rfind("HTTP/1.1 200", 0), 0u) << stopped;
  CommandResult audit = Warden({"audit", "stops", "--db", data_ + "/warden.db", "--json"});
  EXPECT_NE(audit.out.find("\"requested_by\":\"token:ci\""), std::string::npos) << audit.out;
  // A name that is not the listener's (DNS rebinding) or a page of another site: refused,
  // also with the token.
  std::string rebound =
      raw("GET /api/health HTTP/1.1\r\nHost: rebound.example:" + std::to_string(port) +
          "\r\nConnection: close\r\nAuthorization: Bearer s3cret\r\n\r\n");
  EXPECT_EQ(rebound.rfind("HTTP/1.1 421", 0), 0u) << rebound;
  std::string cross = raw("POST /api/executions/" + id + "/stop HTTP/1.1\r\nHost: " + host +
                          "\r\nConnection: close\r\nOrigin: http://evil.example\r\n"
                          "Authorization: Bearer s3cret\r\nContent-Type: application/json\r\n"
                          "Content-Length: 0\r\n\r\n");
  EXPECT_EQ(cross.rfind("HTTP/1.1 403", 0), 0u) << cross;
  EXPECT_EQ(StopDaemon(d), 0);
}

TEST_F(WardendServingTest, CurlGetsHttpAsRfc9110And9112Describe) {
  if (FindProgram("curl").empty()) GTEST_SKIP() << "curl is not installed";
  pid_t d = StartDaemon();
  ASSERT_GT(d, 0);
  const std::string url = "http://x/api/health";

  // HEAD: GET's status and Content-Length, no body (curl -I would wait for one otherwise).
  auto get = Curl({url});
  auto head = Curl({"-I", url});
  ASSERT_TRUE(get && head);
  ASSERT_EQ(head->exit_code, 0) << head->err;
  EXPECT_EQ(StatusOf(head->out), 200) << head->out;
  EXPECT_EQ(HeaderOf(head->out, "Content-Length"), std::to_string(get->out.size())) << head->out;
  EXPECT_EQ(HeaderOf(head->out, "Content-Type"), "application/json") << head->out;

  // The absolute form a proxy would be sent.
  auto absolute = Curl({"-v", "-i", "--request-target", url, url});
  ASSERT_TRUE(absolute);
  EXPECT_NE(absolute->err.find("> GET " + url + " HTTP/1.1"), std::string::npos) << absolute->err;
  EXPECT_EQ(StatusOf(absolute->out), 200) << absolute->out;

  // Host: required in HTTP/1.1 (curl sends none when told `-H Host:`), not in HTTP/1.0.
  auto no_host = Curl({"-i", "-H", "Host:", url});
  ASSERT_TRUE(no_host);
  EXPECT_EQ(StatusOf(no_host->out), 400) << no_host->out;
  EXPECT_NE(no_host->out.find("\"bad_request\""), std::string::npos) << no_host->out;
  auto old = Curl({"-i", "--http1.0", "-H", "Host:", url});
  ASSERT_TRUE(old);
  EXPECT_EQ(StatusOf(old->out), 200) << old->out;

  // A target over 8 KiB: 414, and it is not echoed.
  auto long_target = Curl({"-i", "http://x/api/executions/" + std::string(9000, 'x')});
  ASSERT_TRUE(long_target);
  EXPECT_EQ(StatusOf(long_target->out), 414) << long_target->out.substr(0, 300);
  EXPECT_NE(long_target->out.find("\"uri_too_long\""), std::string::npos);
  EXPECT_LT(long_target->out.size(), 1000u);
  // A long id within the limit: 404, quoted as an excerpt.
  auto long_id = Curl({"-i", "http://x/api/executions/" + std::string(5000, 'x')});
  ASSERT_TRUE(long_id);
  EXPECT_EQ(StatusOf(long_id->out), 404);
  EXPECT_LT(long_id->out.size(), 1000u) << long_id->out.substr(0, 300);

  // Methods: unknown 501; known on the wrong route 405 with Allow.
  auto brew = Curl({"-i", "-X", "BREW", url});
  ASSERT_TRUE(brew);
  EXPECT_EQ(StatusOf(brew->out), 501) << brew->out;
  EXPECT_NE(brew->out.find("\"not_implemented\""), std::string::npos) << brew->out;
  auto put = Curl({"-i", "-X", "PUT", url});
  ASSERT_TRUE(put);
  EXPECT_EQ(StatusOf(put->out), 405) << put->out;
  EXPECT_EQ(HeaderOf(put->out, "Allow"), "GET, HEAD") << put->out;

  // Codings: a gzip body 415 (with Accept-Encoding), a transfer coding besides chunked 501.
  std::string spec = WriteFile("spec.json", R"({"nodes":[{"id":"a","argv":["true"]}]})");
  auto gzip = Curl({"-i", "-H", "Content-Type: application/json", "-H", "Content-Encoding: gzip",
                    "--data-binary", "@" + spec, "http://x/api/executions"});
  ASSERT_TRUE(gzip);
  EXPECT_EQ(StatusOf(gzip->out), 415) << gzip->out;
  EXPECT_EQ(HeaderOf(gzip->out, "Accept-Encoding"), "identity") << gzip->out;
  auto coded = Curl({"-v", "-i", "-H", "Content-Type: application/json", "-H",
                     "Transfer-Encoding: gzip, chunked", "--data-binary", "@" + spec,
                     "http://x/api/executions"});
  ASSERT_TRUE(coded);
  EXPECT_EQ(StatusOf(coded->out), 501) << coded->out << coded->err;
  auto chunked =
      Curl({"-i", "-H", "Content-Type: application/json", "-H", "Transfer-Encoding: chunked",
            "--data-binary", "@" + spec, "http://x/api/executions"});
  ASSERT_TRUE(chunked);
  EXPECT_EQ(StatusOf(chunked->out), 201) << chunked->out;
  json::value list = Parse(Http("GET", "/api/executions?state=all").body);
  EXPECT_EQ(list.at("executions").as_array().size(), 1u) << "only the chunked create counted";
  EXPECT_EQ(StopDaemon(d), 0);
}

TEST_F(WardendServingTest, SigtermStopsEveryExecutionWithServerShutdownAndLeavesNoProcess) {
  pid_t d = StartDaemon({"--containment", "pgroup", "--grace-ms", "500"});
  ASSERT_GT(d, 0);
  std::vector<std::string> ids;
  for (const char* spec :
       {R"({"nodes":[{"id":"a","argv":["sleep","60"]},{"id":"b","argv":["sleep","60"]}]})",
        R"({"nodes":[{"id":"t","argv":["sh","-c","trap '' TERM; echo armed; sleep 60"]}]})"}) {
    HttpResult r = Http("POST", "/api/executions", spec, "application/json");
    ASSERT_EQ(r.status, 201) << r.body;
    ids.push_back(std::string(Parse(r.body).at("executionId").as_string()));
  }
  std::vector<pid_t> pids;
  ASSERT_TRUE(Eventually([&] {
    pids.clear();
    for (const auto& id : ids) {
      json::value e = Parse(Http("GET", "/api/executions/" + id).body);
      for (const auto& node : e.at("nodes").as_array()) {
        // A pid shows once the node's identity is journaled, just after it runs.
        if (node.at("status").as_string() != "running" || node.at("pid").is_null()) return false;
        pids.push_back(static_cast<pid_t>(node.at("pid").as_int64()));
      }
    }
    return true;
  }));
  ASSERT_EQ(pids.size(), 3u);
  ASSERT_TRUE(Eventually([&] {
    return Http("GET", "/api/executions/" + ids[1] + "/nodes/t/log").body == "armed\n";
  })) << "the node ignores SIGTERM from now on";
  // A client following one execution sees it end as stopped.
  pid_t follower = StartWarden({"events", ids[0], "--follow", "--json"});

  kill(d, SIGTERM);
  // While the stops run (the TERM-proof node holds them for the 500 ms grace), new work is
  // refused with 503 and reads still work.
  ASSERT_TRUE(Eventually([&] {
    return Http("GET", "/api/health").body.find("\"shuttingDown\":true") != std::string::npos;
  }));
  HttpResult refused = Http("POST", "/api/executions", R"({"nodes":[{"id":"a","argv":["true"]}]})",
                            "application/json");
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_NE(refused.body.find("shutting down"), std::string::npos) << refused.body;
  EXPECT_EQ(StopDaemon(d, 0 /* already sent */), 0) << DaemonLog(d);
  CommandResult followed = FinishWarden(follower);
  EXPECT_EQ(followed.exit_code, 0) << followed.err;
  EXPECT_NE(followed.out.find("execution.stopped"), std::string::npos) << followed.out;

  for (pid_t pid : pids) EXPECT_FALSE(kill(pid, 0) == 0) << "node process " << pid << " is left";
  EXPECT_FALSE(std::filesystem::exists(socket_));

  CommandResult audit = Warden({"audit", "stops", "--db", data_ + "/warden.db", "--json"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  json::value stops = Parse(audit.out);
  ASSERT_EQ(stops.as_array().size(), 2u) << audit.out;
  for (const auto& stop : stops.as_array()) {
    EXPECT_EQ(stop.at("reason").as_string(), "server_shutdown");
    EXPECT_FALSE(stop.at("completed_at").is_null());
  }
  auto journal = journal::Journal::Open(data_ + "/warden.db");
  ASSERT_TRUE(journal.ok());
  auto events = (*journal)->ReadAll();
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->back().kind, "daemon.stopped");
}

TEST_F(WardendServingTest, SecondSignalKillsAtOnce) {
  pid_t d = StartDaemon({"--containment", "pgroup", "--grace-ms", "30000"});
  ASSERT_GT(d, 0);
  HttpResult r =
      Http("POST", "/api/executions",
           R"({"nodes":[{"id":"t","argv":["sh","-c","trap '' TERM; echo armed; sleep 60"]}]})",
           "application/json");
  ASSERT_EQ(r.status, 201);
  std::string id(Parse(r.body).at("executionId").as_string());
  ASSERT_TRUE(Eventually(
      [&] { return Http("GET", "/api/executions/" + id + "/nodes/t/log").body == "armed\n"; }));
  ASSERT_TRUE(Eventually([&] {
    return Parse(Http("GET", "/api/executions/" + id).body)
               .at("nodes")
               .at(0)
               .at("status")
               .as_string() == "running";
  }));
  auto began = std::chrono::steady_clock::now();
  kill(d, SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  kill(d, SIGINT);
  EXPECT_EQ(StopDaemon(d, 0), 0) << DaemonLog(d);
  EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(10))
      << "the 30 s grace was cut short";
  CommandResult audit = Warden({"audit", "stops", "--db", data_ + "/warden.db", "--json"});
  // The first signal began the stop under the daemon's grace; the second joined it with
  // grace 0. Both are in the audit, with the stop's one outcome.
  json::array stops = Parse(audit.out).as_array();
  ASSERT_EQ(stops.size(), 2u) << audit.out;
  EXPECT_EQ(stops[0].at("grace_ms").as_int64(), 30000);
  EXPECT_EQ(stops[0].at("joined").as_int64(), 0);
  EXPECT_EQ(stops[1].at("grace_ms").as_int64(), 0);
  EXPECT_EQ(stops[1].at("joined").as_int64(), 1);
  for (const json::value& stop : stops) {
    EXPECT_EQ(stop.at("reason").as_string(), "server_shutdown");
    EXPECT_EQ(stop.at("nodes_killed").as_int64(), 1);
    EXPECT_EQ(stop.at("status").as_string(), "stopped");
  }
}

}  // namespace
}  // namespace warden::testing
