#include "recovery/orphan_reaper.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <map>
#include <utility>

#include "process/cgroup.h"
#include "process/pidfd.h"
#include "process/proc_stat.h"
#include "process/unique_fd.h"

namespace warden::recovery {

using process::Cookie;
using process::IdentityMatch;
using process::UniqueFd;

namespace detail {

// Why a member is taken for ours; see the header.
enum class Proof { kLeader, kCgroup, kSession, kCookie };

struct Member {
  UniqueFd pidfd;  // pins the process: every signal goes through it
  Proof proof = Proof::kLeader;
  std::filesystem::path group;  // kCgroup: the group whose cgroup.procs listed it last
  int delivered = 0;            // the last phase signal that reached it (SIGTERM, SIGKILL)
};

struct ReaperTracker {
  std::string execution_id, node_id;  // with `attempt`: which RecordedAttempt this is
  int attempt = 0;
  Cookie cookie;
  bool cookie_usable = false;  // an empty cookie would match every process without one
  bool use_cookie = false;
  bool cgroup_mode = false;
  std::filesystem::path cgroup;
  bool has_identity = false;
  bool rebooted = false;
  std::optional<IdentityMatch> leader;
  std::optional<uint64_t> observed_start_ticks;
  pid_t leader_pid = 0;
  uint64_t leader_start = 0;
  bool try_leader = false;  // the recorded leader was alive (or a zombie) when examined
  pid_t sid = 0;            // 0: the session proof is not used
  bool self_in_tree = false;
  std::map<pid_t, Member> members;

  bool Has(Proof proof) const {
    return std::any_of(members.begin(), members.end(),
                       [&](const auto& m) { return m.second.proof == proof; });
  }
};

}  // namespace detail

namespace {

using detail::Member;
using detail::Proof;
using Tracker = detail::ReaperTracker;

// How often the trees are re-read while waiting: we are not the members' parent, so no
// SIGCHLD tells us about a fork; pidfds wake us at once for every exit.
constexpr std::chrono::milliseconds kRescanInterval{25};

bool PidfdExited(int pidfd) {
  pollfd p{pidfd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLIN | POLLHUP)) != 0;
}

// The whole of FILE (a /proc environ may be far larger than one page); nullopt on error.
std::optional<std::string> ReadAll(const std::filesystem::path& file) {
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return std::nullopt;
  std::string text;
  char buffer[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) return text;
    text.append(buffer, static_cast<size_t>(n));
  }
}

// Reads the cookie in <proc_root>/PID/environ. A process whose main thread has exited while
// others run has no readable environ of its own: one of its other threads' is read then.
// nullopt when nothing could be read (the process is exiting, or access is refused).
std::optional<Cookie> ReadCookie(const std::filesystem::path& proc_root, pid_t pid) {
  const std::filesystem::path dir = proc_root / std::to_string(pid);
  std::optional<std::string> text = ReadAll(dir / "environ");
  if (text && !text->empty()) return process::ParseEnvironCookie(*text);
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir / "task", ec), end; !ec && it != end;
       it.increment(ec)) {
    if (it->path().filename() == std::to_string(pid)) continue;
    std::optional<std::string> other = ReadAll(it->path() / "environ");
    if (other && !other->empty()) return process::ParseEnvironCookie(*other);
  }
  // Empty and readable: no environment at all (a kernel thread, or `env -i`).
  if (text) return Cookie{};
  return std::nullopt;
}

// Opens a pidfd for `pid`, then checks `proof` against what /proc says of the pinned
// process; only then may it be signalled through that pidfd.
std::optional<Member> Pin(const Tracker& t, pid_t pid, Proof proof,
                          const std::filesystem::path& group,
                          const std::filesystem::path& proc_root) {
  if (pid == ::getpid()) return std::nullopt;  // a recycled pid may be ours now
  Result<UniqueFd> pidfd = process::OpenPidfd(pid);
  if (!pidfd.ok()) return std::nullopt;
  Result<process::ProcStat> stat = process::ReadProcStat(pid, proc_root);
  if (!stat.ok() || PidfdExited(pidfd->get())) return std::nullopt;
  bool proven = false;
  switch (proof) {
    case Proof::kLeader:
      proven = stat->start_ticks == t.leader_start;
      break;
    case Proof::kCgroup:
      proven = process::ProcessInCgroup(pid, group);
      break;
    case Proof::kSession:
      proven =
          (stat->session == t.sid || stat->pgrp == t.sid) && stat->start_ticks >= t.leader_start;
      break;
    case Proof::kCookie:
      // Read afresh, not from the cache: the cached answer may be for an earlier process.
      proven = ReadCookie(proc_root, pid) == std::optional<Cookie>(t.cookie);
      break;
  }
  if (!proven) return std::nullopt;
  return Member{std::move(*pidfd), proof, group, 0};
}

