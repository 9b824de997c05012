#include "process/local_process_runner.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <utility>

#include "process/proc_stat.h"

extern char** environ;

namespace warden::process {
namespace {

bool DroppedFromDaemonEnv(std::string_view entry) {
  return entry.rfind("NOTIFY_SOCKET=", 0) == 0 || entry.rfind("LISTEN_", 0) == 0 ||
         entry.rfind("WARDEN_EXECUTION_ID=", 0) == 0 || entry.rfind("WARDEN_NODE_ID=", 0) == 0 ||
         entry.rfind("WARDEN_ATTEMPT=", 0) == 0 || entry.rfind("WARDEN_NOTIFY_FD=", 0) == 0;
}

Result<Credentials> ResolveUser(const std::string& user) {
  std::vector<char> buffer(16384);
  passwd entry{};
  passwd* found = nullptr;
  uid_t uid = 0;
  auto [ptr, ec] = std::from_chars(user.data(), user.data() + user.size(), uid);
  int err = (ec == std::errc() && ptr == user.data() + user.size())
                ? ::getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found)
                : ::getpwnam_r(user.c_str(), &entry, buffer.data(), buffer.size(), &found);
  if (err != 0) return Status::FromErrno("look up user " + user, err);
  if (found == nullptr) return Status::InvalidArgument("unknown user '" + user + "'");
  Credentials credentials;
  credentials.uid = entry.pw_uid;
  credentials.gid = entry.pw_gid;
  int count = 64;
  credentials.groups.resize(static_cast<size_t>(count));
  while (::getgrouplist(entry.pw_name, entry.pw_gid, credentials.groups.data(), &count) < 0) {
    credentials.groups.resize(static_cast<size_t>(count) + 16);
    count = static_cast<int>(credentials.groups.size());
  }
  credentials.groups.resize(static_cast<size_t>(count));
  return credentials;
}

// A pipe whose both ends close on exec. The daemon's end turns non-blocking when its
// OutputPipe takes it (the keeper only reads what poll says is there).
Status MakePipe(UniqueFd* read_end, UniqueFd* write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Status::FromErrno("pipe2", errno);
  read_end->Reset(fds[0]);
  write_end->Reset(fds[1]);
  return Status::Ok();
}

}  // namespace

std::string LocalProcessRunner::CookieKey(const Cookie& cookie) {
  return cookie.execution_id + '\n' + cookie.node_id + '\n' + std::to_string(cookie.attempt);
}

Result<std::unique_ptr<LocalProcessRunner>> LocalProcessRunner::Create(boost::asio::io_context& io,
                                                                       RunnerOptions options) {
  Result<Containment> containment = DetectContainment(options.containment);
  if (!containment.ok()) return containment.status();
  Result<std::string> boot_id = ReadBootId();
  if (!boot_id.ok()) return boot_id.status();
  // Re-parented descendants come to us, not to PID 1: we see them and we reap them.
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    return Status::FromErrno("prctl(PR_SET_CHILD_SUBREAPER)", errno);
  }
  std::unique_ptr<LocalProcessRunner> runner(new LocalProcessRunner(
      io, std::move(options), std::move(containment).value(), std::move(boot_id).value()));
  if (runner->containment_.mode == ContainmentMode::kCgroup) {
    int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) return Status::FromErrno("inotify_init1", errno);
    runner->inotify_.emplace(io, fd);
    runner->pool_ = std::make_unique<CgroupPool>(runner->containment_.cgroup_root,
                                                 runner->options_.cgroup_pool_size);
    runner->ReadInotify();
  }
  runner->WaitForSigchld();
  return runner;
}

LocalProcessRunner::LocalProcessRunner(boost::asio::io_context& io, RunnerOptions options,
                                       Containment containment, std::string boot_id)
    : io_(io),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : SystemClock::Instance()),
      containment_(std::move(containment)),
      boot_id_(std::move(boot_id)),
      self_pid_(::getpid()),
      sigchld_(io, SIGCHLD),
      sweep_timer_(io),
      scan_timer_(io),
      poll_timer_(io) {
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    if (text.rfind("PATH=", 0) == 0) base_path_ = std::string(text.substr(5));
    if (!DroppedFromDaemonEnv(text)) base_env_.emplace_back(text);
  }
  if (base_path_.empty()) base_path_ = "/usr/local/bin:/usr/bin:/bin";
  dev_null_.Reset(::open("/dev/null", O_WRONLY | O_CLOEXEC));
}

