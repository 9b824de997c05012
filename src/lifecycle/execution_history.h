// ExecutionHistory: one execution as its journal records make it.
//
// The journal is the source of truth: applying an execution's records, oldest first, gives
// what the API shows for it (its ExecutionView) and what crash recovery needs to know about
// each node attempt (the write-ahead intent, the recorded identity, the SIGTERM already
// sent). There is one apply path: a live Execution applies every record it journals to its
// own ExecutionHistory as it queues it, and answers with that history's view, so an
// execution read back from the journal after a restart is the one the live daemon showed.
//
// Thread-safety: a plain value; Apply is not safe to call concurrently with anything else.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "dag/spec.h"
#include "journal/event.h"
#include "journal/records.h"
#include "lifecycle/execution_view.h"

namespace warden::lifecycle {

// The latest attempt of one node, as recorded.
struct AttemptHistory {
  int attempt = 0;  // 0: the node never got an attempt
  std::optional<journal::NodeIntent> intent;
  std::optional<journal::NodeStarted> started;
  std::optional<int64_t> started_at;  // the node.started row's time
  std::optional<int64_t> sigterm_at;  // the first node.signalled SIGTERM of this attempt
  double reported_cost_usd = 0;       // the last cost.reported of this attempt
  bool timed_out = false;             // the node's own timeoutMs ended it
  bool ended = false;                 // exited, failed to launch, lost or unkillable
};

class ExecutionHistory {
 public:
  // Folds `events` (one execution's, in seq order). NotFound when there is no
  // execution.created among them; Corruption when a record cannot be read or its spec is not
  // a valid DAG. Records of kinds this Warden does not know are skipped. With `unreadable`,
  // a record after execution.created that cannot be read or does not fit is skipped too,
  // and described there (crash recovery must still find every process the rest names).
  static Result<ExecutionHistory> Fold(const std::vector<journal::Event>& events,
                                       std::vector<std::string>* unreadable = nullptr);

  // Applies one more record: `event` gives its execution, node, attempt, time and seq (its
  // payload is not read), `record` what happened. The first record must be
  // execution.created. Corruption when the record does not fit (an unknown node, a spec
  // that is not a valid DAG).
  Status Apply(const journal::Event& event, const journal::Record& record);

  // The execution as recorded; a running attempt's cost is its last reported cost.
  const ExecutionView& view() const { return view_; }
  const dag::ExecutionSpec& spec() const { return spec_; }
  // The spec as journaled, a JSON object as text.
  const std::string& spec_json() const { return spec_json_; }
  // Per node, in spec order (the same order as view().nodes).
  const std::vector<AttemptHistory>& attempts() const { return attempts_; }
  // The first stop request of the stop in progress or finished; unset if none.
  const std::optional<journal::ExecutionStopRequested>& stop() const { return stop_; }
  // True when crash recovery resumed the execution (execution.recovered) and nothing has
  // happened to it at the execution level since: it is to be taken up again as it stands.
  bool resumed() const { return resumed_; }
  // The shortest grace any stop request named (joined ones too), or unset.
  const std::optional<int64_t>& stop_grace_ms() const { return stop_grace_ms_; }
  // How long the execution was paused between `from` and `to` (ms since the epoch); a pause
  // still in force counts until `to`.
  int64_t PausedMsBetween(int64_t from, int64_t to) const;
  // The seq of the last record folded (view().as_of_seq).
  int64_t last_seq() const { return last_seq_; }
  // Records that the journal has committed this execution's records up to `seq` (a live
  // execution folds its records before they have a seq); a lower seq changes nothing.
  void CommittedUpTo(int64_t seq) {
    if (seq <= last_seq_) return;
    last_seq_ = seq;
    view_.as_of_seq = seq;
  }

 private:
  Status ApplyNode(const journal::Event& event, const journal::Record& record);
  Status ApplyCreated(const journal::Event& event, const journal::ExecutionCreated& record);
  // Until the execution ends, its cost is what its nodes cost.
  void SumCost();

  ExecutionView view_;
  std::unordered_map<std::string, size_t> node_index_;
  dag::ExecutionSpec spec_;
  std::string spec_json_;
  std::vector<AttemptHistory> attempts_;
  std::optional<journal::ExecutionStopRequested> stop_;
  int64_t last_seq_ = 0;
  bool resumed_ = false;
  std::optional<int64_t> stop_grace_ms_;
  // Pauses: (execution.paused, execution.resumed) times; the end unset while paused.
  std::vector<std::pair<int64_t, std::optional<int64_t>>> pauses_;
};

}  // namespace warden::lifecycle
