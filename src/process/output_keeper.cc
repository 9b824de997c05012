#include "process/output_keeper.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <map>
#include <sstream>
#include <vector>

namespace warden::process {

namespace {

constexpr size_t kMaxPipes = 4;
constexpr size_t kMaxMessage = 16384;
// Drops wait for the next hold, at most this many (they then go in a message of their own).
constexpr size_t kMaxPendingDrops = 256;
constexpr int kSocketFd = 3;  // where the keeper keeps its end of the socket

// The pipes of one node attempt, as the keeper holds them.
struct Held {
  std::vector<int> fds;
  std::vector<std::string> files;
  uint64_t cap = 0;
};

// One pipe being drained after the daemon died.
struct Draining {
  int fd = -1;
  std::string file;
  uint64_t cap = 0;
  int out = -1;  // the capture file, opened on the first byte
};

// Appends what `d`'s pipe holds to its file, up to the cap (the file's size counts what the
// daemon wrote before it died). Returns false at end of file (every writer gone).
bool DrainOnce(Draining& d) {
  std::array<char, 65536> buffer;
  ssize_t n = ::read(d.fd, buffer.data(), buffer.size());
  if (n == 0) return false;
  if (n < 0) return errno == EAGAIN || errno == EINTR;
  if (d.file.empty()) return true;
  if (d.out < 0) d.out = ::open(d.file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (d.out < 0) return true;
  struct stat st;
  if (::fstat(d.out, &st) != 0) return true;
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size >= d.cap) return true;  // over the cap: read and dropped, as the daemon does
  size_t keep = std::min<uint64_t>(static_cast<uint64_t>(n), d.cap - size);
  for (size_t done = 0; done < keep;) {
    ssize_t w = ::write(d.out, buffer.data() + done, keep - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    done += static_cast<size_t>(w);
  }
  return true;
}

// After a crash: every pipe is drained into its file until its writers are gone.
[[noreturn]] void DrainAllAndExit(std::map<uint64_t, Held>& held) {
  std::vector<Draining> pipes;
  for (auto& [token, h] : held) {
    for (size_t i = 0; i < h.fds.size(); ++i) {
      pipes.push_back({h.fds[i], i < h.files.size() ? h.files[i] : std::string(), h.cap, -1});
    }
  }
  while (!pipes.empty()) {
    std::vector<pollfd> polls;
    for (const Draining& d : pipes) polls.push_back({d.fd, POLLIN, 0});
    if (::poll(polls.data(), polls.size(), -1) < 0 && errno != EINTR) break;
    for (size_t i = pipes.size(); i-- > 0;) {
      if (polls[i].revents == 0) continue;
      if (!DrainOnce(pipes[i])) {
        ::close(pipes[i].fd);
        if (pipes[i].out >= 0) ::close(pipes[i].out);
        pipes.erase(pipes.begin() + static_cast<std::ptrdiff_t>(i));
      }
    }
  }
  ::_exit(0);
}

// Messages: "H <token> <cap> [<dropped token>...]\n<file>\n<file>..." with one descriptor per
// file line, "D <dropped token>...", "X" (goodbye). Drops ride on the next hold: one system
// call per launch, not two.
[[noreturn]] void KeeperMain(int socket) {
  ::setsid();
  ::prctl(PR_SET_NAME, "warden-keeper", 0, 0, 0);
  // Three descriptors per running node: take every descriptor the hard limit allows.
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &files);
  }
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) ::signal(sig, SIG_DFL);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  // Nothing of the daemon's but the socket: not its lock, journal, or listening socket.
  if (socket != kSocketFd) {
    ::dup2(socket, kSocketFd);
    ::close(socket);
  }
  ::syscall(SYS_close_range, kSocketFd + 1, ~0U, 0);
  int null = ::open("/dev/null", O_RDWR);
  for (int fd = 0; fd < 3; ++fd) {
    if (null >= 0 && null != fd) ::dup2(null, fd);
  }
  if (null > 2) ::close(null);

