// DaemonFixture: end-to-end tests with the real wardend and the real warden CLI, each in a
// private temporary directory (data directory, socket). Every process a test starts is
// tracked by pid and ended in TearDown; every wait is bounded.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace warden::testing {

struct CommandResult {
  int exit_code = -1;  // -1: killed after the timeout, or did not start
  std::string out;
  std::string err;
};

struct HttpResult {
  int status = 0;  // 0: no answer
  std::string content_type;
  std::string body;
};

class DaemonFixture : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Starts wardend on this test's data directory and socket (plus `extra` flags) and waits
  // for "ready" on its stderr (10 s). Returns its pid, or -1 if it did not get ready.
  pid_t StartDaemon(const std::vector<std::string>& extra = {},
                    const std::map<std::string, std::string>& env = {});
  // Sends `signo` and waits (bounded) for the daemon; returns its exit code, or -1.
  int StopDaemon(pid_t pid, int signo = SIGTERM);
  // Everything the daemon wrote to stderr so far.
  std::string DaemonLog(pid_t pid);

  // Runs the CLI with --socket set, waits at most `timeout`, returns its output.
  CommandResult Warden(const std::vector<std::string>& args,
                       std::chrono::seconds timeout = std::chrono::seconds(30));
  // Starts the CLI without waiting (stdout and stderr to files); FinishWarden collects it.
  pid_t StartWarden(const std::vector<std::string>& args);
  CommandResult FinishWarden(pid_t pid, std::chrono::seconds timeout = std::chrono::seconds(30));

  // One HTTP request on the socket (raw, so that any header or body can be sent). A POST
  // without `content_type` declares application/json.
  HttpResult Http(const std::string& method, const std::string& target,
                  const std::string& body = "", const std::string& content_type = "");

  // Writes `text` to a file in the test directory; returns its path.
  std::string WriteFile(const std::string& name, const std::string& text);
  // Waits (bounded, 10 s) until `predicate` holds; false on timeout.
  static bool Eventually(const std::function<bool()>& predicate,
                         std::chrono::milliseconds limit = std::chrono::seconds(10));

  std::string dir_;     // private temporary directory (0700)
  std::string data_;    // --data-dir
  std::string socket_;  // --socket

 private:
  struct Child {
    int err_fd = -1;
    std::string err;
  };
  std::map<pid_t, Child> daemons_;
  std::vector<pid_t> clients_;
};

}  // namespace warden::testing
