#include "api/metrics.h"

#include <fmt/format.h>
#include <algorithm>
#include <array>

#include "journal/journal.h"
#include "lifecycle/execution_manager.h"

namespace warden::api {

namespace {

void Header(std::string_view name, std::string_view help, std::string_view type, std::string& out) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace

LatencyHistogram::LatencyHistogram(std::vector<double> bounds_seconds)
    : bounds_(std::move(bounds_seconds)), buckets_(bounds_.size() + 1, 0) {}

void LatencyHistogram::Observe(std::chrono::nanoseconds duration) {
  double seconds = std::chrono::duration<double>(duration).count();
  std::lock_guard lock(mu_);
  auto it = std::lower_bound(bounds_.begin(), bounds_.end(), seconds);
  ++buckets_[static_cast<size_t>(it - bounds_.begin())];
  sum_seconds_ += seconds;
  ++count_;
}

void LatencyHistogram::RenderSeries(std::string_view name, std::string_view labels,
                                    std::string& out) const {
  const std::string sep = labels.empty() ? "" : ",";
  std::lock_guard lock(mu_);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += buckets_[i];
    out +=
        fmt::format("{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, sep, bounds_[i], cumulative);
  }
  cumulative += buckets_.back();
  out += fmt::format("{}_bucket{{{}{}le=\"+Inf\"}} {}\n", name, labels, sep, cumulative);
  const std::string braces = labels.empty() ? "" : "{" + std::string(labels) + "}";
  out +=
      fmt::format("{}_sum{} {}\n{}_count{} {}\n", name, braces, sum_seconds_, name, braces, count_);
}

void ObserveJournalCommits(journal::Journal& journal, DaemonMetrics& metrics) {
  journal.SetCommitObserver(
      [&metrics](journal::Durability durability, std::chrono::nanoseconds took) {
        if (durability == journal::Durability::kDurable) {
          metrics.journal_commit_durable.Observe(took);
        } else {
          metrics.journal_commit_crash_safe.Observe(took);
        }
      });
}

std::string RenderMetrics(const lifecycle::ExecutionManager& manager,
                          const DaemonMetrics& metrics) {
  using lifecycle::ExecutionState;
  std::string out;
  out.reserve(4096);

  const std::vector<size_t> by_state = manager.CountByState();
  Header("warden_executions", "Executions this daemon made or restored since it started, by state.",
         "gauge", out);
  for (int i = 0; i < lifecycle::kExecutionStateCount; ++i) {
    out += fmt::format("warden_executions{{state=\"{}\"}} {}\n",
                       lifecycle::ExecutionStateName(static_cast<ExecutionState>(i)),
                       by_state[static_cast<size_t>(i)]);
  }
  Header("warden_active_executions", "Executions idle, running, paused or stopping.", "gauge", out);
  out += fmt::format("warden_active_executions {}\n", manager.active_count());

  lifecycle::ManagerStats stats = manager.stats();
  Header("warden_running_nodes", "Node process trees running now.", "gauge", out);
  out += fmt::format("warden_running_nodes {}\n", stats.running_nodes);

  Header("warden_stops_total", "Stop requests carried out, by reason.", "counter", out);
  for (std::string_view reason :
       {"user_abort", "timeout", "error", "server_shutdown", "crash_recovery"}) {
    auto it = stats.stops_by_reason.find(std::string(reason));
    out += fmt::format("warden_stops_total{{reason=\"{}\"}} {}\n", reason,
                       it == stats.stops_by_reason.end() ? 0 : it->second);
  }
  Header("warden_sigkill_escalations_total",
         "Node process trees that outlived their grace and needed SIGKILL.", "counter", out);
  out += fmt::format("warden_sigkill_escalations_total {}\n", stats.sigkill_escalations);
  Header("warden_malformed_notify_lines_total", "Ignored lines written to WARDEN_NOTIFY_FD.",
         "counter", out);
  out += fmt::format("warden_malformed_notify_lines_total {}\n", stats.malformed_notify_lines);

  Header("warden_journal_healthy", "1 while the journal accepts writes, 0 once it has failed.",
         "gauge", out);
  out += fmt::format("warden_journal_healthy {}\n", manager.journal_health().ok() ? 1 : 0);
  Header("warden_journal_commit_seconds",
         "Latency of journal commits: durable (fsync'd: creates, starts, stop requests, ends) "
         "and crash_safe (every other transition).",
         "histogram", out);
  metrics.journal_commit_durable.RenderSeries("warden_journal_commit_seconds",
                                              "durability=\"durable\"", out);
  metrics.journal_commit_crash_safe.RenderSeries("warden_journal_commit_seconds",
                                                 "durability=\"crash_safe\"", out);

  Header("warden_last_recovery_duration_seconds",
         "Duration of the last crash recovery at start-up (0: none ran).", "gauge", out);
  out += fmt::format("warden_last_recovery_duration_seconds {}\n", metrics.last_recovery_seconds);
  Header("warden_recovery_node_trees",
         "Node process trees the last crash recovery examined, by what it did with them.", "gauge",
         out);
  const DaemonMetrics::Recovery& r = metrics.recovery;
  for (const auto& [action, count] :
       {std::pair{"terminated", r.terminated}, std::pair{"killed", r.killed},
        std::pair{"unkillable", r.unkillable}, std::pair{"gone", r.gone},
        std::pair{"pid_reused", r.pid_reused}, std::pair{"host_rebooted", r.host_rebooted}}) {
    out += fmt::format("warden_recovery_node_trees{{action=\"{}\"}} {}\n", action, count);
  }
  Header("warden_http_requests_total", "HTTP requests answered.", "counter", out);
  out += fmt::format("warden_http_requests_total {}\n", metrics.http_requests);
  return out;
}

}  // namespace warden::api
