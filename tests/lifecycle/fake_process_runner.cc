#include "fake_process_runner.h"

#include <signal.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <utility>

namespace warden::lifecycle_test {

using process::ExitInfo;
using process::LaunchCallbacks;
using process::LaunchIntent;
using process::LaunchSpec;
using process::ProcessIdentity;
using process::TerminationReport;

FakeProcessTree::FakeProcessTree(FakeProcessRunner& runner, LaunchSpec spec,
                                 ProcessIdentity identity, LaunchCallbacks callbacks,
                                 TermBehavior behavior)
    : runner_(runner),
      spec_(std::move(spec)),
      identity_(std::move(identity)),
      callbacks_(std::move(callbacks)),
      behavior_(behavior),
      timer_(runner.io_) {}

void FakeProcessTree::Post(std::function<void()> fn) {
  boost::asio::post(runner_.io_, std::move(fn));
}

bool FakeProcessTree::got_signal(int signo) const {
  return std::find(signals_.begin(), signals_.end(), signo) != signals_.end();
}

void FakeProcessTree::Terminate(std::chrono::milliseconds grace,
                                std::function<void(const TerminationReport&)> done) {
  runner_.CheckThread("Terminate");
  ++runner_.terminate_calls_;
  terminate_graces_.push_back(grace);
  if (runner_.on_terminate) runner_.on_terminate(*this, grace);
  if (finished_) {
    TerminationReport report;
    report.graceful = true;
    Post([done = std::move(done), report] { done(report); });
    return;
  }
  terminate_waiters_.push_back(std::move(done));
  auto deadline = std::chrono::steady_clock::now() + grace;
  if (terminating_) {
    if (!report_.unkillable.empty()) {
      // Already reported unkillable: the join gets that report at once.
      auto waiter = std::move(terminate_waiters_.back());
      terminate_waiters_.pop_back();
      Post([waiter = std::move(waiter), report = report_] { waiter(report); });
      return;
    }
    // Joins the running termination; an earlier deadline wins while SIGKILL is still ahead.
    if (!report_.sigkill_sent_ms && deadline < deadline_) {
      deadline_ = deadline;
      timer_.expires_at(deadline_);
      timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
        if (!ec) self->GraceExpired();
      });
    }
    return;
  }
  terminating_ = true;
  report_ = TerminationReport{};
  report_.sigterm_sent_ms = runner_.clock_.WallMs();
  signals_.push_back(SIGTERM);
  if (paused_) {
    signals_.push_back(SIGCONT);  // a frozen tree must be able to act on SIGTERM
    EndPause();
  }
  if (held_freeze_) {
    auto held = std::move(held_freeze_);
    held_freeze_ = nullptr;
    Post([held = std::move(held)] { held(Status::Conflict("terminating")); });
  }
  if (behavior_ == TermBehavior::kExitOnTerm) {
    Post([self = shared_from_this()] {
      if (!self->finished_) self->Finish(std::nullopt, SIGTERM);
    });
    return;
  }
  deadline_ = deadline;
  timer_.expires_at(deadline_);
  timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (!ec) self->GraceExpired();
  });
}

void FakeProcessTree::GraceExpired() {
  if (finished_ || report_.sigkill_sent_ms) return;
  report_.sigkill_sent_ms = runner_.clock_.WallMs();
  signals_.push_back(SIGKILL);
  if (behavior_ != TermBehavior::kUnkillable) {
    Finish(std::nullopt, SIGKILL);
    return;
  }
  timer_.expires_after(runner_.kill_timeout_);
  timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec || self->finished_) return;
    self->report_.unkillable = {self->identity_.pid};
    self->report_.graceful = false;
    for (auto& waiter : self->terminate_waiters_) {
      self->Post([waiter = std::move(waiter), report = self->report_] { waiter(report); });
    }
    self->terminate_waiters_.clear();
  });
}

void FakeProcessTree::EndPause() {
  paused_ = false;
  total_paused_ +=
      std::chrono::duration_cast<std::chrono::milliseconds>(runner_.clock_.Now() - paused_at_);
}