// Whether processes in session `t.sid` may be taken for ours now: pid `sid` is free (the
// session, if one exists, outlived its leader: ours, see the header) or is our leader.
bool SessionTrusted(const Tracker& t, const std::filesystem::path& proc_root) {
  if (t.sid == 0) return false;
  Result<process::ProcStat> stat = process::ReadProcStat(t.sid, proc_root);
  if (!stat.ok()) return stat.status().code() == StatusCode::kNotFound;
  return stat->start_ticks == t.leader_start;
}

void ScanCgroup(Tracker& t, const std::filesystem::path& proc_root) {
  Result<std::vector<process::CgroupMember>> listing = process::ReadCgroupTreeProcs(t.cgroup);
  // An unreadable listing proves nothing either way: keep what is pinned.
  if (!listing.ok() && listing.status().code() != StatusCode::kNotFound) return;
  std::map<pid_t, std::filesystem::path> listed;
  if (listing.ok()) {
    for (auto& m : *listing) {
      if (m.pid == ::getpid()) {
        t.self_in_tree = true;
        continue;
      }
      listed.emplace(m.pid, std::move(m.group));
    }
  }
  // A member that is no longer listed left the tree (or exited): no longer proven ours.
  std::erase_if(t.members, [&](const auto& m) {
    return m.second.proof == Proof::kCgroup && listed.count(m.first) == 0;
  });
  for (const auto& [pid, group] : listed) {
    if (auto it = t.members.find(pid); it != t.members.end()) {
      it->second.group = group;
    } else if (auto m = Pin(t, pid, Proof::kCgroup, group, proc_root)) {
      t.members.emplace(pid, *std::move(m));
    }
  }
}

// Sends `signo` to every member that has not had it yet; returns the pids it reached. A
// cgroup member is signalled only while, pinned, it is still in the group that listed it
// (else the next scan re-lists or drops it).
std::vector<pid_t> Deliver(Tracker& t, int signo) {
  std::vector<pid_t> reached;
  for (auto& [pid, m] : t.members) {
    if (m.delivered == signo) continue;
    if (m.proof == Proof::kCgroup && !process::ProcessInCgroup(pid, m.group)) continue;
    Status sent = process::SendSignal(m.pidfd, signo);
    if (sent.ok() || sent.code() == StatusCode::kNotFound) {
      m.delivered = signo;
      reached.push_back(pid);
    }
  }
  return reached;
}

// SIGTERM to the members that have not had it, then thaw and SIGCONT: a frozen or stopped
// process acts on SIGTERM only once it runs again. Returns whether a SIGTERM was sent.
bool TermRound(Tracker& t) {
  std::vector<pid_t> reached = Deliver(t, SIGTERM);
  if (reached.empty()) return false;
  // Written whether or not cgroup.events says frozen: a freeze still in progress is not
  // reported as frozen yet, and writing 0 to a thawed group changes nothing.
  if (t.cgroup_mode) (void)process::WriteCgroupFile(t.cgroup, "cgroup.freeze", "0");
  for (pid_t pid : reached) {
    auto m = t.members.find(pid);
    if (m != t.members.end()) (void)process::SendSignal(m->second.pidfd, SIGCONT);
  }
  return true;
}

Action ActionOf(Verdict verdict) {
  if (verdict == Verdict::kPidReused) return Action::kPidReused;
  if (verdict == Verdict::kHostRebooted) return Action::kHostRebooted;
  return Action::kGone;
}

// The name at index `value` of `names` (enumerators in declaration order), or "unknown".
template <typename E, size_t N>
std::string_view NameOf(E value, const std::string_view (&names)[N]) {
  const auto index = static_cast<size_t>(value);
  return index < N ? names[index] : "unknown";
}

}  // namespace

std::string_view VerdictName(Verdict verdict) {
  static constexpr std::string_view kNames[] = {"same_process", "gone", "pid_reused",
                                                "host_rebooted"};
  return NameOf(verdict, kNames);
}

std::string_view DetectionName(Detection detection) {
  static constexpr std::string_view kNames[] = {"pid", "cgroup", "cookie"};
  return NameOf(detection, kNames);
}

