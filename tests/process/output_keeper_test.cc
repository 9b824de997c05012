// OutputKeeper: node output pipes outlive a crash of the daemon, with real processes.
#include "process/output_keeper.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>

namespace warden::process {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream file(path);
  return std::string((std::istreambuf_iterator<char>(file)), {});
}

// Waits (bounded, 5 s) for child `pid`; returns its wait status, or -1.
int WaitChild(pid_t pid) {
  for (int i = 0; i < 500; ++i) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  return -1;
}

// A child that writes `lines` lines to `fd` with default SIGPIPE, 20 ms apart, then exits 0.
pid_t StartWriter(int fd, int lines) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::signal(SIGPIPE, SIG_DFL);
    for (int i = 0; i < lines; ++i) {
      std::string line = "line " + std::to_string(i) + "\n";
      if (::write(fd, line.data(), line.size()) < 0) ::_exit(3);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::_exit(0);
  }
  return pid;
}

class OutputKeeperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/warden-keeper-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(OutputKeeperTest, WriterOutlivesACrashedDaemonAndItsOutputLandsInTheFileUpToTheCap) {
  auto keeper = OutputKeeper::Start();
  ASSERT_TRUE(keeper.ok()) << keeper.status().ToString();
  const pid_t keeper_pid = (*keeper)->pid();
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  ASSERT_EQ(::fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
  const std::string file = dir_ + "/node.1.stdout";
  const int read_end[] = {fds[0]};
  const std::string files[] = {file};
  ASSERT_TRUE((*keeper)->Hold(7, read_end, files, /*cap_bytes=*/40).ok());

  // The daemon dies: its socket and its own read end close.
  (*keeper)->AbandonForTest();
  ::close(fds[0]);
  pid_t writer = StartWriter(fds[1], 10);  // 70 bytes: more than the cap
  ::close(fds[1]);

  int status = WaitChild(writer);
  ASSERT_TRUE(WIFEXITED(status)) << "the writer was killed (SIGPIPE?): status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "every write found a reader";
  int keeper_status = WaitChild(keeper_pid);
  ASSERT_TRUE(WIFEXITED(keeper_status)) << "the keeper exits once every writer is gone";
  // 10 lines of 7 bytes: the first 40 bytes are kept whole, the rest dropped.
  EXPECT_EQ(ReadFile(file),
            std::string("line 0\nline 1\nline 2\nline 3\nline 4\nline 5\nline").substr(0, 40));
}

TEST_F(OutputKeeperTest, OutputTheDaemonAlreadyWroteCountsAgainstTheCap) {
  const std::string file = dir_ + "/node.1.stderr";
  std::ofstream(file) << "0123456789";  // what the daemon captured before it died
  auto keeper = OutputKeeper::Start();
  ASSERT_TRUE(keeper.ok());
  const pid_t keeper_pid = (*keeper)->pid();
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
  const int read_end[] = {fds[0]};
  const std::string files[] = {file};
  ASSERT_TRUE((*keeper)->Hold(1, read_end, files, 16).ok());
  (*keeper)->AbandonForTest();
  ::close(fds[0]);
  ASSERT_EQ(::write(fds[1], "abcdefghij", 10), 10);
  ::close(fds[1]);
  ASSERT_TRUE(WIFEXITED(WaitChild(keeper_pid)));
  EXPECT_EQ(ReadFile(file), "0123456789abcdef");
}

TEST_F(OutputKeeperTest, DroppedPipesAreLetGoAndACleanGoodbyeEndsTheKeeper) {
  auto keeper = OutputKeeper::Start();
  ASSERT_TRUE(keeper.ok());
  const pid_t keeper_pid = (*keeper)->pid();
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
  const int read_end[] = {fds[0]};
  const std::string files[] = {std::string()};
  ASSERT_TRUE((*keeper)->Hold(3, read_end, files, 16).ok());
  ASSERT_TRUE((*keeper)->Drop(3).ok());
  ASSERT_TRUE((*keeper)->Flush().ok());
  ::close(fds[0]);
  // Without a reader anywhere, a write fails: the keeper let its copy go.
  ::signal(SIGPIPE, SIG_IGN);
  bool epipe = false;
  for (int i = 0; i < 100 && !epipe; ++i) {
    epipe = ::write(fds[1], "x", 1) < 0 && errno == EPIPE;
    if (!epipe) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(epipe);
  ::close(fds[1]);
  keeper->reset();  // the goodbye; the destructor reaps the keeper
  EXPECT_NE(::kill(keeper_pid, 0), 0) << "the keeper is gone";
}

TEST_F(OutputKeeperTest, ADropRidesOnTheNextHold) {
  auto keeper = OutputKeeper::Start();
  ASSERT_TRUE(keeper.ok());
  int first[2], second[2];
  ASSERT_EQ(::pipe2(first, O_CLOEXEC | O_NONBLOCK), 0);
  ASSERT_EQ(::pipe2(second, O_CLOEXEC | O_NONBLOCK), 0);
  const std::string files[] = {std::string()};
  const int first_end[] = {first[0]};
  const int second_end[] = {second[0]};
  ASSERT_TRUE((*keeper)->Hold(1, first_end, files, 16).ok());
  ASSERT_TRUE((*keeper)->Drop(1).ok());
  ::close(first[0]);
  ::signal(SIGPIPE, SIG_IGN);
  EXPECT_EQ(::write(first[1], "x", 1), 1) << "the keeper still holds it until the next hold";
  ASSERT_TRUE((*keeper)->Hold(2, second_end, files, 16).ok());
  bool epipe = false;
  for (int i = 0; i < 100 && !epipe; ++i) {
    epipe = ::write(first[1], "x", 1) < 0 && errno == EPIPE;
    if (!epipe) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(epipe) << "let go with the next hold";
  for (int fd : {first[1], second[0], second[1]}) ::close(fd);
}

TEST_F(OutputKeeperTest, KeeperHoldsNoDescriptorOfTheDaemonButItsSocket) {
  int daemon_file = ::open("/dev/null", O_RDONLY);  // stands for the lock, the journal...
  ASSERT_GE(daemon_file, 0);
  auto keeper = OutputKeeper::Start();
  ASSERT_TRUE(keeper.ok());
  std::set<std::string> fds;
  const std::string fd_dir = "/proc/" + std::to_string((*keeper)->pid()) + "/fd";
  for (int i = 0; i < 200; ++i) {  // it closes them right after the fork
    fds.clear();
    for (const auto& entry : std::filesystem::directory_iterator(fd_dir)) {
      fds.insert(entry.path().filename().string());
    }
    if (fds.size() == 4) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(fds, (std::set<std::string>{"0", "1", "2", "3"}));
  ::close(daemon_file);
}

}  // namespace
}  // namespace warden::process
