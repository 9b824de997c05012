// The pgroup-mode half of LocalProcessRunner: finding the members of every tracked process
// group and the adopted children that carry a node's cookie, and reaping adopted orphans.
// (cgroup mode needs none of this: the kernel keeps the member list.)
#include <dirent.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>

#include "process/local_process_runner.h"

namespace warden::process {

void LocalProcessRunner::RequestScan() {
  if (scanning_) {
    scan_again_ = true;  // asked for by the pass itself: scheduled once its cost is known
    return;
  }
  if (scan_pending_) return;
  scan_pending_ = true;
  // A pass is served at once unless the passes so far would then take more than a quarter
  // of this thread: after a pass that took d, the next waits until 3d after its end. A
  // chain of short nodes gets a pass per exit at once; a storm of exits (a mass stop) gets
  // passes that each answer every tree that asked meanwhile.
  auto due = last_scan_end_ + 3 * last_scan_cost_;
  auto run = [this, alive = std::weak_ptr<int>(lifetime_)] {
    if (alive.expired()) return;
    scan_pending_ = false;
    auto start = std::chrono::steady_clock::now();
    scanning_ = true;
    ScanProcesses();
    scanning_ = false;
    last_scan_end_ = std::chrono::steady_clock::now();
    last_scan_cost_ = last_scan_end_ - start;
    if (scan_again_) {
      scan_again_ = false;
      RequestScan();
    }
  };
  if (std::chrono::steady_clock::now() >= due) {
    boost::asio::post(io_, std::move(run));
    return;
  }
  scan_timer_.expires_at(due);
  scan_timer_.async_wait([run = std::move(run)](boost::system::error_code ec) {
    if (!ec) run();
  });
}

bool LocalProcessRunner::OnlyLeadersAreChildren() const {
  // A child belongs to the thread that made it, an adopted one to any thread: read them all.
  DIR* tasks = ::opendir("/proc/self/task");
  if (tasks == nullptr) return false;
  bool only_leaders = true;
  int threads = 0;
  char text[4096];
  while (dirent* entry = ::readdir(tasks)) {
    if (entry->d_name[0] == '.') continue;
    ++threads;
    const std::string path = std::string("/proc/self/task/") + entry->d_name + "/children";
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : ::read(fd, text, sizeof text);
    if (fd >= 0) ::close(fd);
    if (n < 0 || n == static_cast<ssize_t>(sizeof text)) {
      only_leaders = false;  // unreadable, or too many to read at once
      break;
    }
    for (const char *p = text, *end = text + n; p < end && only_leaders;) {
      pid_t pid = 0;
      auto [next, ec] = std::from_chars(p, end, pid);
      if (ec != std::errc()) break;
      only_leaders = trees_.count(pid) != 0 || (options_.keeper && pid == options_.keeper->pid());
      p = next + 1;  // the separating space
    }
    if (!only_leaders) break;
  }
  ::closedir(tasks);
  return only_leaders && threads > 0;
}

bool LocalProcessRunner::ReapIfExited(pid_t pid) {
  siginfo_t info{};
  int rc = ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG);
  bool reaped = rc == 0 && info.si_pid == pid;
  bool gone = reaped || (rc != 0 && errno == ECHILD);
  if (!gone) return false;
  if (reaped) ++reaped_;
  adopted_cookie_.erase(pid);
  exiting_since_.erase(pid);
  auto owner = escapee_owner_.find(pid);
  if (owner != escapee_owner_.end()) {
    owner->second->OnEscapeeReaped(pid);
    escapee_owner_.erase(owner);
  }
  return true;
}

void LocalProcessRunner::ReapUntracked() {
  for (int i = 0; i < 100000; ++i) {
    siginfo_t info{};
    if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) return;
    // A leader's zombie is kept until its group is empty, and waitid(P_ALL) returns the
    // first exited child: the ones behind it are reaped once its tree finishes.
    if (trees_.count(info.si_pid) != 0) return;
    if (!ReapIfExited(info.si_pid)) return;
  }
}