void FakeProcessTree::Finish(std::optional<int> exit_code, std::optional<int> signal) {
  if (finished_) return;
  finished_ = true;
  timer_.cancel();
  if (paused_) EndPause();
  int64_t now = runner_.clock_.WallMs();
  exit_info_.exit_code = exit_code;
  exit_info_.signal = signal;
  exit_info_.leader_exited_ms = now;
  exit_info_.tree_empty_ms = now;
  if (terminating_) {
    report_.tree_empty_ms = now;
    report_.graceful = !report_.sigkill_sent_ms.has_value();
    report_.unkillable.clear();
  }
  auto post_exit = [this] {
    if (!callbacks_.on_exit) return;
    Post([on_exit = std::move(callbacks_.on_exit), info = exit_info_] { on_exit(info); });
    callbacks_.on_exit = nullptr;
  };
  if (runner_.exit_before_report_) post_exit();
  for (auto& waiter : terminate_waiters_) {
    Post([waiter = std::move(waiter), report = report_] { waiter(report); });
  }
  terminate_waiters_.clear();
  if (held_freeze_) {
    auto held = std::move(held_freeze_);
    held_freeze_ = nullptr;
    Post([held = std::move(held)] { held(Status::Conflict("finished")); });
  }
  post_exit();
}

void FakeProcessTree::Pause(std::function<void(Status)> done) {
  runner_.CheckThread("Pause");
  ++pause_calls_;
  if (finished_ || terminating_) {
    Status status =
        Status::Conflict(finished_ ? "pause refused: tree finished" : "pause refused: terminating");
    Post([done = std::move(done), status] { done(status); });
    return;
  }
  if (paused_) {
    if (held_freeze_) {
      runner_.Violation("Pause of " + node_id() + " while a pause is still freezing");
    }
    Post([done = std::move(done)] { done(Status::Ok()); });
    return;
  }
  if (!pause_failure_.ok()) {
    Status status = std::exchange(pause_failure_, Status::Ok());
    Post([done = std::move(done), status] { done(status); });
    return;
  }
  paused_ = true;
  paused_at_ = runner_.clock_.Now();
  signals_.push_back(SIGSTOP);
  if (hold_freeze_) {
    hold_freeze_ = false;
    held_freeze_ = std::move(done);
    return;
  }
  Post([done = std::move(done)] { done(Status::Ok()); });
}

bool FakeProcessTree::FinishFreeze() {
  if (!held_freeze_) return false;
  auto held = std::move(held_freeze_);
  held_freeze_ = nullptr;
  Post([held = std::move(held)] { held(Status::Ok()); });
  return true;
}

void FakeProcessTree::Resume(std::function<void(Result<std::chrono::milliseconds>)> done) {
  runner_.CheckThread("Resume");
  ++resume_calls_;
  if (!paused_ || finished_) {
    Post([done = std::move(done)] { done(Status::Conflict("resume refused: not paused")); });
    return;
  }
  auto started = paused_at_;
  EndPause();
  signals_.push_back(SIGCONT);
  auto lasted =
      std::chrono::duration_cast<std::chrono::milliseconds>(runner_.clock_.Now() - started);
  if (held_freeze_) {
    auto held = std::move(held_freeze_);
    held_freeze_ = nullptr;
    Post([held = std::move(held)] { held(Status::Ok()); });
  }
  Post([done = std::move(done), lasted] { done(lasted); });
}

bool FakeProcessTree::Exit(int code) {
  if (finished_) return false;
  Finish(code, std::nullopt);
  return true;
}

bool FakeProcessTree::KillBySignal(int signo) {
  if (finished_) return false;
  Finish(std::nullopt, signo);
  return true;
}

bool FakeProcessTree::Notify(std::string key, std::string value) {
  if (finished_) return false;
  if (!callbacks_.on_notify) return true;
  Post([self = shared_from_this(), key = std::move(key), value = std::move(value)] {
    if (self->callbacks_.on_notify) self->callbacks_.on_notify(key, value);
  });
  return true;
}

FakeProcessRunner::FakeProcessRunner(boost::asio::io_context& io, const Clock* clock)
    : io_(io), clock_(*clock), thread_(std::this_thread::get_id()) {}

FakeProcessRunner::~FakeProcessRunner() {
  // Timers hold their trees; cancel them so that nothing fires after the runner is gone.
  for (auto& launch : launches_) {
    if (launch.tree) launch.tree->timer_.cancel();
  }
}

void FakeProcessRunner::CheckThread(std::string_view what) {
  if (std::this_thread::get_id() != thread_) {
    Violation(std::string(what) + " called off the io_context thread");
  }
}

void FakeProcessRunner::FailLaunches(const std::string& node_id, Status status, int times) {
  if (status.ok() || times == 0) {
    launch_failures_.erase(node_id);
  } else {
    launch_failures_[node_id] = {std::move(status), times};
  }
}

void FakeProcessRunner::SetTermBehavior(const std::string& node_id, TermBehavior behavior) {
  term_behaviors_[node_id] = behavior;
}

