// OrphanReaper: the process-level half of crash recovery. After wardend died (SIGKILL, OOM,
// power of the daemon only), the node trees it launched run on, reparented to init or to a
// subreaper: the new daemon is not their parent and cannot waitpid them. At start-up the
// recovery layer hands it the node attempts the journal recorded; the reaper examines each
// against /proc and terminates the trees that are provably still ours, gracefully.
//
// Two steps, so that the caller can write ahead:
//   Examine    sends nothing: classifies every attempt and pins its live members (pidfds).
//   Terminate  SIGTERM + SIGCONT (and cgroup thaw) to every member of every live tree at once,
//              one grace for all, SIGKILL (and cgroup.kill) for what remains, a bounded wait.
//
// What "ours" means (a process is signalled only with one of these proofs, checked after
// pidfd_open and before pidfd_send_signal through that pidfd, so a recycled pid is never hit):
//   leader   the recorded pid, same boot id and same start time (/proc/PID/stat field 22).
//   cgroup   listed in the recorded cgroup's (or a group below it) cgroup.procs and, read
//            through /proc/PID/cgroup after pinning, still in that group.
//   session  pgroup mode: session id or process group id equal to the recorded sid, trusted
//            only while pid `sid` is free or held by the recorded leader, and only for a
//            process started no earlier than the leader. Why that is enough: the kernel
//            keeps a pid number allocated while any process still has it as its sid or
//            pgid, so while one member of our session lives, no stranger can get that pid
//            nor make a session with that id. A stranger's session with our sid needs our
//            whole session to have ended and the pid to have come round again; its leader
//            then holds pid `sid` with another start time (we trust nothing: its session is
//            the one we would find) or has exited, leaving a session whose members all
//            started after our leader. That last case (pid wrap-around while the daemon was
//            down, plus a stranger session leader that exited before its members) is the
//            residual risk of pgroup mode, as an escape without the cookie is; cgroup mode
//            has neither.
//   cookie   WARDEN_EXECUTION_ID, WARDEN_NODE_ID and WARDEN_ATTEMPT in /proc/PID/environ all
//            equal the recorded cookie (an escapee that called setsid keeps it). pgroup mode,
//            and cgroup mode when the recorded cgroup holds nobody (found by the cookie then).
// A zombie (or a pidfd that already reports the exit) is never a member: init may reap
// orphans late and nobody waits for a zombie. The reaper never signals itself, never writes
// cgroup.kill to a group that holds itself, and touches no cgroup but the recorded ones (and
// the groups below them).
//
// Threading: not thread-safe; one thread calls Examine and then Terminate. Both block (the
// second for up to the largest deadline plus kill_timeout) and use no other thread.
// Errors: there is no error return. A /proc or cgroup file that cannot be read proves
// nothing, so what depends on it is left alone; failed signals leave the process a member,
// which ends up `unkillable` if it outlives the kill timeout.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "process/containment.h"
#include "process/process_identity.h"