std::string_view ActionName(Action action) {
  static constexpr std::string_view kNames[] = {"terminated", "killed",     "unkillable",
                                                "gone",       "pid_reused", "host_rebooted"};
  return NameOf(action, kNames);
}

OrphanReaper::OrphanReaper(ReaperOptions options) : options_(std::move(options)) {}
OrphanReaper::~OrphanReaper() = default;

std::unique_ptr<OrphanReaper::Tracker> OrphanReaper::Build(const RecordedAttempt& a) const {
  auto t = std::make_unique<Tracker>();
  t->execution_id = a.execution_id;
  t->node_id = a.node_id;
  t->attempt = a.attempt;
  t->cookie = a.cookie;
  t->cookie_usable = !a.cookie.execution_id.empty() && !a.cookie.node_id.empty();
  t->cgroup_mode = a.mode == process::ContainmentMode::kCgroup && !a.cgroup_path.empty();
  if (t->cgroup_mode) t->cgroup = a.cgroup_path;
  t->use_cookie = !t->cgroup_mode && t->cookie_usable;
  if (!a.identity) return t;
  const process::ProcessIdentity& id = *a.identity;
  t->has_identity = true;
  Result<IdentityMatch> match = process::ClassifyIdentity(id, options_.proc_root);
  if (!match.ok()) return t;  // no boot id: nothing identity-based is proven
  t->leader = *match;
  if (*match == IdentityMatch::kHostRebooted) {
    t->rebooted = true;
    return t;
  }
  if (Result<process::ProcStat> stat = process::ReadProcStat(id.pid, options_.proc_root);
      stat.ok()) {
    t->observed_start_ticks = stat->start_ticks;
  }
  t->leader_pid = id.pid;
  t->leader_start = id.start_ticks;
  // A zombie leader may still be a live process: its main thread exited, others run on.
  t->try_leader = *match == IdentityMatch::kSameProcess || *match == IdentityMatch::kZombie;
  const pid_t sid = id.sid != 0 ? id.sid : id.pid;
  // A reused leader pid means our session ended long ago: every process with that sid is a
  // stranger's. Every node leads its own session, so a sid other than the pid is corrupt.
  if (!t->cgroup_mode && sid == id.pid && *match != IdentityMatch::kPidReused) t->sid = sid;
  return t;
}

std::optional<Cookie> OrphanReaper::CookieOf(pid_t pid, uint64_t start_ticks) {
  auto cached = cookies_.find(pid);
  if (cached != cookies_.end() && cached->second.start_ticks == start_ticks) {
    cached->second.walk = walk_;
    return cached->second.cookie;
  }
  std::optional<Cookie> cookie = ReadCookie(options_.proc_root, pid);
  if (cookie) cookies_[pid] = CachedCookie{start_ticks, *cookie, walk_};
  return cookie;
}

void OrphanReaper::Scan(std::span<Tracker* const> trackers) {
  const std::filesystem::path& proc_root = options_.proc_root;
  bool walk = false;
  for (Tracker* t : trackers) {
    if (t->rebooted) continue;
    std::erase_if(t->members, [](const auto& m) { return PidfdExited(m.second.pidfd.get()); });
    if (t->try_leader && t->members.count(t->leader_pid) == 0) {
      if (auto m = Pin(*t, t->leader_pid, Proof::kLeader, {}, proc_root)) {
        t->members.emplace(t->leader_pid, *std::move(m));
      }
    }
    if (t->cgroup_mode) ScanCgroup(*t, proc_root);
    walk = walk || t->sid != 0 || t->use_cookie;
  }
  if (!walk) return;

  ++walk_;
  std::vector<char> trusted(trackers.size());
  for (size_t i = 0; i < trackers.size(); ++i) {
    trusted[i] = !trackers[i]->rebooted && SessionTrusted(*trackers[i], proc_root);
  }
  struct Candidate {
    size_t tracker;
    pid_t pid;
    Proof proof;
  };
  std::vector<Candidate> candidates;
  const pid_t self = ::getpid();
  DIR* dir = ::opendir(proc_root.c_str());
  if (dir == nullptr) return;
  while (dirent* entry = ::readdir(dir)) {
    pid_t pid = 0;
    const char* name = entry->d_name;
    auto [ptr, ec] = std::from_chars(name, name + std::strlen(name), pid);
    if (ec != std::errc() || *ptr != '\0' || pid == self || pid == 1) continue;
    Result<process::ProcStat> stat = process::ReadProcStat(pid, proc_root);
    if (!stat.ok() || stat->exited()) continue;
    for (size_t i = 0; i < trackers.size(); ++i) {
      Tracker& t = *trackers[i];
      if (t.rebooted || t.members.count(pid) != 0) continue;
      if (trusted[i] && (stat->session == t.sid || stat->pgrp == t.sid) &&
          stat->start_ticks >= t.leader_start) {
        candidates.push_back({i, pid, Proof::kSession});
      } else if (t.use_cookie) {
        std::optional<Cookie> cookie = CookieOf(pid, stat->start_ticks);
        if (cookie && *cookie == t.cookie) candidates.push_back({i, pid, Proof::kCookie});
      }
    }
  }
  ::closedir(dir);
  std::erase_if(cookies_, [&](const auto& c) { return c.second.walk != walk_; });
  // Checked again after the walk: if pid `sid` was taken by a stranger meanwhile, the
  // session matches of this walk may be the stranger's.
  for (size_t i = 0; i < trackers.size(); ++i) {
    if (trusted[i]) trusted[i] = SessionTrusted(*trackers[i], proc_root);
  }
  for (const Candidate& c : candidates) {
    if (c.proof == Proof::kSession && !trusted[c.tracker]) continue;
    Tracker& t = *trackers[c.tracker];
    if (t.members.count(c.pid) != 0) continue;
    if (auto m = Pin(t, c.pid, c.proof, {}, proc_root)) t.members.emplace(c.pid, *std::move(m));
  }
}