LocalProcessRunner::~LocalProcessRunner() {
  lifetime_.reset();  // completions already queued must not touch this object
  boost::system::error_code ignored;
  sigchld_.cancel(ignored);
  sweep_timer_.cancel();
  scan_timer_.cancel();
  poll_timer_.cancel();
  if (inotify_) inotify_->close(ignored);
  for (auto& [pid, tree] : trees_) tree->Detach();
  trees_.clear();
}

Result<std::vector<std::string>> LocalProcessRunner::BuildEnvironment(
    const LaunchSpec& spec) const {
  std::vector<std::string> env;
  env.reserve(base_env_.size() + spec.env.size() + 4);
  // The cookie goes first: recovery and the pgroup scan read only the start of environ.
  env.push_back(std::string(kEnvExecutionId) + "=" + spec.cookie.execution_id);
  env.push_back(std::string(kEnvNodeId) + "=" + spec.cookie.node_id);
  env.push_back(std::string(kEnvAttempt) + "=" + std::to_string(spec.cookie.attempt));
  env.push_back(std::string(kEnvNotifyFd) + "=" + std::to_string(kNotifyFd));
  for (const auto& [key, value] : spec.env) {
    if (key.empty() || key.find('=') != std::string::npos || key.find('\0') != std::string::npos ||
        value.find('\0') != std::string::npos) {
      return Status::InvalidArgument("bad environment variable name '" + key + "'");
    }
    if (key.rfind("WARDEN_", 0) == 0 || key == "NOTIFY_SOCKET" || key.rfind("LISTEN_", 0) == 0) {
      continue;  // ours, or never passed on
    }
  }
  for (const std::string& entry : base_env_) {
    std::string key = entry.substr(0, entry.find('='));
    if (spec.env.count(key) == 0) env.push_back(entry);
  }
  for (const auto& [key, value] : spec.env) {
    if (key.rfind("WARDEN_", 0) == 0 || key == "NOTIFY_SOCKET" || key.rfind("LISTEN_", 0) == 0) {
      continue;
    }
    env.push_back(key + "=" + value);
  }
  return env;
}

