#include "journal/records.h"

#include <boost/json.hpp>
#include <cmath>

#include "base/json_text.h"

namespace warden::journal {

namespace json = boost::json;

namespace {

// Reads the fields of one payload; the first missing or mistyped field is remembered and
// every later read returns a default, so a decoder reads straight through and checks once.
class Reader {
 public:
  Reader(std::string_view kind, const json::object& o) : kind_(kind), o_(o) {}

  std::string String(std::string_view key) {
    const json::value* v = Need(key);
    if (v == nullptr) return {};
    if (!v->is_string()) return Bad(key, "a string"), std::string();
    return std::string(v->as_string());
  }
  std::optional<std::string> OptString(std::string_view key) {
    const json::value* v = o_.if_contains(key);
    if (v == nullptr || v->is_null()) return std::nullopt;
    if (!v->is_string()) return Bad(key, "a string or null"), std::nullopt;
    return std::string(v->as_string());
  }
  int64_t Int(std::string_view key) {
    const json::value* v = Need(key);
    return v == nullptr ? 0 : ToInt(key, *v);
  }
  std::optional<int64_t> OptInt(std::string_view key) {
    const json::value* v = o_.if_contains(key);
    if (v == nullptr || v->is_null()) return std::nullopt;
    return ToInt(key, *v);
  }
  double Double(std::string_view key) {
    const json::value* v = Need(key);
    if (v == nullptr) return 0;
    if (!v->is_number()) return Bad(key, "a number"), 0.0;
    return v->to_number<double>();
  }
  bool Bool(std::string_view key, std::optional<bool> fallback = std::nullopt) {
    const json::value* v = o_.if_contains(key);
    if (v == nullptr && fallback) return *fallback;
    if (v == nullptr) return Missing(key), false;
    if (!v->is_bool()) return Bad(key, "a boolean"), false;
    return v->as_bool();
  }
  std::vector<int64_t> Ints(std::string_view key, bool required = true) {
    std::vector<int64_t> out;
    const json::value* v = required ? Need(key) : o_.if_contains(key);
    if (v == nullptr) return out;
    if (!v->is_array()) return Bad(key, "an array"), out;
    for (const json::value& e : v->as_array()) out.push_back(ToInt(key, e));
    return out;
  }
  std::vector<std::string> Strings(std::string_view key) {
    std::vector<std::string> out;
    const json::value* v = Need(key);
    if (v == nullptr) return out;
    if (!v->is_array()) return Bad(key, "an array"), out;
    for (const json::value& e : v->as_array()) {
      if (!e.is_string()) return Bad(key, "an array of strings"), out;
      out.emplace_back(e.as_string());
    }
    return out;
  }
  const json::object* Object(std::string_view key) {
    const json::value* v = Need(key);
    if (v == nullptr) return nullptr;
    if (!v->is_object()) return Bad(key, "an object"), nullptr;
    return &v->as_object();
  }
  const json::object& object() const { return o_; }

  template <typename T>
  Result<Record> Done(T record) {
    if (!error_.ok()) return error_;
    return Record(std::move(record));
  }

 private:
  const json::value* Need(std::string_view key) {
    const json::value* v = o_.if_contains(key);
    if (v == nullptr) Missing(key);
    return v;
  }
  int64_t ToInt(std::string_view key, const json::value& v) {
    if (v.is_int64()) return v.as_int64();
    if (v.is_uint64() && v.as_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
      return static_cast<int64_t>(v.as_uint64());
    }
    // A double with an integral value in int64's range (-2^63 <= d < 2^63); converting one
    // outside it would be undefined.
    if (v.is_double() && v.as_double() >= -0x1p63 && v.as_double() < 0x1p63 &&
        v.as_double() == std::trunc(v.as_double())) {
      return static_cast<int64_t>(v.as_double());
    }
    Bad(key, "an integer");
    return 0;
  }
  void Missing(std::string_view key) {
    if (error_.ok()) {
      error_ = Status::Corruption(std::string(kind_) + " payload has no field " + std::string(key));
    }
  }
  void Bad(std::string_view key, std::string_view what) {
    if (error_.ok()) {
      error_ = Status::Corruption(std::string(kind_) + " payload field " + std::string(key) +
                                  " is not " + std::string(what));
    }
  }

