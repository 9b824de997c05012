// The real wardend binary: start-up, one daemon per data directory, clean SIGTERM.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "journal/journal.h"

extern char** environ;

namespace {

struct Daemon {
  pid_t pid = -1;
  int err_fd = -1;  // the daemon's stderr
};

Daemon Spawn(const std::vector<std::string>& args) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return {};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, p[1], 2);
  std::vector<char*> argv = {const_cast<char*>(WARDEND)};
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  Daemon d;
  if (posix_spawn(&d.pid, WARDEND, &actions, nullptr, argv.data(), environ) != 0) d.pid = -1;
  posix_spawn_file_actions_destroy(&actions);
  close(p[1]);
  d.err_fd = p[0];
  return d;
}

// Reads the daemon's stderr until `needle` shows up, EOF, or 10 s pass.
std::string ReadUntil(int fd, const std::string& needle) {
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (out.find(needle) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, 100) <= 0) continue;
    char buf[512];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// Waits up to 10 s for `pid`; returns its wait status, or kills it and returns -1.
int WaitBounded(pid_t pid) {
  for (int i = 0; i < 1000; ++i) {
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) return status;
    usleep(10'000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return -1;
}

class WardendTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "wardend-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl + "/data";  // missing: the daemon creates it
  }
  void TearDown() override {
    for (pid_t pid : started_) {
      if (kill(pid, 0) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
      }
    }
    std::filesystem::remove_all(std::filesystem::path(dir_).parent_path());
  }
  Daemon Start() {
    // Each daemon its own socket: the default one is shared by the whole host.
    std::string socket = std::filesystem::path(dir_).parent_path().string() + "/wardend" +
                         std::to_string(started_.size()) + ".sock";
    Daemon d = Spawn({"--data-dir", dir_, "--socket", socket});
    if (d.pid > 0) started_.push_back(d.pid);
    return d;
  }
  std::string dir_;
  std::vector<pid_t> started_;
};

TEST_F(WardendTest, StartsOnAFreshDirectoryAndRecordsStartAndStop) {
  Daemon d = Start();
  ASSERT_GT(d.pid, 0);
  std::string log = ReadUntil(d.err_fd, "ready");
  ASSERT_NE(log.find("ready"), std::string::npos) << log;
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/warden.db"));
  EXPECT_EQ(std::filesystem::status(dir_).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_all);

  ASSERT_EQ(kill(d.pid, SIGTERM), 0);
  int status = WaitBounded(d.pid);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  close(d.err_fd);

  auto journal = warden::journal::Journal::Open(dir_ + "/warden.db");
  ASSERT_TRUE(journal.ok());
  auto events = (*journal)->ReadAll();
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].kind, "daemon.started");
  EXPECT_EQ((*events)[1].kind, "daemon.stopped");
  EXPECT_NE((*events)[0].payload.find("\"pid\":" + std::to_string(d.pid)), std::string::npos);
}

TEST_F(WardendTest, SecondDaemonOnTheSameDirectoryIsRefusedNamingTheFirst) {
  Daemon first = Start();
  ASSERT_NE(ReadUntil(first.err_fd, "ready").find("ready"), std::string::npos);
  Daemon second = Start();
  int status = WaitBounded(second.pid);
  std::string log = ReadUntil(second.err_fd, "\n");
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_NE(WEXITSTATUS(status), 0);
  EXPECT_NE(log.find("pid " + std::to_string(first.pid)), std::string::npos) << log;
  EXPECT_EQ(kill(first.pid, 0), 0) << "the first daemon is unharmed";
  kill(first.pid, SIGTERM);
  EXPECT_EQ(WaitBounded(first.pid), 0);
  close(first.err_fd);
  close(second.err_fd);
}

TEST_F(WardendTest, UnknownOptionIsAUsageError) {
  Daemon d = Spawn({"--no-such-flag"});
  ASSERT_GT(d.pid, 0);
  started_.push_back(d.pid);
  int status = WaitBounded(d.pid);
  std::string log = ReadUntil(d.err_fd, "\n");
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 64);
  EXPECT_NE(log.find("no-such-flag"), std::string::npos) << log;
  close(d.err_fd);
}

}  // namespace