namespace {

enum class EnvRead { kText, kNoMemory, kUnreadable };

// Reads DIR/environ (DIR: /proc/PID or /proc/PID/task/TID) into `text`. kNoMemory: the task
// has released its memory (it is exiting, or it is a thread-group leader that exited while
// other threads run): newer kernels refuse the open with ESRCH, older ones read nothing, and
// DIR/statm is all zeros (unlike for an empty environment).
EnvRead ReadEnviron(const std::string& dir, std::string& text) {
  UniqueFd fd(::open((dir + "/environ").c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return errno == ESRCH ? EnvRead::kNoMemory : EnvRead::kUnreadable;
  text.assign(65536, '\0');
  ssize_t n = ::read(fd.get(), text.data(), text.size());
  if (n < 0) return EnvRead::kUnreadable;
  text.resize(static_cast<size_t>(n));
  if (n > 0) return EnvRead::kText;
  UniqueFd statm(::open((dir + "/statm").c_str(), O_RDONLY | O_CLOEXEC));
  char first = '0';
  if (!statm.valid() || ::read(statm.get(), &first, 1) != 1 || first == '0') {
    return EnvRead::kNoMemory;
  }
  return EnvRead::kText;  // an empty environment
}

}  // namespace

std::optional<std::string> LocalProcessRunner::CookieKeyOf(pid_t pid) {
  auto cached = adopted_cookie_.find(pid);
  if (cached != adopted_cookie_.end()) return cached->second;
  const std::string dir = "/proc/" + std::to_string(pid);
  std::string text;
  EnvRead read = ReadEnviron(dir, text);
  if (read == EnvRead::kNoMemory) {
    // A leader that exited before its threads: they still have the memory.
    std::error_code ec;
    for (std::filesystem::directory_iterator it(dir + "/task", ec), end;
         !ec && it != end && read == EnvRead::kNoMemory; it.increment(ec)) {
      if (it->path().filename() == std::to_string(pid)) continue;
      read = ReadEnviron(it->path().string(), text);
    }
  }
  if (read == EnvRead::kUnreadable) return std::string();  // no cookie the daemon can see
  if (read == EnvRead::kNoMemory) {
    // Exiting: its children are about to be handed over, so the pass gives no verdict. A
    // process that stays like this (stuck in its exit) stops holding verdicts back after a
    // second, so that it cannot keep every tree from finishing.
    auto since = exiting_since_.try_emplace(pid, std::chrono::steady_clock::now()).first;
    if (std::chrono::steady_clock::now() - since->second > std::chrono::seconds(1)) {
      return std::string();
    }
    return std::nullopt;
  }
  Cookie cookie;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\0', start);
    if (end == std::string::npos) end = text.size();
    std::string_view entry(text.data() + start, end - start);
    auto value_of = [&](std::string_view key) -> std::optional<std::string_view> {
      if (entry.size() > key.size() && entry.substr(0, key.size()) == key &&
          entry[key.size()] == '=') {
        return entry.substr(key.size() + 1);
      }
      return std::nullopt;
    };
    if (auto v = value_of(kEnvExecutionId)) cookie.execution_id = *v;
    if (auto v = value_of(kEnvNodeId)) cookie.node_id = *v;
    if (auto v = value_of(kEnvAttempt))
      std::from_chars(v->data(), v->data() + v->size(), cookie.attempt);
    start = end + 1;
  }
  std::string key = cookie.execution_id.empty() ? std::string() : CookieKey(cookie);
  adopted_cookie_[pid] = key;
  return key;
}

void LocalProcessRunner::ScanProcesses() {
  if (containment_.mode != ContainmentMode::kProcessGroup) return;
  if (trees_.empty()) {
    ReapUntracked();  // no leader zombie is kept: waitid(P_ALL) sees every exited child
    return;
  }
  // System calls per entry, no file to open and format (a /proc/PID/stat read costs ~9 us
  // here, getpgid or waitid well under one): a pass over a few hundred processes is cheap
  // enough to run on every batch of child events.
  const int reaped_before = reaped_;
  bool exiting = false;  // an adopted child was neither alive nor a zombie yet
  std::unordered_map<pid_t, std::vector<pid_t>> members;  // by pgid
  std::unordered_map<LocalProcessTree*, std::vector<pid_t>> found;
  DIR* dir = ::opendir("/proc");
  if (dir == nullptr) return;
  while (dirent* entry = ::readdir(dir)) {
    pid_t pid = 0;
    const char* name = entry->d_name;
    auto [ptr, ec] = std::from_chars(name, name + std::strlen(name), pid);
    if (ec != std::errc() || *ptr != '\0' || trees_.count(pid) != 0) continue;
    pid_t pgid = ::getpgid(pid);
    if (pgid <= 0) continue;
    if (trees_.count(pgid) != 0) {
      // A member. One that is our exited child (adopted when its parent died) is reaped.
      if (!ReapIfExited(pid)) members[pgid].push_back(pid);
      continue;
    }
    // Outside every tracked group: only our own (adopted) children matter. waitid answers
    // ECHILD for anyone else, and tells an exited child from a live one without reaping.
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
      continue;
    }
    if (info.si_pid == pid) {
      ReapIfExited(pid);
      continue;
    }
    std::optional<std::string> key = CookieKeyOf(pid);
    if (!key) {
      exiting = true;
      continue;
    }
    auto tree = by_cookie_.find(*key);
    if (tree != by_cookie_.end()) {
      found[tree->second].push_back(pid);
      escapee_owner_[pid] = tree->second;
    }
  }
  ::closedir(dir);
  std::vector<std::shared_ptr<LocalProcessTree>> trees;
  trees.reserve(trees_.size());
  for (auto& [pid, tree] : trees_) trees.push_back(tree);
  // Escapees are handed over while every one of them is still an unreaped child, so their
  // pids are safe to signal; only then are the ones that exited during the pass reaped,
  // which takes each out of its tree again (reaped first, it would be kept for ever).
  for (auto& tree : trees) {
    auto f = found.find(tree.get());
    if (f != found.end()) tree->OnEscapeesFound(f->second);
  }
  std::vector<pid_t> escapees;
  escapees.reserve(escapee_owner_.size());
  for (const auto& [pid, tree] : escapee_owner_) escapees.push_back(pid);
  for (pid_t pid : escapees) ReapIfExited(pid);
  if (reaped_ != reaped_before || exiting) {
    // The children of a process that exited during this pass are handed to the daemon as
    // it exits, perhaps after the pass went by their entries: no tree is judged empty on
    // it, the next pass sees them.
    RequestScan();
    return;
  }
  bool waiting = false, terminating = false;
  for (auto& tree : trees) {
    auto m = members.find(tree->identity().pgid);
    tree->OnMembers(m != members.end() ? std::move(m->second) : std::vector<pid_t>{});
    if (tree->leader_exited_ && !tree->finished_) {
      waiting = true;
      terminating = terminating || tree->phase_ != LocalProcessTree::Phase::kNone;
    }
  }
  // The last member of a tree to exit is the daemon's child by then, so its SIGCHLD asks
  // for the pass that finds the tree empty. A SIGCHLD may still not arrive (an embedding
  // program may install its own handler over the runner's): while a tree waits for its
  // members, a pass runs every 50 ms anyway, or every second once only trees already
  // reported unkillable are left.
  if (waiting && !poll_armed_) {
    poll_armed_ = true;
    poll_timer_.expires_after(terminating ? std::chrono::milliseconds(50)
                                          : std::chrono::milliseconds(1000));
    poll_timer_.async_wait(
        [this, alive = std::weak_ptr<int>(lifetime_)](boost::system::error_code ec) {
          if (ec || alive.expired()) return;
          poll_armed_ = false;
          RequestScan();
        });
  }
}

}  // namespace warden::process