  std::string_view kind_;
  const json::object& o_;
  Status error_;
};

json::value OptionalString(const std::optional<std::string>& v) {
  return v ? json::value(*v) : json::value(nullptr);
}
json::value EmptyAsNull(const std::string& v) {
  return v.empty() ? json::value(nullptr) : json::value(v);
}
template <typename T>
json::value OptionalNumber(const std::optional<T>& v) {
  return v ? json::value(*v) : json::value(nullptr);
}

// One Encode and one Decode per record type, side by side.

void Encode(const ExecutionCreated& r, json::object& o) {
  o["name"] = OptionalString(r.name);
  if (r.request_id) o["requestId"] = *r.request_id;
  o["requestedBy"] = r.requested_by;
  // Parsed and written again, so that the journal spells its numbers as every payload does.
  boost::system::error_code ec;
  json::value spec = ParseJson(r.spec_json, ec);
  o["spec"] = ec ? json::value(json::object()) : std::move(spec);
}
Result<Record> Decode(Reader in, ExecutionCreated*) {
  ExecutionCreated r;
  r.name = in.OptString("name");
  r.request_id = in.OptString("requestId");
  r.requested_by = in.String("requestedBy");
  if (in.Object("spec") != nullptr) r.spec_json = SerializeJson(in.object().at("spec"));
  return in.Done(std::move(r));
}

void Encode(const ExecutionStarted& r, json::object& o) { o["requestedBy"] = r.requested_by; }
Result<Record> Decode(Reader in, ExecutionStarted*) {
  return in.Done(ExecutionStarted{in.String("requestedBy")});
}

void Encode(const ExecutionPaused& r, json::object& o) { o["requestedBy"] = r.requested_by; }
Result<Record> Decode(Reader in, ExecutionPaused*) {
  return in.Done(ExecutionPaused{in.String("requestedBy")});
}

void Encode(const ExecutionResumed& r, json::object& o) {
  o["requestedBy"] = r.requested_by;
  o["pausedMs"] = r.paused_ms;
}
Result<Record> Decode(Reader in, ExecutionResumed*) {
  ExecutionResumed r;
  r.requested_by = in.String("requestedBy");
  r.paused_ms = in.Int("pausedMs");
  return in.Done(std::move(r));
}

void Encode(const ExecutionStopRequested& r, json::object& o) {
  o["requestedBy"] = r.requested_by;
  if (!r.requested_by_comm.empty()) o["requestedByComm"] = r.requested_by_comm;
  o["reason"] = r.reason;
  if (!r.note.empty()) o["note"] = r.note;
  o["graceMs"] = OptionalNumber(r.grace_ms);
  if (r.joined) o["joined"] = true;
}
Result<Record> Decode(Reader in, ExecutionStopRequested*) {
  ExecutionStopRequested r;
  r.requested_by = in.String("requestedBy");
  r.requested_by_comm = in.OptString("requestedByComm").value_or("");
  r.reason = in.String("reason");
  r.note = in.OptString("note").value_or("");
  r.grace_ms = in.OptInt("graceMs");
  r.joined = in.Bool("joined", false);
  return in.Done(std::move(r));
}

void Encode(const ExecutionStopCompleted& r, json::object& o) {
  o["status"] = r.status;
  o["reason"] = r.reason;
  o["finalCostUsd"] = r.final_cost_usd;
  o["nodesCompleted"] = r.nodes_completed;
  o["nodesFailed"] = r.nodes_failed;
  o["nodesTotal"] = r.nodes_total;
  o["durationMs"] = r.duration_ms;
  o["stoppedAt"] = r.stopped_at;
  o["journaled"] = r.journaled;
}
Result<Record> Decode(Reader in, ExecutionStopCompleted*) {
  ExecutionStopCompleted r;
  r.status = in.String("status");
  r.reason = in.String("reason");
  r.final_cost_usd = in.Double("finalCostUsd");
  r.nodes_completed = in.Int("nodesCompleted");
  r.nodes_failed = in.Int("nodesFailed");
  r.nodes_total = in.Int("nodesTotal");
  r.duration_ms = in.Int("durationMs");
  r.stopped_at = in.Int("stoppedAt");
  r.journaled = in.Bool("journaled", true);
  return in.Done(std::move(r));
}

void Encode(const ExecutionStopped& r, json::object& o) { o["costUsd"] = r.cost_usd; }
Result<Record> Decode(Reader in, ExecutionStopped*) {
  return in.Done(ExecutionStopped{in.Double("costUsd")});
}

void Encode(const ExecutionCompleted& r, json::object& o) { o["costUsd"] = r.cost_usd; }
Result<Record> Decode(Reader in, ExecutionCompleted*) {
  return in.Done(ExecutionCompleted{in.Double("costUsd")});
}

void Encode(const ExecutionFailed& r, json::object& o) {
  o["costUsd"] = r.cost_usd;
  if (!r.reason.empty()) o["reason"] = r.reason;
}
Result<Record> Decode(Reader in, ExecutionFailed*) {
  ExecutionFailed r;
  r.cost_usd = in.Double("costUsd");
  r.reason = in.OptString("reason").value_or("");
  return in.Done(std::move(r));
}

void Encode(const ExecutionRecovered& r, json::object& o) {
  o["requestedBy"] = r.requested_by;
  o["rerun"] = json::value_from(r.rerun);
}
Result<Record> Decode(Reader in, ExecutionRecovered*) {
  ExecutionRecovered r;
  r.requested_by = in.String("requestedBy");
  r.rerun = in.Strings("rerun");
  return in.Done(std::move(r));
}

void Encode(const NodeIntent& r, json::object& o) {
  o["argv"] = json::value_from(r.argv);
  o["cwd"] = r.cwd;
  o["cookie"] = {{"executionId", r.cookie_execution_id},
                 {"nodeId", r.cookie_node_id},
                 {"attempt", r.cookie_attempt}};
  o["cgroup"] = EmptyAsNull(r.cgroup);
  o["containment"] = r.containment;
}
Result<Record> Decode(Reader in, NodeIntent*) {
  NodeIntent r;
  r.argv = in.Strings("argv");
  r.cwd = in.String("cwd");
  if (const json::object* cookie = in.Object("cookie")) {
    Reader c("node.intent cookie", *cookie);
    r.cookie_execution_id = c.String("executionId");
    r.cookie_node_id = c.String("nodeId");
    r.cookie_attempt = c.Int("attempt");
    if (auto bad = c.Done(NodeIntent{}); !bad.ok()) return bad.status();
  }
  r.cgroup = in.OptString("cgroup").value_or("");
  // Intents written before containment was recorded name a cgroup exactly when it had one.
  r.containment = in.OptString("containment").value_or(r.cgroup.empty() ? "pgroup" : "cgroup");
  return in.Done(std::move(r));
}

void Encode(const NodeStarted& r, json::object& o) {
  o["pid"] = r.pid;
  o["startTime"] = r.start_time;
  o["bootId"] = r.boot_id;
  o["pgid"] = r.pgid;
  o["sid"] = r.sid;
  o["cgroup"] = EmptyAsNull(r.cgroup);
  o["containment"] = r.containment;
}
Result<Record> Decode(Reader in, NodeStarted*) {
  NodeStarted r;
  r.pid = in.Int("pid");
  r.start_time = static_cast<uint64_t>(in.Int("startTime"));
  r.boot_id = in.String("bootId");
  r.pgid = in.Int("pgid");
  r.sid = in.Int("sid");
  r.cgroup = in.OptString("cgroup").value_or("");
  r.containment = in.OptString("containment").value_or(r.cgroup.empty() ? "pgroup" : "cgroup");
  return in.Done(std::move(r));
}

void Encode(const NodeLaunchFailed& r, json::object& o) {
  o["error"] = r.error;
  o["exitCode"] = r.exit_code;
}
Result<Record> Decode(Reader in, NodeLaunchFailed*) {
  NodeLaunchFailed r;
  r.error = in.String("error");
  r.exit_code = in.Int("exitCode");
  return in.Done(std::move(r));
}

void Encode(const NodeSignalled& r, json::object& o) {
  o["signal"] = r.signal;
  o["why"] = r.why;
  if (r.grace_ms) o["graceMs"] = *r.grace_ms;
}
Result<Record> Decode(Reader in, NodeSignalled*) {
  NodeSignalled r;
  r.signal = in.String("signal");
  r.why = in.String("why");
  r.grace_ms = in.OptInt("graceMs");
  return in.Done(std::move(r));
}

void Encode(const NodeExited& r, json::object& o) {
  o["exitCode"] = OptionalNumber(r.exit_code);
  o["signal"] = OptionalString(r.signal);
  o["graceful"] = r.graceful;
  o["killed"] = r.killed;
  o["costUsd"] = r.cost_usd;
  o["durationMs"] = r.duration_ms;
  o["pausedMs"] = r.paused_ms;
  if (r.outcome) o["outcome"] = *r.outcome;
}
Result<Record> Decode(Reader in, NodeExited*) {
  NodeExited r;
  r.exit_code = in.OptInt("exitCode");
  r.signal = in.OptString("signal");
  r.graceful = in.Bool("graceful", true);
  r.killed = in.Bool("killed", false);
  r.cost_usd = in.Double("costUsd");
  r.duration_ms = in.OptInt("durationMs").value_or(0);
  r.paused_ms = in.OptInt("pausedMs").value_or(0);
  r.outcome = in.OptString("outcome");
  return in.Done(std::move(r));
}

void Encode(const NodeTimedOut& r, json::object& o) { o["timeoutMs"] = r.timeout_ms; }
Result<Record> Decode(Reader in, NodeTimedOut*) {
  return in.Done(NodeTimedOut{in.Int("timeoutMs")});
}

void Encode(const NodeRetryScheduled& r, json::object& o) { o["nextAttempt"] = r.next_attempt; }
Result<Record> Decode(Reader in, NodeRetryScheduled*) {
  return in.Done(NodeRetryScheduled{in.Int("nextAttempt")});
}

void Encode(const NodeSkipped& r, json::object& o) { o["because"] = r.because; }
Result<Record> Decode(Reader in, NodeSkipped*) {
  return in.Done(NodeSkipped{in.String("because")});
}

void Encode(const NodeStopped& r, json::object& o) { o["reason"] = r.reason; }
Result<Record> Decode(Reader in, NodeStopped*) { return in.Done(NodeStopped{in.String("reason")}); }

void Encode(const NodeLost& r, json::object& o) { o["why"] = r.why; }
Result<Record> Decode(Reader in, NodeLost*) { return in.Done(NodeLost{in.String("why")}); }

void Encode(const NodeUnkillable& r, json::object& o) { o["pids"] = json::value_from(r.pids); }
Result<Record> Decode(Reader in, NodeUnkillable*) {
  return in.Done(NodeUnkillable{in.Ints("pids")});
}

void Encode(const CostReported& r, json::object& o) { o["costUsd"] = r.cost_usd; }
Result<Record> Decode(Reader in, CostReported*) {
  return in.Done(CostReported{in.Double("costUsd")});
}

void Encode(const OrphanFound& r, json::object& o) {
  o["pid"] = r.pid;
  o["startTime"] = OptionalNumber(r.start_time);
  o["observedStartTime"] = OptionalNumber(r.observed_start_time);
  o["verdict"] = r.verdict;
  o["detection"] = r.detection;
  o["graceMs"] = OptionalNumber(r.grace_ms);
  o["members"] = json::value_from(r.members);
}
Result<Record> Decode(Reader in, OrphanFound*) {
  OrphanFound r;
  r.pid = in.Int("pid");
  if (auto v = in.OptInt("startTime")) r.start_time = static_cast<uint64_t>(*v);
  if (auto v = in.OptInt("observedStartTime")) r.observed_start_time = static_cast<uint64_t>(*v);
  r.verdict = in.String("verdict");
  r.detection = in.OptString("detection").value_or("pid");
  r.grace_ms = in.OptInt("graceMs");
  r.members = in.Ints("members", /*required=*/false);
  return in.Done(std::move(r));
}

void Encode(const OrphanTerminated& r, json::object& o) { o["pid"] = r.pid; }
Result<Record> Decode(Reader in, OrphanTerminated*) {
  return in.Done(OrphanTerminated{in.Int("pid")});
}

void Encode(const OrphanKilled& r, json::object& o) { o["pid"] = r.pid; }
Result<Record> Decode(Reader in, OrphanKilled*) { return in.Done(OrphanKilled{in.Int("pid")}); }

void Encode(const OrphanUnkillable& r, json::object& o) {
  o["pid"] = r.pid;
  o["pids"] = json::value_from(r.pids);
}
Result<Record> Decode(Reader in, OrphanUnkillable*) {
  OrphanUnkillable r;
  r.pid = in.Int("pid");
  r.pids = in.Ints("pids");
  return in.Done(std::move(r));
}

void Encode(const DaemonStarted& r, json::object& o) {
  o["pid"] = r.pid;
  o["version"] = r.version;
  o["bootId"] = r.boot_id;
  o["containment"] = r.containment;
  o["cgroupRoot"] = EmptyAsNull(r.cgroup_root);
  o["scanFrom"] = r.scan_from;
}
Result<Record> Decode(Reader in, DaemonStarted*) {
  DaemonStarted r;
  r.pid = in.Int("pid");
  r.version = in.String("version");
  r.boot_id = in.OptString("bootId").value_or("");
  r.containment = in.OptString("containment").value_or("");
  r.cgroup_root = in.OptString("cgroupRoot").value_or("");
  r.scan_from = in.OptInt("scanFrom").value_or(0);
  return in.Done(std::move(r));
}

void Encode(const DaemonStopped& r, json::object& o) {
  o["pid"] = r.pid;
  o["version"] = r.version;
}
Result<Record> Decode(Reader in, DaemonStopped*) {
  DaemonStopped r;
  r.pid = in.Int("pid");
  r.version = in.String("version");
  return in.Done(std::move(r));
}

void Encode(const RecoveryStarted& r, json::object& o) {
  o["executions"] = json::value_from(r.executions);
}
Result<Record> Decode(Reader in, RecoveryStarted*) {
  return in.Done(RecoveryStarted{in.Strings("executions")});
}

void Encode(const RecoveryFinished& r, json::object& o) {
  o["executions"] = r.executions;
  o["orphans"] = r.orphans;
  o["durationMs"] = r.duration_ms;
}
Result<Record> Decode(Reader in, RecoveryFinished*) {
  RecoveryFinished r;
  r.executions = in.Int("executions");
  r.orphans = in.Int("orphans");
  r.duration_ms = in.Int("durationMs");
  return in.Done(std::move(r));
}

// The kind of each alternative of Record, in the variant's order.
constexpr std::string_view kKinds[] = {
    kind::kExecutionCreated,
    kind::kExecutionStarted,
    kind::kExecutionPaused,
    kind::kExecutionResumed,
    kind::kExecutionStopRequested,
    kind::kExecutionStopCompleted,
    kind::kExecutionStopped,
    kind::kExecutionCompleted,
    kind::kExecutionFailed,
    kind::kExecutionRecovered,
    kind::kNodeIntent,
    kind::kNodeStarted,
    kind::kNodeLaunchFailed,
    kind::kNodeSignalled,
    kind::kNodeExited,
    kind::kNodeTimedOut,
    kind::kNodeRetryScheduled,
    kind::kNodeSkipped,
    kind::kNodeStopped,
    kind::kNodeLost,
    kind::kNodeUnkillable,
    kind::kCostReported,
    kind::kOrphanFound,
    kind::kOrphanTerminated,
    kind::kOrphanKilled,
    kind::kOrphanUnkillable,
    kind::kDaemonStarted,
    kind::kDaemonStopped,
    kind::kRecoveryStarted,
    kind::kRecoveryFinished,
};
static_assert(std::size(kKinds) == std::variant_size_v<Record>);

template <size_t I = 0>
Result<Record> DecodeAlternative(size_t index, std::string_view kind, const json::object& o) {
  if constexpr (I == std::variant_size_v<Record>) {
    return Status::NotFound("unknown journal kind " + std::string(kind));
  } else {
    if (index == I) {
      return Decode(Reader(kind, o), static_cast<std::variant_alternative_t<I, Record>*>(nullptr));
    }
    return DecodeAlternative<I + 1>(index, kind, o);
  }
}

}  // namespace

std::string_view KindOf(const Record& record) { return kKinds[record.index()]; }

void EncodeTo(const Record& record, Event& event) {
  json::object o;
  std::visit([&o](const auto& r) { Encode(r, o); }, record);
  event.kind = std::string(KindOf(record));
  event.payload = SerializeJson(std::move(o));
}

Result<Record> DecodeFrom(const Event& event) {
  size_t index = std::size(kKinds);
  for (size_t i = 0; i < std::size(kKinds); ++i) {
    if (kKinds[i] == event.kind) index = i;
  }
  if (index == std::size(kKinds)) {
    return Status::NotFound("unknown journal kind " + event.kind);
  }
  boost::system::error_code ec;
  json::value payload = ParseJson(event.payload, ec);
  if (ec || !payload.is_object()) {
    return Status::Corruption(event.kind + " payload (seq " + std::to_string(event.seq) +
                              ") is not a JSON object");
  }
  return DecodeAlternative(index, event.kind, payload.as_object());
}

}  // namespace warden::journal