  std::map<uint64_t, Held> held;
  std::vector<char> buffer(kMaxMessage);
  for (;;) {
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPipes)];
    iovec iov{buffer.data(), buffer.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(kSocketFd, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) DrainAllAndExit(held);  // the daemon is gone without a goodbye
    std::vector<int> fds;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      const int* data = reinterpret_cast<const int*>(CMSG_DATA(c));
      fds.insert(fds.end(), data, data + count);
    }
    std::istringstream in(std::string(buffer.data(), static_cast<size_t>(n)));
    std::string first;
    std::getline(in, first);
    std::istringstream words(first);
    char op = 0;
    words >> op;
    if (op == 'X') ::_exit(0);
    Held hold;
    uint64_t hold_token = 0;
    if (op == 'H') {
      words >> hold_token >> hold.cap;
      for (std::string line; std::getline(in, line);) hold.files.push_back(line);
      hold.fds = std::move(fds);
    } else {
      for (int fd : fds) ::close(fd);
    }
    for (uint64_t dropped; words >> dropped;) {
      auto it = held.find(dropped);
      if (it == held.end()) continue;
      for (int fd : it->second.fds) ::close(fd);
      held.erase(it);
    }
    if (op == 'H') held[hold_token] = std::move(hold);
  }
}

}  // namespace

Result<std::unique_ptr<OutputKeeper>> OutputKeeper::Start() {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    return Status::FromErrno("socketpair for the output keeper", errno);
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    ::close(pair[0]);
    ::close(pair[1]);
    return Status::FromErrno("fork the output keeper", err);
  }
  if (pid == 0) {
    ::close(pair[0]);
    KeeperMain(pair[1]);
  }
  ::close(pair[1]);
  return std::unique_ptr<OutputKeeper>(new OutputKeeper(pid, UniqueFd(pair[0])));
}

OutputKeeper::~OutputKeeper() {
  if (!socket_.valid()) return;
  (void)Send("X", {});
  socket_.Reset();
  // The keeper is our child: reap it so no zombie is left (it exits at once on X).
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
}

void OutputKeeper::AbandonForTest() { socket_.Reset(); }

Status OutputKeeper::Send(const std::string& header, std::span<const int> fds) {
  if (!socket_.valid()) return Status::IoError("the output keeper is gone");
  iovec iov{const_cast<char*>(header.data()), header.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPipes)] = {};
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  for (;;) {
    if (::sendmsg(socket_.get(), &msg, MSG_NOSIGNAL) >= 0) return Status::Ok();
    if (errno != EINTR) return Status::FromErrno("output keeper", errno);
  }
}

Status OutputKeeper::Hold(uint64_t token, std::span<const int> read_ends,
                          std::span<const std::string> files, uint64_t cap_bytes) {
  if (read_ends.size() > kMaxPipes || files.size() != read_ends.size()) {
    return Status::InvalidArgument("output keeper: one file per pipe, at most 4 pipes");
  }
  std::string header = "H " + std::to_string(token) + " " + std::to_string(cap_bytes);
  for (uint64_t dropped : dropped_) header += " " + std::to_string(dropped);
  header += "\n";
  for (const std::string& file : files) header += file + "\n";
  if (header.size() > kMaxMessage) return Status::InvalidArgument("output keeper: paths too long");
  Status sent = Send(header, read_ends);
  if (sent.ok()) dropped_.clear();
  return sent;
}

Status OutputKeeper::Drop(uint64_t token) {
  dropped_.push_back(token);
  if (dropped_.size() < kMaxPendingDrops) return Status::Ok();
  return Flush();
}

Status OutputKeeper::Flush() {
  if (dropped_.empty()) return Status::Ok();
  std::string message = "D";
  for (uint64_t dropped : dropped_) message += " " + std::to_string(dropped);
  Status sent = Send(message, {});
  if (sent.ok()) dropped_.clear();
  return sent;
}

}  // namespace warden::process