std::vector<Finding> OrphanReaper::Examine(std::span<const RecordedAttempt> attempts) {
  examined_.clear();
  std::vector<Tracker*> all;
  for (const RecordedAttempt& a : attempts) {
    examined_.push_back(Build(a));
    all.push_back(examined_.back().get());
  }
  Scan(all);
  // A cgroup that holds nobody (the group is gone, or the node moved out): look for the
  // cookie, as for an attempt recorded in pgroup mode.
  std::vector<Tracker*> by_cookie;
  for (Tracker* t : all) {
    if (t->cgroup_mode && !t->rebooted && t->members.empty() && t->cookie_usable) {
      t->use_cookie = true;
      by_cookie.push_back(t);
    }
  }
  if (!by_cookie.empty()) Scan(by_cookie);

  const int64_t now_ms = options_.clock->WallMs();
  std::vector<Finding> findings;
  findings.reserve(all.size());
  for (const Tracker* t : all) {
    Finding f;
    f.leader = t->leader;
    f.observed_start_ticks = t->observed_start_ticks;
    f.found_at_ms = now_ms;
    for (const auto& [pid, m] : t->members) f.members.push_back(pid);
    f.verdict = t->rebooted                              ? Verdict::kHostRebooted
                : !t->members.empty()                    ? Verdict::kSameProcess
                : t->leader == IdentityMatch::kPidReused ? Verdict::kPidReused
                                                         : Verdict::kGone;
    // The first proof, in this order, that produced a member; else the way it was sought.
    f.detection = t->Has(Proof::kLeader)    ? Detection::kPid
                  : t->Has(Proof::kCgroup)  ? Detection::kCgroup
                  : t->Has(Proof::kSession) ? Detection::kPid
                  : t->Has(Proof::kCookie)  ? Detection::kCookie
                  : t->has_identity         ? Detection::kPid
                  : t->cgroup_mode          ? Detection::kCgroup
                                            : Detection::kCookie;
    findings.push_back(std::move(f));
  }
  return findings;
}