std::vector<std::string> LocalProcessRunner::ExecCandidates(const LaunchSpec& spec) const {
  const std::string& name = spec.argv[0];
  // The child runs in the node's cwd: relative names and PATH entries are resolved there,
  // not in the daemon's own directory.
  const std::string cwd = spec.cwd.empty() ? "/" : spec.cwd;
  auto in_cwd = [&](std::string_view relative) {
    return cwd + (cwd.back() == '/' ? "" : "/") + std::string(relative);
  };
  if (name.find('/') != std::string::npos) return {name[0] == '/' ? name : in_cwd(name)};
  auto path_it = spec.env.find("PATH");
  std::string_view path = path_it != spec.env.end() ? path_it->second : base_path_;
  std::vector<std::string> candidates;
  size_t start = 0;
  for (;;) {
    size_t end = path.find(':', start);
    std::string_view dir = path.substr(start, end == std::string_view::npos ? end : end - start);
    if (dir.empty()) dir = ".";
    candidates.push_back((dir[0] == '/' ? std::string(dir) : in_cwd(dir)) + "/" + name);
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return candidates;
}

Result<std::shared_ptr<ProcessTree>> LocalProcessRunner::Launch(const LaunchSpec& spec,
                                                                LaunchCallbacks callbacks) {
  // 1. Everything that can be refused is refused before anything is created.
  if (spec.argv.empty() || spec.argv[0].empty()) return Status::InvalidArgument("empty argv");
  for (const std::string& arg : spec.argv) {
    if (arg.find('\0') != std::string::npos) return Status::InvalidArgument("NUL in argv");
  }
  std::string cwd = spec.cwd.empty() ? "/" : spec.cwd;
  if (cwd[0] != '/') return Status::InvalidArgument("cwd must be absolute: " + cwd);
  SpawnRequest request;
  if (!spec.user.empty()) {
    Result<Credentials> credentials = ResolveUser(spec.user);
    if (!credentials.ok()) return credentials.status();
    if (credentials->uid != ::geteuid()) {
      if (::geteuid() != 0) {
        return Status::InvalidArgument("only a daemon running as root may switch users");
      }
      request.credentials = std::move(credentials).value();
    }
  }
  Result<std::vector<std::string>> env = BuildEnvironment(spec);
  if (!env.ok()) return env.status();
  request.argv = spec.argv;
  request.exec_candidates = ExecCandidates(spec);
  request.env = std::move(env).value();
  request.nice = options_.node_nice;
  request.cwd = cwd;

  // 2. Containment and the write-ahead intent.
  CgroupSlot slot;
  if (containment_.mode == ContainmentMode::kCgroup) {
    Result<CgroupSlot> taken = pool_->Take();
    if (!taken.ok()) return taken.status();
    slot = std::move(taken).value();
    request.cgroup_procs_fd = slot.procs.get();
  }
  auto give_back = [&] {
    if (!slot.path.empty()) pool_->Remove(slot.path);
  };
  if (callbacks.on_intent) {
    LaunchIntent intent{spec.cookie, containment_.mode, slot.path.string()};
    Status status = callbacks.on_intent(intent);
    if (!status.ok()) {
      give_back();
      return status;
    }
  }

  // 3. Pipes and capture files. A stream nobody keeps goes straight to /dev/null: no pipe
  // to drain, nothing for the event loop to do.
  UniqueFd out_read, out_write, err_read, err_write, notify_read, notify_write;
  Status status = Status::Ok();
  if (!spec.output.stdout_path.empty()) status = MakePipe(&out_read, &out_write);
  if (status.ok() && !spec.output.stderr_path.empty()) status = MakePipe(&err_read, &err_write);
  if (status.ok()) status = MakePipe(&notify_read, &notify_write);
  if (!status.ok()) {
    give_back();
    return status;
  }
  // The keeper gets its copies before the node exists, so no write of it can ever find the
  // pipes without a reader.
  uint64_t keeper_token = 0;
  if (options_.keeper) {
    std::vector<int> read_ends;
    std::vector<std::string> files;
    if (out_read.valid()) {
      read_ends.push_back(out_read.get());
      files.push_back(spec.output.stdout_path.string());
    }
    if (err_read.valid()) {
      read_ends.push_back(err_read.get());
      files.push_back(spec.output.stderr_path.string());
    }
    read_ends.push_back(notify_read.get());
    files.emplace_back();
    keeper_token = next_keeper_token_++;
    if (!options_.keeper->Hold(keeper_token, read_ends, files, spec.output.cap_bytes).ok()) {
      // The node runs all the same: the keeper is a safety net for a crash of the daemon.
      keeper_token = 0;
      ++keeper_failures_;
    }
  }
  auto drop_keeper = [&] {
    if (keeper_token != 0) (void)options_.keeper->Drop(keeper_token);
  };
  request.stdout_fd = out_write.valid() ? out_write.get() : dev_null_.get();
  request.stderr_fd = err_write.valid() ? err_write.get() : dev_null_.get();
  request.notify_fd = notify_write.get();

  // 4. Watch the group before the first process enters it, so no event is missed.
  int watch = -1;
  if (inotify_) {
    watch = ::inotify_add_watch(inotify_->native_handle(), (slot.path / "cgroup.events").c_str(),
                                IN_MODIFY);
    if (watch < 0) {
      status = Status::FromErrno("inotify_add_watch " + slot.path.string(), errno);
      drop_keeper();
      give_back();
      return status;
    }
  }

  // 5. Spawn.
  Result<SpawnedChild> child = spawner_.Spawn(request);
  if (!child.ok()) {
    if (watch >= 0) ::inotify_rm_watch(inotify_->native_handle(), watch);
    drop_keeper();
    give_back();
    return child.status();
  }
  out_write.Reset();
  err_write.Reset();
  notify_write.Reset();

  // 6. Identity. The child is unreaped, so /proc/PID/stat is its own even if it has exited.
  ProcessIdentity identity;
  identity.boot_id = boot_id_;
  identity.pid = child->pid;
  identity.pgid = child->pid;
  identity.sid = child->pid;
  identity.cgroup_path = slot.path.string();
  identity.cookie = spec.cookie;
  // The start time recovery compares with /proc: from the clone's own clock readings when
  // they pin it to one tick (checked against /proc on the first launches, and never used
  // again if they ever disagree), else from /proc/PID/stat.
  if (child->start_ticks && clone_ticks_checks_left_ == 0) {
    identity.start_ticks = *child->start_ticks;
  } else {
    Result<ProcStat> stat = ReadProcStat(child->pid);
    if (stat.ok()) {
      identity.start_ticks = stat->start_ticks;
      if (child->start_ticks && clone_ticks_checks_left_ > 0) {
        if (*child->start_ticks == stat->start_ticks) {
          --clone_ticks_checks_left_;
        } else {
          spdlog::warn(
              "start time from the clock ({}) differs from /proc ({}): reading /proc "
              "for every launch",
              *child->start_ticks, stat->start_ticks);
          clone_ticks_checks_left_ = -1;
        }
      }
    }
  }

  // 7. The tree and its readers.
  LocalProcessTree::Pipes pipes;
  if (out_read.valid()) {
    pipes.stdout_pipe = OutputPipe::ToFile(io_, std::move(out_read), spec.output.stdout_path,
                                           spec.output.cap_bytes, spec.output.reserve_bytes);
  }
  if (err_read.valid()) {
    pipes.stderr_pipe = OutputPipe::ToFile(io_, std::move(err_read), spec.output.stderr_path,
                                           spec.output.cap_bytes, spec.output.reserve_bytes);
  }
  OutputPipe::LineHandler on_line;
  if (callbacks.on_notify) {
    on_line = [this, on_notify = callbacks.on_notify](std::string_view key,
                                                      std::string_view value) {
      boost::asio::post(io_, [on_notify, key = std::string(key), value = std::string(value)] {
        on_notify(key, value);
      });
    };
  } else {
    on_line = [](std::string_view, std::string_view) {};
  }
  pipes.notify_pipe = OutputPipe::ToLines(io_, std::move(notify_read), options_.notify_line_max,
                                          std::move(on_line));
  TreeTimeouts timeouts{options_.kill_timeout, options_.leftover_grace};
  auto tree = std::make_shared<LocalProcessTree>(
      this, io_, clock_, containment_.mode, timeouts, std::move(identity), std::move(child->pidfd),
      std::move(child->pending), std::move(pipes), std::move(callbacks));
  tree->cgroup_events_ = std::move(slot.events);
  trees_[tree->identity().pid] = tree;
  if (keeper_token != 0) keeper_token_of_[tree.get()] = keeper_token;
  if (watch >= 0) {
    by_watch_[watch] = tree.get();
    watch_of_[tree.get()] = watch;
  }
  if (containment_.mode == ContainmentMode::kProcessGroup) {
    by_cookie_[CookieKey(spec.cookie)] = tree.get();
  }
  tree->Start();
  return std::shared_ptr<ProcessTree>(tree);
}

void LocalProcessRunner::Forget(LocalProcessTree* tree) {
  // The tree's pipes are drained and closed: the keeper's copies can go.
  if (auto token = keeper_token_of_.find(tree); token != keeper_token_of_.end()) {
    (void)options_.keeper->Drop(token->second);
    keeper_token_of_.erase(token);
  }
  auto watch = watch_of_.find(tree);
  if (watch != watch_of_.end()) {
    if (inotify_) ::inotify_rm_watch(inotify_->native_handle(), watch->second);
    by_watch_.erase(watch->second);
    watch_of_.erase(watch);
  }
  if (!tree->identity().cgroup_path.empty() && pool_) pool_->Remove(tree->identity().cgroup_path);
  std::erase_if(escapee_owner_, [tree](const auto& entry) { return entry.second == tree; });
  auto cookie = by_cookie_.find(CookieKey(tree->identity().cookie));
  if (cookie != by_cookie_.end() && cookie->second == tree) by_cookie_.erase(cookie);
  // Last: this may drop the final reference to `tree`, so it is posted, not done inline.
  auto it = trees_.find(tree->identity().pid);
  if (it != trees_.end() && it->second.get() == tree) {
    boost::asio::post(io_, [keep = std::move(it->second)] {});
    trees_.erase(it);
  }
  // With no tree left, the scan only reaps what the last leader's zombie may have hidden.
  if (containment_.mode == ContainmentMode::kProcessGroup && trees_.empty()) RequestScan();
  // cgroup: the tree's members that the daemon adopted are zombies now; they are reaped
  // even if their SIGCHLD never arrives (an embedding program's own handler).
  if (containment_.mode == ContainmentMode::kCgroup) RequestReap();
}

void LocalProcessRunner::WaitForSigchld() {
  sigchld_.async_wait(
      [this, alive = std::weak_ptr<int>(lifetime_)](boost::system::error_code ec, int) {
        if (ec || alive.expired()) return;
        OnSigchld();
        WaitForSigchld();
      });
}

void LocalProcessRunner::OnSigchld() {
  if (containment_.mode == ContainmentMode::kProcessGroup) {
    // An adopted member may have died (the group may be empty now), or an orphan: the scan
    // reaps and recounts.
    RequestScan();
    return;
  }
  RequestReap();
}

void LocalProcessRunner::RequestReap() {
  // Posted, so that the pidfd completions of the same wake-up reap their leaders first:
  // each waitid(P_ALL) below walks every child of the daemon.
  if (reap_pending_) return;
  reap_pending_ = true;
  boost::asio::post(io_, [this, alive = std::weak_ptr<int>(lifetime_)] {
    if (alive.expired()) return;
    reap_pending_ = false;
    ReapOrphans();
  });
}

void LocalProcessRunner::ReapOrphans() {
  // cgroup mode keeps no zombie: peek at each exited child, let its tree reap a leader,
  // reap anything else (an orphan adopted as subreaper).
  for (int i = 0; i < 100000; ++i) {
    siginfo_t info{};
    if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) return;
    auto it = trees_.find(info.si_pid);
    if (it != trees_.end() && !it->second->leader_exited_) {
      std::shared_ptr<LocalProcessTree> tree = it->second;
      tree->OnLeaderMaybeExited();
      if (!tree->leader_exited_) return;  // should not happen; never spin
    } else {
      siginfo_t reaped{};
      ::waitid(P_PID, static_cast<id_t>(info.si_pid), &reaped, WEXITED | WNOHANG);
    }
  }
}