Result<std::shared_ptr<process::ProcessTree>> FakeProcessRunner::Launch(const LaunchSpec& spec,
                                                                        LaunchCallbacks callbacks) {
  CheckThread("Launch");
  const process::Cookie& cookie = spec.cookie;
  if (spec.argv.empty()) Violation("Launch of " + cookie.node_id + " with an empty argv");
  if (cookie.attempt < 1) {
    Violation("Launch of " + cookie.node_id + " with attempt " + std::to_string(cookie.attempt));
  }
  if (spec.cwd.empty() || spec.cwd.front() != '/') {
    Violation("Launch of " + cookie.node_id + " with a relative cwd '" + spec.cwd + "'");
  }
  if (cookie.execution_id.empty() || cookie.node_id.empty()) {
    Violation("Launch with an incomplete cookie");
  }

  LaunchRecord record;
  record.spec = spec;
  record.wall_ms = clock_.WallMs();
  record.real = std::chrono::steady_clock::now();

  LaunchIntent intent;
  intent.cookie = cookie;
  intent.mode = mode_;
  if (mode_ == process::ContainmentMode::kCgroup) {
    intent.cgroup_path = "/sys/fs/cgroup/warden-fake/" + cookie.execution_id + "/" +
                         cookie.node_id + "." + std::to_string(cookie.attempt);
  }
  if (callbacks.on_intent) {
    Status status = callbacks.on_intent(intent);
    if (!status.ok()) {
      record.result = status;
      launches_.push_back(std::move(record));
      return status;
    }
  }
  if (auto failure = launch_failures_.find(cookie.node_id); failure != launch_failures_.end()) {
    Status status = failure->second.status;
    if (failure->second.remaining > 0 && --failure->second.remaining == 0) {
      launch_failures_.erase(failure);
    }
    record.result = status;
    launches_.push_back(std::move(record));
    return status;
  }
  if (on_launch) on_launch(spec);

  ProcessIdentity identity;
  identity.boot_id = "fake-boot-id";
  identity.pid = next_pid_++;
  identity.start_ticks = 100'000 + static_cast<uint64_t>(identity.pid);
  identity.pgid = identity.pid;
  identity.sid = identity.pid;
  identity.cgroup_path = intent.cgroup_path;
  identity.cookie = cookie;

  TermBehavior behavior = TermBehavior::kExitOnTerm;
  if (auto it = term_behaviors_.find(cookie.node_id); it != term_behaviors_.end()) {
    behavior = it->second;
  }
  record.tree = std::make_shared<FakeProcessTree>(*this, spec, std::move(identity),
                                                  std::move(callbacks), behavior);
  std::shared_ptr<process::ProcessTree> tree = record.tree;
  launches_.push_back(std::move(record));
  max_running_seen_ = std::max(max_running_seen_, running_count());
  return tree;
}

FakeProcessTree* FakeProcessRunner::Tree(std::string_view node_id,
                                         std::string_view execution_id) const {
  for (auto it = launches_.rbegin(); it != launches_.rend(); ++it) {
    if (!it->tree || it->spec.cookie.node_id != node_id) continue;
    if (!execution_id.empty() && it->spec.cookie.execution_id != execution_id) continue;
    return it->tree.get();
  }
  return nullptr;
}

bool FakeProcessRunner::Exit(std::string_view node_id, int code) {
  FakeProcessTree* tree = Tree(node_id);
  return tree != nullptr && tree->Exit(code);
}

bool FakeProcessRunner::KillBySignal(std::string_view node_id, int signo) {
  FakeProcessTree* tree = Tree(node_id);
  return tree != nullptr && tree->KillBySignal(signo);
}

bool FakeProcessRunner::Notify(std::string_view node_id, std::string key, std::string value) {
  FakeProcessTree* tree = Tree(node_id);
  return tree != nullptr && tree->Notify(std::move(key), std::move(value));
}

std::vector<std::string> FakeProcessRunner::LaunchOrder(std::string_view execution_id) const {
  std::vector<std::string> order;
  for (const auto& launch : launches_) {
    if (!execution_id.empty() && launch.spec.cookie.execution_id != execution_id) continue;
    order.push_back(launch.spec.cookie.node_id);
  }
  return order;
}

std::vector<std::string> FakeProcessRunner::RunningNodes(std::string_view execution_id) const {
  std::vector<std::string> running;
  for (const auto& launch : launches_) {
    if (!launch.tree || launch.tree->finished()) continue;
    if (!execution_id.empty() && launch.spec.cookie.execution_id != execution_id) continue;
    running.push_back(launch.spec.cookie.node_id);
  }
  return running;
}

}  // namespace warden::lifecycle_test