std::vector<Outcome> OrphanReaper::Terminate(std::span<const RecordedAttempt> attempts,
                                             std::span<const Finding> findings,
                                             std::function<void(size_t, int64_t)> on_sigterm) {
  const Clock& clock = *options_.clock;
  std::vector<Outcome> outcomes(attempts.size());
  std::vector<std::unique_ptr<Tracker>> trackers(attempts.size());
  struct Run {
    size_t index;
    Tracker* t;
    bool killing = false;
    bool done = false;
    std::chrono::steady_clock::time_point deadline{}, kill_deadline{};
  };
  std::vector<Run> runs;
  std::vector<Tracker*> live;
  for (size_t i = 0; i < attempts.size(); ++i) {
    const RecordedAttempt& a = attempts[i];
    const bool same = i < examined_.size() && examined_[i] != nullptr &&
                      examined_[i]->execution_id == a.execution_id &&
                      examined_[i]->node_id == a.node_id && examined_[i]->attempt == a.attempt;
    trackers[i] = same ? std::move(examined_[i]) : Build(a);
    outcomes[i].finished_at_ms = clock.WallMs();
    if (i >= findings.size()) continue;  // kGone: nothing known, nothing done
    if (!same && findings[i].detection == Detection::kCookie && trackers[i]->cookie_usable) {
      trackers[i]->use_cookie = true;
    }
    outcomes[i].action = ActionOf(findings[i].verdict);
    if (findings[i].verdict == Verdict::kSameProcess) {
      runs.push_back({i, trackers[i].get()});
      live.push_back(trackers[i].get());
    }
  }
  examined_.clear();

  auto finish = [&](Run& run, Action action) {
    run.done = true;
    outcomes[run.index].action = action;
    outcomes[run.index].finished_at_ms = clock.WallMs();
  };
  auto start_kill = [&](Run& run) {
    run.killing = true;
    outcomes[run.index].sigkill_sent_ms = clock.WallMs();
    // cgroup.kill is atomic (nothing forks past it) but never aimed at our own group; every
    // member also gets its SIGKILL through its pidfd, which covers the members proven ours
    // otherwise (a leader or cookie carrier outside the group).
    if (run.t->cgroup_mode && !run.t->self_in_tree) {
      (void)process::WriteCgroupFile(run.t->cgroup, "cgroup.kill", "1");
    }
    Deliver(*run.t, SIGKILL);
    run.kill_deadline = clock.Now() + options_.kill_timeout;
  };

  Scan(live);
  for (Run& run : runs) {
    if (run.t->members.empty()) {
      finish(run, run.t->rebooted ? Action::kHostRebooted : Action::kGone);
      continue;
    }
    const RecordedAttempt& a = attempts[run.index];
    auto grace = a.grace;
    if (a.sigterm_sent_ms) {
      grace = std::chrono::milliseconds(*a.sigterm_sent_ms + a.grace.count() - clock.WallMs());
      if (grace.count() <= 0) {
        start_kill(run);  // the old daemon's grace has run out already
        continue;
      }
    }
    // Re-sent even after a recorded SIGTERM: the old daemon may have died before it reached
    // every member, and a second SIGTERM is harmless.
    TermRound(*run.t);
    const int64_t sent_ms = clock.WallMs();
    outcomes[run.index].sigterm_sent_ms = sent_ms;
    run.deadline = clock.Now() + grace;
    if (on_sigterm) on_sigterm(run.index, sent_ms);
  }

  for (;;) {
    auto now = clock.Now();
    auto wake = now + kRescanInterval;
    std::vector<pollfd> fds;
    std::vector<Tracker*> waiting;
    for (Run& run : runs) {
      if (run.done) continue;
      waiting.push_back(run.t);
      wake = std::min(wake, run.killing ? run.kill_deadline : run.deadline);
      for (const auto& [pid, m] : run.t->members) fds.push_back({m.pidfd.get(), POLLIN, 0});
    }
    if (waiting.empty()) break;
    auto timeout = std::chrono::ceil<std::chrono::milliseconds>(wake - now);
    // Any exit wakes us at once; otherwise the periodic re-scan or a deadline does.
    ::poll(fds.data(), fds.size(), static_cast<int>(std::max<int64_t>(0, timeout.count())));
    Scan(waiting);
    now = clock.Now();
    for (Run& run : runs) {
      if (run.done) continue;
      if (run.killing) {
        Deliver(*run.t, SIGKILL);  // newcomers, and members a failed check held back
      } else {
        TermRound(*run.t);
      }
      if (run.t->members.empty()) {
        finish(run, run.killing ? Action::kKilled : Action::kTerminated);
      } else if (!run.killing && now >= run.deadline) {
        start_kill(run);
      } else if (run.killing && now >= run.kill_deadline) {
        for (const auto& [pid, m] : run.t->members) outcomes[run.index].unkillable.push_back(pid);
        finish(run, Action::kUnkillable);
      }
    }
  }

  for (size_t i = 0; i < attempts.size() && i < findings.size(); ++i) {
    Tracker& t = *trackers[i];
    const Action action = outcomes[i].action;
    std::error_code ec;
    if (t.cgroup_mode && action != Action::kHostRebooted && action != Action::kUnkillable &&
        t.members.empty() && std::filesystem::exists(t.cgroup, ec)) {
      // rmdir fails (EBUSY) on a group that still has a member: nothing is lost by trying.
      outcomes[i].cgroup_removed = process::RemoveCgroupTree(t.cgroup) == 0;
    }
  }
  return outcomes;
}

}  // namespace warden::recovery
