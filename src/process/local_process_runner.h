// LocalProcessRunner: the real ProcessRunner. Launches nodes with Spawner, contains them per
// the Containment detected at creation, and turns every OS event into Asio completions on
// the io_context thread: leader exits through pidfds, cgroup emptiness and freezing through
// inotify on cgroup.events, orphans through SIGCHLD (the daemon is a child subreaper). Nothing
// polls: an idle runner makes no system calls.
//
// Threading: see process_runner.h. Create() and the destructor also run on that thread.
//
// Files: local_process_runner.cc (launch, events), local_process_runner_scan.cc (the pgroup
// scan of /proc).
//
// Reaping: the runner owns the reaping of the daemon's children. It reaps every child it
// does not track (adopted orphans) as soon as it learns of it, so code in the same process
// must not spawn children of its own and wait for them while the io_context runs.
//
// Lifetime: destroying the runner leaves running trees running (as a daemon crash would):
// terminate them first. Trees must not be used after their runner is gone.
#pragma once

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "process/cgroup_pool.h"
#include "process/containment.h"
#include "process/local_process_tree.h"
#include "process/output_keeper.h"
#include "process/process_runner.h"
#include "process/spawner.h"

namespace warden::process {

struct RunnerOptions {
  ContainmentOptions containment;
  // After SIGKILL, how long a member may survive before it is reported unkillable.
  std::chrono::milliseconds kill_timeout{5000};
  // Grace given to members that outlive their leader (see the exit policy).
  std::chrono::milliseconds leftover_grace{2000};
  // Empty cgroups kept ready (cgroup mode).
  size_t cgroup_pool_size = 8;
  // Longest notify line accepted, in bytes.
  size_t notify_line_max = 4096;
  // Clock for reported wall times and pause lengths (timers use real time); null means
  // SystemClock::Instance(). Must outlive the runner.
  const Clock* clock = nullptr;
  // Holds a copy of every node's output pipes so that they outlive a crash of the daemon
  // (output_keeper.h); null: none, and a node that writes after the daemon died gets
  // SIGPIPE. Not owned; must outlive the runner.
  OutputKeeper* keeper = nullptr;
  // The nice value every node starts with, when the daemon runs at another one; unset: the
  // daemon's own.
  std::optional<int> node_nice;
};

class LocalProcessRunner final : public ProcessRunner {
 public:
  // Detects containment, makes the daemon a child subreaper and snapshots its environment
  // (minus NOTIFY_SOCKET and LISTEN_*). Returns Unavailable when cgroup mode was demanded
  // but is impossible, IoError when the kernel lacks what we need.
  static Result<std::unique_ptr<LocalProcessRunner>> Create(boost::asio::io_context& io,
                                                            RunnerOptions options);
  ~LocalProcessRunner() override;

  ContainmentMode containment() const override { return containment_.mode; }
  // The mode with its root and the reason it was chosen, for the start-up log.
  const Containment& containment_info() const { return containment_; }
  // Launches whose pipes the output keeper could not take (it died): their nodes would get
  // SIGPIPE if the daemon crashed.
  uint64_t keeper_failures() const { return keeper_failures_; }

  Result<std::shared_ptr<ProcessTree>> Launch(const LaunchSpec& spec,
                                              LaunchCallbacks callbacks) override;

  // Trees not yet finished.
  size_t live_trees() const { return trees_.size(); }

 private:
  friend class LocalProcessTree;

  LocalProcessRunner(boost::asio::io_context& io, RunnerOptions options, Containment containment,
                     std::string boot_id);

  // Called by trees.
  // pgroup mode: a coalesced, posted pass over /proc that finds the members of every
  // tracked group, the untracked children carrying a node's cookie (escapees), and reaps
  // exited untracked children. Only system calls per entry (getpgid, waitid), no files,
  // except /proc/PID/environ once per adopted child.
  void RequestScan();
  // pgroup mode: true when every child of the daemon is the leader of a tracked tree (or the
  // output keeper). The
  // daemon is a child subreaper, and a leader's live descendants are handed to it before its
  // exit is reported: then the tree of an exited leader with no escapee is empty, without a
  // pass over /proc. False whenever that cannot be told (no children files).
  bool OnlyLeadersAreChildren() const;
  // cgroup mode: sweep `tree`'s cgroup.procs for members outside its process group, in one
  // batch for every tree asking within kSweepDelay.
  void RequestSweep(std::weak_ptr<LocalProcessTree> tree);
  void Forget(LocalProcessTree* tree);  // the tree finished

