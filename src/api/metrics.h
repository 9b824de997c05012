// Metrics: what GET /metrics reports, in the Prometheus text exposition format (0.0.4).
//
// Most figures are read from the ExecutionManager at scrape time; the few the API layer
// measures itself live in DaemonMetrics. Threading: the io thread only, like the manager.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace warden::lifecycle {
class ExecutionManager;
}
namespace warden::journal {
class Journal;
}

namespace warden::api {

// A cumulative histogram with fixed upper bounds, in seconds. Thread-safe: the journal's
// commits are observed on the journal writer's thread.
class LatencyHistogram {
 public:
  // `bounds_seconds` ascending; +Inf is implicit.
  explicit LatencyHistogram(std::vector<double> bounds_seconds);
  void Observe(std::chrono::nanoseconds duration);
  uint64_t count() const {
    std::lock_guard lock(mu_);
    return count_;
  }
  // Appends the _bucket/_sum/_count lines of metric `name`, each with `labels`
  // (`key="value"`, or empty) first: one series of a histogram whose header is written once.
  void RenderSeries(std::string_view name, std::string_view labels, std::string& out) const;

 private:
  mutable std::mutex mu_;
  std::vector<double> bounds_;
  std::vector<uint64_t> buckets_;  // per bound, not cumulative; the last one is +Inf
  double sum_seconds_ = 0;
  uint64_t count_ = 0;
};

struct DaemonMetrics {
  // Journal commits, fed by ObserveJournalCommits: the durable (fsync'd) ones (creates,
  // starts, stop requests, ends) and the crash-safe ones (every other transition).
  LatencyHistogram journal_commit_durable{
      {0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}};
  LatencyHistogram journal_commit_crash_safe{
      {0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}};
  // How long the last crash recovery took; 0 when none ran.
  double last_recovery_seconds = 0;
  // What it did, node tree by node tree.
  struct Recovery {
    int terminated = 0, killed = 0, unkillable = 0, gone = 0, pid_reused = 0, host_rebooted = 0;
  };
  Recovery recovery;
  uint64_t http_requests = 0;  // requests answered (any status)
};

// Feeds the journal_commit_* histograms with the commits of `journal` from now on. `metrics`
// must outlive every later append (journal.SetCommitObserver(nullptr) ends it).
void ObserveJournalCommits(journal::Journal& journal, DaemonMetrics& metrics);

// The whole /metrics body: executions by state, running nodes, stops by reason, SIGKILL
// escalations, active executions, journal health, the commit latency histogram, the last
// recovery's duration and the request count.
std::string RenderMetrics(const lifecycle::ExecutionManager& manager, const DaemonMetrics& metrics);

}  // namespace warden::api