namespace warden::recovery {

// One node attempt as the journal recorded it.
struct RecordedAttempt {
  std::string execution_id;
  std::string node_id;
  int attempt = 0;
  process::ContainmentMode mode = process::ContainmentMode::kProcessGroup;
  std::string cgroup_path;  // from the intent; empty in pgroup mode
  // From node.started; nullopt if the daemon died between intent and identity.
  std::optional<process::ProcessIdentity> identity;
  process::Cookie cookie;                 // WARDEN_EXECUTION_ID/NODE_ID/ATTEMPT values
  std::chrono::milliseconds grace{2000};  // grace in force
  // A SIGTERM the old daemon already sent (node.signalled): the SIGKILL deadline is that
  // time + grace, not now + grace.
  std::optional<int64_t> sigterm_sent_ms;
};

// What examination found. kSameProcess: a live tree of ours (its leader, or members proven
// ours by cgroup, session or cookie even though the leader is gone). kPidReused: the
// recorded pid belongs to a stranger and nothing else of ours lives. kGone: nothing of ours
// lives. kHostRebooted: the recorded boot id is not this boot's; nothing was looked for.
enum class Verdict { kSameProcess, kGone, kPidReused, kHostRebooted };
// How the tree was found, by the first proof that produced a member: the recorded leader
// (kPid), the cgroup, the recorded session (kPid), the cookie. With no member: kPid when an
// identity was recorded, else kCgroup in cgroup mode, else kCookie.
enum class Detection { kPid, kCgroup, kCookie };
enum class Action { kTerminated, kKilled, kUnkillable, kGone, kPidReused, kHostRebooted };

// Stable lower_snake names for the journal: "same_process", "gone", "pid_reused",
// "host_rebooted"; "pid", "cgroup", "cookie"; "terminated", "killed", "unkillable", "gone",
// "pid_reused", "host_rebooted".
std::string_view VerdictName(Verdict verdict);
std::string_view DetectionName(Detection detection);
std::string_view ActionName(Action action);

// One per RecordedAttempt, same order.
struct Finding {
  Verdict verdict = Verdict::kGone;
  Detection detection = Detection::kPid;
  std::optional<uint64_t> observed_start_ticks;  // what /proc said for the recorded pid
  std::vector<pid_t> members;  // live members found (pinned by pidfd inside the reaper)
  int64_t found_at_ms = 0;     // wall clock
  // The recorded leader pid's own classification; nullopt without an identity, or when the
  // boot id could not be read (then no identity-based proof is used).
  std::optional<process::IdentityMatch> leader;
};

// One per RecordedAttempt, same order. Times are wall-clock ms.
struct Outcome {
  // kTerminated: the tree emptied before SIGKILL; kKilled: SIGKILL was needed;
  // kUnkillable: members outlived SIGKILL by kill_timeout. Otherwise the finding's verdict.
  Action action = Action::kGone;
  std::optional<int64_t> sigterm_sent_ms;  // the SIGTERM this reaper sent, if any
  std::optional<int64_t> sigkill_sent_ms;
  int64_t finished_at_ms = 0;
  std::vector<pid_t> unkillable;  // survived SIGKILL past kill_timeout (D state)
  bool cgroup_removed = false;    // cgroup mode: Terminate removed the empty recorded group
};

struct ReaperOptions {
  std::chrono::milliseconds kill_timeout{5000};
  // Where /proc/PID/stat, environ and the boot id are read. Pidfds, signals and
  // /proc/PID/cgroup always concern the real processes, so anything but "/proc" only makes
  // sense for classification tests.
  std::filesystem::path proc_root = "/proc";
  const Clock* clock = &SystemClock::Instance();  // not owned; must outlive the reaper
};

namespace detail {
struct ReaperTracker;  // one attempt's proofs and pinned members (orphan_reaper.cc)
}  // namespace detail

class OrphanReaper {
 public:
  explicit OrphanReaper(ReaperOptions options = {});
  ~OrphanReaper();
  OrphanReaper(const OrphanReaper&) = delete;
  OrphanReaper& operator=(const OrphanReaper&) = delete;

  // Step 1, no signal sent: classifies every attempt and finds its live members, pinning
  // them by pidfd until the next Terminate (or Examine). Returns one Finding per attempt,
  // same order. The caller journals the findings (write-ahead) before step 2.
  std::vector<Finding> Examine(std::span<const RecordedAttempt> attempts);

  // Step 2: terminates every attempt whose verdict is kSameProcess, all in parallel (one
  // grace for everyone, not one after another); blocks until every tree is empty or given up
  // on (bounded by the largest deadline + kill_timeout). `findings` must be what Examine
  // returned for the same attempts; the members Examine pinned are reused, and the trees are
  // re-scanned throughout (a process may fork during the grace; newcomers get the signal of
  // the phase). An attempt without a finding is left alone (kGone). In cgroup mode a
  // recorded group found empty at the end is removed (not after kHostRebooted).
  // `on_sigterm(index, ms)` is called right after attempt `index` got its SIGTERM (so the
  // caller can journal it); may be empty. Returns one Outcome per attempt, same order.
  std::vector<Outcome> Terminate(std::span<const RecordedAttempt> attempts,
                                 std::span<const Finding> findings,
                                 std::function<void(size_t, int64_t)> on_sigterm = {});

 private:
  using Tracker = detail::ReaperTracker;
  struct CachedCookie {
    uint64_t start_ticks = 0;
    process::Cookie cookie;  // empty execution_id: the process carries none
    uint64_t walk = 0;       // the /proc walk that last saw the process
  };

  std::unique_ptr<Tracker> Build(const RecordedAttempt& attempt) const;
  // One pass: forgets members that exited or left their cgroup, then pins the members not
  // pinned yet (newcomers). One /proc walk serves every tracker that needs one.
  void Scan(std::span<Tracker* const> trackers);
  // The cookie of process `pid` started at `start_ticks`, read once per process; nullopt
  // when its environment cannot be read now (it is exiting, or access is refused).
  std::optional<process::Cookie> CookieOf(pid_t pid, uint64_t start_ticks);

  ReaperOptions options_;
  std::vector<std::unique_ptr<Tracker>> examined_;  // Examine's trackers, by attempt index
  // Cookies by pid: a scan during the grace reads each environment once, not every 25 ms.
  std::unordered_map<pid_t, CachedCookie> cookies_;
  uint64_t walk_ = 0;
};

}  // namespace warden::recovery