  Result<std::vector<std::string>> BuildEnvironment(const LaunchSpec& spec) const;
  std::vector<std::string> ExecCandidates(const LaunchSpec& spec) const;
  void WaitForSigchld();
  void OnSigchld();
  void ReapOrphans();  // cgroup mode
  void RequestReap();  // cgroup mode: ReapOrphans, posted, once per wake-up
  void ReadInotify();
  void ScanProcesses();
  // Reaps `pid` if it is an exited child of ours; true when it is gone (reaped now, or not
  // our child any more). Tells the tree that owned it as an escapee.
  bool ReapIfExited(pid_t pid);
  // pgroup: reaps exited untracked children until a kept leader zombie hides the rest.
  void ReapUntracked();
  // The cookie key of an adopted child: empty when it carries none the daemon can read,
  // nullopt when it is exiting (its memory, environment and all, is already released).
  std::optional<std::string> CookieKeyOf(pid_t pid);
  static std::string CookieKey(const Cookie& cookie);

  boost::asio::io_context& io_;
  RunnerOptions options_;
  const Clock& clock_;
  Containment containment_;
  std::string boot_id_;
  pid_t self_pid_;
  std::vector<std::string> base_env_;  // the daemon's, filtered, without WARDEN_*
  std::string base_path_;              // the daemon's PATH
  UniqueFd dev_null_;                  // stdout/stderr of nodes whose output is not kept
  Spawner spawner_;
  std::unique_ptr<CgroupPool> pool_;  // cgroup mode only
  boost::asio::signal_set sigchld_;
  std::optional<boost::asio::posix::stream_descriptor> inotify_;  // cgroup mode only
  std::array<char, 8192> inotify_buffer_;

  std::map<pid_t, std::shared_ptr<LocalProcessTree>> trees_;  // by leader pid
  std::unordered_map<int, LocalProcessTree*> by_watch_;       // inotify wd -> tree
  std::unordered_map<const LocalProcessTree*, int> watch_of_;
  // The keeper's token for each tree's pipes (RunnerOptions::keeper).
  std::unordered_map<const LocalProcessTree*, uint64_t> keeper_token_of_;
  uint64_t next_keeper_token_ = 1;
  uint64_t keeper_failures_ = 0;
  // Launches left whose clock-derived start time is still checked against /proc before it
  // is trusted alone; -1 once one disagreed (then /proc is always read).
  int clone_ticks_checks_left_ = 16;
  std::unordered_map<std::string, LocalProcessTree*> by_cookie_;  // pgroup mode
  std::unordered_map<pid_t, std::string> adopted_cookie_;         // adopted child -> cookie key
  // Adopted children seen exiting (no memory left), and since when.
  std::unordered_map<pid_t, std::chrono::steady_clock::time_point> exiting_since_;
  std::unordered_map<pid_t, LocalProcessTree*> escapee_owner_;  // pgroup mode
  bool scan_pending_ = false;
  bool scanning_ = false;
  bool scan_again_ = false;
  int reaped_ = 0;  // children reaped by ReapIfExited, ever
  std::vector<std::weak_ptr<LocalProcessTree>> sweeps_;
  boost::asio::steady_timer sweep_timer_;
  boost::asio::steady_timer scan_timer_;
  boost::asio::steady_timer poll_timer_;  // pgroup: a pass while a tree waits for members
  bool poll_armed_ = false;
  std::chrono::steady_clock::time_point last_scan_end_;
  std::chrono::steady_clock::duration last_scan_cost_{};
  bool reap_pending_ = false;
  // Posted handlers hold a weak_ptr to this and do nothing once the runner is gone.
  std::shared_ptr<int> lifetime_ = std::make_shared<int>(0);
};

}  // namespace warden::process
