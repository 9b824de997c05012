#include "daemon_fixture.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace warden::testing {

namespace {

// Waits up to `limit` for `pid`; returns its wait status, or kills it and returns -1.
int WaitBounded(pid_t pid, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    int status;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0) return -1;
    usleep(5'000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return -1;
}

int ExitCode(int status) {
  if (status < 0) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

std::string ReadFile(const std::string& path) {
  std::ifstream file(path);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

pid_t Spawn(const std::vector<std::string>& args, int out_fd, int err_fd,
            const std::map<std::string, std::string>& env = {}) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  if (out_fd >= 0) posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
  if (err_fd >= 0) posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    std::string entry = *e;
    if (!env.count(entry.substr(0, entry.find('=')))) env_strings.push_back(entry);
  }
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> argv, envp;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, args[0].c_str(), &actions, nullptr, argv.data(), envp.data()) != 0) {
    pid = -1;
  }
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

}  // namespace

void DaemonFixture::SetUp() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "warden-e2e-XXXXXX").string();
  ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
  dir_ = tmpl;
  data_ = dir_ + "/data";
  socket_ = dir_ + "/run/wardend.sock";
}

void DaemonFixture::TearDown() {
  for (pid_t pid : clients_) {
    if (waitpid(pid, nullptr, WNOHANG) == 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
  for (auto& [pid, child] : daemons_) {
    if (waitpid(pid, nullptr, WNOHANG) == 0) {
      kill(pid, SIGTERM);  // lets it stop its nodes
      WaitBounded(pid, std::chrono::seconds(15));
    }
    if (child.err_fd >= 0) close(child.err_fd);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

pid_t DaemonFixture::StartDaemon(const std::vector<std::string>& extra,
                                 const std::map<std::string, std::string>& env) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return -1;
  std::vector<std::string> args = {WARDEND, "--data-dir", data_, "--socket", socket_};
  args.insert(args.end(), extra.begin(), extra.end());
  pid_t pid = Spawn(args, -1, p[1], env);
  close(p[1]);
  if (pid < 0) {
    close(p[0]);
    return -1;
  }
  Child& child = daemons_[pid];
  child.err_fd = p[0];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  // " ready: " and not "ready": "already listening" must not count.
  while (child.err.find(" ready: ") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    pollfd pfd{child.err_fd, POLLIN, 0};
    if (poll(&pfd, 1, 50) <= 0) continue;
    char buf[4096];
    ssize_t n = read(child.err_fd, buf, sizeof buf);
    if (n <= 0) break;
    child.err.append(buf, static_cast<size_t>(n));
  }
  return child.err.find(" ready: ") == std::string::npos ? -1 : pid;
}

std::string DaemonFixture::DaemonLog(pid_t pid) {
  Child& child = daemons_[pid];
  if (child.err_fd < 0) return child.err;
  for (;;) {
    pollfd pfd{child.err_fd, POLLIN, 0};
    if (poll(&pfd, 1, 0) <= 0) break;
    char buf[4096];
    ssize_t n = read(child.err_fd, buf, sizeof buf);
    if (n <= 0) break;
    child.err.append(buf, static_cast<size_t>(n));
  }
  return child.err;
}

int DaemonFixture::StopDaemon(pid_t pid, int signo) {
  kill(pid, signo);
  int status = WaitBounded(pid, std::chrono::seconds(20));
  DaemonLog(pid);
  return ExitCode(status);
}

pid_t DaemonFixture::StartWarden(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {WARDEN, "--socket", socket_};
  argv.insert(argv.end(), args.begin(), args.end());
  static int counter = 0;
  std::string base = dir_ + "/cli" + std::to_string(++counter);
  int out = open((base + ".out").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int err = open((base + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  pid_t pid = Spawn(argv, out, err);
  close(out);
  close(err);
  if (pid > 0) {
    clients_.push_back(pid);
    std::ofstream(dir_ + "/cli-" + std::to_string(pid)) << base;
  }
  return pid;
}

CommandResult DaemonFixture::FinishWarden(pid_t pid, std::chrono::seconds timeout) {
  CommandResult result;
  if (pid <= 0) return result;
  result.exit_code = ExitCode(WaitBounded(pid, timeout));
  std::string base = ReadFile(dir_ + "/cli-" + std::to_string(pid));
  result.out = ReadFile(base + ".out");
  result.err = ReadFile(base + ".err");
  return result;
}

CommandResult DaemonFixture::Warden(const std::vector<std::string>& args,
                                    std::chrono::seconds timeout) {
  return FinishWarden(StartWarden(args), timeout);
}

HttpResult DaemonFixture::Http(const std::string& method, const std::string& target,
                               const std::string& body, const std::string& content_type) {
  namespace net = boost::asio;
  namespace http = boost::beast::http;
  HttpResult result;
  net::io_context io;
  net::local::stream_protocol::socket socket(io);
  boost::system::error_code ec;
  socket.connect(socket_, ec);
  if (ec) return result;
  http::request<http::string_body> request;
  request.method_string(method);
  request.target(target);
  request.version(11);
  request.set(http::field::host, "wardend");
  if (!content_type.empty()) {
    request.set(http::field::content_type, content_type);
  } else if (method == "POST") {
    request.set(http::field::content_type, "application/json");
  }
  request.body() = body;
  request.prepare_payload();
  http::write(socket, request, ec);
  if (ec) return result;
  boost::beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(boost::none);
  http::read(socket, buffer, parser, ec);
  if (ec) return result;
  result.status = static_cast<int>(parser.get().result_int());
  result.content_type = std::string(parser.get()[http::field::content_type]);
  result.body = parser.get().body();
  return result;
}

std::string DaemonFixture::WriteFile(const std::string& name, const std::string& text) {
  std::string path = dir_ + "/" + name;
  std::ofstream(path) << text;
  return path;
}

bool DaemonFixture::Eventually(const std::function<bool()>& predicate,
                               std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (predicate()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return predicate();
}

}  // namespace warden::testing