void LocalProcessRunner::ReadInotify() {
  inotify_->async_read_some(
      boost::asio::buffer(inotify_buffer_),
      [this, alive = std::weak_ptr<int>(lifetime_)](boost::system::error_code ec, size_t n) {
        if (ec || alive.expired()) return;
        std::vector<std::shared_ptr<LocalProcessTree>> changed;
        bool overflowed = false;
        for (size_t offset = 0; offset + sizeof(inotify_event) <= n;) {
          inotify_event event;
          std::memcpy(&event, inotify_buffer_.data() + offset, sizeof event);
          offset += sizeof(inotify_event) + event.len;
          if (event.mask & IN_Q_OVERFLOW) overflowed = true;
          auto it = by_watch_.find(event.wd);
          if (it != by_watch_.end()) changed.push_back(it->second->shared_from_this());
        }
        if (overflowed) {
          // The queue overflowed and events were lost: every tree reads its cgroup.events.
          changed.clear();
          for (auto& [wd, tree] : by_watch_) changed.push_back(tree->shared_from_this());
        }
        for (auto& tree : changed) tree->OnCgroupEvents();
        ReadInotify();
      });
}

void LocalProcessRunner::RequestSweep(std::weak_ptr<LocalProcessTree> tree) {
  sweeps_.push_back(std::move(tree));
  if (sweeps_.size() > 1) return;
  sweep_timer_.expires_after(std::chrono::milliseconds(10));
  sweep_timer_.async_wait(
      [this, alive = std::weak_ptr<int>(lifetime_)](boost::system::error_code ec) {
        if (ec || alive.expired()) return;
        std::vector<std::weak_ptr<LocalProcessTree>> batch;
        batch.swap(sweeps_);
        for (auto& weak : batch) {
          if (auto tree = weak.lock()) tree->OnSweep();
        }
      });
}

}  // namespace warden::process
