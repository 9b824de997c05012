// wardend: the Warden daemon.
//
// Start-up is a sequence, and nothing says "ready" before it has finished: parse flags,
// catch signals, lock the data directory (waiting a bounded time for a crashed daemon's
// last children to let go of it), check the socket path, open the journal, detect
// containment and make the process runner, journal daemon.started, run crash recovery
// (every node tree a dead daemon left is terminated gracefully and its execution closed),
// make the execution manager and restore what the journal holds, publish the socket (with
// its final permissions, in one rename), tell systemd READY=1.
//
// Shutdown (SIGTERM or SIGINT): refuse new work, stop every active execution with reason
// server_shutdown under one grace, close the connections, journal daemon.stopped, remove
// the socket, exit 0. A second signal turns the running stops into SIGKILL at once.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <iostream>
#include <string>
#include <variant>

#include "api/http_server.h"
#include "api/metrics.h"
#include "api/request_handler.h"
#include "api/token_file.h"
#include "daemon/daemon_options.h"
#include "daemon/data_dir.h"
#include "daemon/logging.h"
#include "daemon/priority.h"
#include "daemon/signal_stream.h"
#include "daemon/socket_file.h"
#include "daemon/systemd_notify.h"
#include "journal/journal.h"
#include "journal/records.h"
#include "lifecycle/execution_manager.h"
#include "process/local_process_runner.h"
#include "process/proc_stat.h"
#include "recovery/recovery.h"

namespace {

constexpr int kExitUsage = 64;
constexpr int kExitUnavailable = 69;
// After the executions have stopped, how long open connections get to finish their answer.
constexpr std::chrono::milliseconds kDrainDeadline{2000};
// How far ahead of its nodes wardend schedules itself (nice levels; see priority.h).
constexpr int kNiceLevelsAheadOfNodes = 5;

bool Journal(warden::journal::Journal& journal, const warden::journal::Record& record) {
  warden::journal::Event event;
  warden::journal::EncodeTo(record, event);
  auto r = journal.Append(event, warden::journal::Durability::kDurable);
  if (!r.ok()) spdlog::error("cannot record {}: {}", event.kind, r.status().message());
  return r.ok();
}

warden::journal::DaemonStopped Stopped() {
  return warden::journal::DaemonStopped{getpid(), WARDEN_VERSION};
}

}  // namespace

int main(int argc, char** argv) {
  using namespace warden;
  auto parsed = daemon::ParseDaemonOptions(argc, argv, std::cout, std::cerr);
  if (const int* exit_code = std::get_if<int>(&parsed)) return *exit_code;
  const daemon::DaemonOptions& options = std::get<daemon::DaemonOptions>(parsed);
  if (Status s = daemon::SetUpLogging(options.log_level); !s.ok()) {
    std::cerr << "wardend: " << s.message() << "\n";
    return kExitUsage;
  }
  // Descriptors: several per running node (pipes, pidfds, cgroup files) and one per orphan
  // that recovery pins: take what the hard limit allows.
  if (rlimit files{}; getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &files) != 0) spdlog::warn("cannot raise RLIMIT_NOFILE");
  }
  // Before any thread exists, so that every thread of wardend runs ahead of its nodes.
  const std::optional<int> node_nice = daemon::RunAheadOfNodes(kNiceLevelsAheadOfNodes);
  // Node output must outlive a crash of the daemon: the keeper holds a copy of every pipe.
  // It is forked here, while wardend still has one thread.
  auto keeper = process::OutputKeeper::Start();
  if (!keeper.ok()) {
    spdlog::warn("{}: node output will not survive a crash of wardend", keeper.status().message());
  }

  // Signals are caught from here on, before anything says "ready": a SIGTERM that arrives
  // during start-up is queued and handled as a shutdown once the loop runs, not by the
  // default action.
  // One thread runs the loop (the journal writer only posts to it): the hint lets handlers
  // that the loop posts for itself skip the scheduler's cross-thread wake-ups.
  boost::asio::io_context io(1);
  signal(SIGPIPE, SIG_IGN);  // a client that hangs up is an error code, not a death
  auto signals = daemon::SignalStream::Open(io, {SIGTERM, SIGINT, SIGHUP});
  if (!signals.ok()) {
    spdlog::error("{}", signals.status().message());
    return kExitUnavailable;
  }

  auto dir = daemon::DataDir::Acquire(options.data_dir);
  if (!dir.ok()) {
    spdlog::error("{}", dir.status().message());
    return kExitUnavailable;
  }
  if (Status s = daemon::AddLogFile(dir->path()); !s.ok()) spdlog::warn("{}", s.message());
  auto socket = daemon::SocketFile::Prepare(options.socket_path);
  if (!socket.ok()) {
    spdlog::error("{}", socket.status().message());
    return kExitUnavailable;
  }
  std::map<std::string, std::string> tokens;
  if (options.listen_address) {
    auto loaded = api::LoadTokenFile(options.token_file);
    if (!loaded.ok()) {
      spdlog::error("--token-file: {}", loaded.status().message());
      return kExitUsage;
    }
    tokens = std::move(*loaded);
  }

  auto journal = journal::Journal::Open(dir->JournalPath());
  if (!journal.ok()) {
    spdlog::error("{}", journal.status().message());
    return kExitUnavailable;
  }
  // Declared before the manager, so that it outlives every commit the manager makes.
  api::DaemonMetrics metrics;
  api::ObserveJournalCommits(**journal, metrics);

  process::RunnerOptions runner_options;
  runner_options.containment = options.containment;
  runner_options.keeper = keeper.ok() ? keeper->get() : nullptr;
  runner_options.node_nice = node_nice;
  auto runner = process::LocalProcessRunner::Create(io, runner_options);
  if (!runner.ok()) {
    spdlog::error("cannot contain node processes: {}", runner.status().message());
    return kExitUnavailable;
  }
  const process::Containment& containment = (*runner)->containment_info();
  spdlog::info("containment: {} ({})", process::ContainmentModeName(containment.mode),
               containment.reason);
  auto boot_id = process::ReadBootId();
  // The next start reads only executions created from here on (or still open now).
  auto scan_from = (*journal)->ScanWatermark();
  if (!scan_from.ok()) {
    spdlog::error("{}", scan_from.status().message());
    return kExitUnavailable;
  }
  // Safety beats bookkeeping: a journal that cannot take this record (a full disk, often
  // why the daemon crashed) must not keep recovery from terminating the orphans; the
  // failed journal then refuses new work.
  (void)Journal(**journal, journal::DaemonStarted{
                               getpid(), WARDEN_VERSION, boot_id.ok() ? *boot_id : std::string(),
                               std::string(process::ContainmentModeName(containment.mode)),
                               containment.cgroup_root.string(), *scan_from});

  // Crash recovery, before anything is served: the journal says which node trees a dead
  // daemon left running; each is terminated gracefully and its execution closed.
  recovery::RecoveryOptions recovery_options;
  recovery_options.default_grace_ms = options.grace_ms;
  recovery_options.on_progress = [](std::string_view line) {
    spdlog::info("{}", line);
    (void)daemon::NotifySystemd("STATUS=" + std::string(line) +
                                "\nEXTEND_TIMEOUT_USEC=" + std::to_string(30'000'000));
  };
  recovery_options.on_terminating = [](std::chrono::milliseconds longest) {
    // Termination may take the largest grace plus the SIGKILL wait: ask for that, and more.
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
        std::min<std::chrono::milliseconds>(longest, std::chrono::hours(24 * 365)) +
        std::chrono::seconds(30));
    (void)daemon::NotifySystemd("EXTEND_TIMEOUT_USEC=" + std::to_string(us.count()));
  };
  auto recovered = recovery::Recover(**journal, recovery_options);
  if (!recovered.ok()) {
    spdlog::error("crash recovery could not read the journal: {}", recovered.status().message());
    return kExitUnavailable;
  }
  metrics.last_recovery_seconds = static_cast<double>(recovered->duration_ms) / 1000.0;
  metrics.recovery = {recovered->terminated, recovered->killed,     recovered->unkillable,
                      recovered->gone,       recovered->pid_reused, recovered->host_rebooted};
  spdlog::info(
      "recovery: {} execution(s) not ended, {} closed, {} resumed; {} node tree(s) examined: {} "
      "terminated, "
      "{} killed, {} unkillable, {} gone, {} pid reused, {} host rebooted; {} record(s) not "
      "journaled; {} ms",
      recovered->executions, recovered->closed, recovered->resumed, recovered->attempts,
      recovered->terminated, recovered->killed, recovered->unkillable, recovered->gone,
      recovered->pid_reused, recovered->host_rebooted, recovered->not_journaled,
      recovered->duration_ms);

  lifecycle::ManagerOptions manager_options;
  manager_options.default_grace_ms = options.grace_ms;
  manager_options.max_running = options.max_running;
  manager_options.log_dir = dir->path() + "/output";
  std::error_code ec;
  std::filesystem::create_directories(manager_options.log_dir, ec);
  if (ec) {
    spdlog::error("cannot create {}: {}", manager_options.log_dir, ec.message());
    Journal(**journal, Stopped());
    return kExitUnavailable;
  }
  lifecycle::ExecutionManager manager(io, **journal, **runner, manager_options);
  if (Status s = manager.Restore(); !s.ok()) {
    spdlog::error("cannot restore executions from the journal: {}", s.message());
    Journal(**journal, Stopped());
    return kExitUnavailable;
  }

  api::HandlerOptions handler_options;
  handler_options.max_body_bytes = manager_options.spec_limits.max_spec_bytes;
  api::RequestHandler handler(io, manager, metrics, handler_options);
  api::ServerOptions server_options;
  server_options.max_body_bytes = handler_options.max_body_bytes;
  api::HttpServer server(io, handler, server_options);

  // Publishing the socket is the last start-up step: from here on clients may connect.
  auto listening = socket->Publish(options.socket_group);
  Status serving = listening.ok() ? server.ServeUnix(*listening) : listening.status();
  if (serving.ok() && options.listen_address) {
    serving = server.ServeTcp(*options.listen_address, options.listen_port, std::move(tokens),
                              options.allow_remote);
  }
  if (!serving.ok()) {
    spdlog::error("{}", serving.message());
    Journal(**journal, Stopped());
    return serving.code() == StatusCode::kInvalidArgument ? kExitUsage : kExitUnavailable;
  }
  if (Status s = daemon::NotifySystemd("READY=1\nMAINPID=" + std::to_string(getpid())); !s.ok()) {
    spdlog::warn("{}", s.message());
  }
  spdlog::info("wardend {} ready: socket {}, data directory {}", WARDEN_VERSION, socket->path(),
               dir->path());

  int stop_signals_seen = 0;
  (*signals)->Listen([&](int signo) {
    if (signo == SIGHUP) {
      if (Status s = daemon::ReopenLogFile(); !s.ok()) spdlog::error("{}", s.message());
      spdlog::info("received SIGHUP: log file reopened");
      return;
    }
    const char* name = signo == SIGTERM ? "SIGTERM" : "SIGINT";
    if (++stop_signals_seen == 1) {
      spdlog::info("received {}, stopping {} active execution(s) (server_shutdown)", name,
                   manager.active_count());
      (void)daemon::NotifySystemd("STOPPING=1");
      handler.BeginShutdown();
      manager.StopAll(false, [&] {
        spdlog::info("every execution has stopped; closing connections");
        server.Shutdown(kDrainDeadline, [&] { io.stop(); });
      });
    } else {
      spdlog::warn("received {} again: killing every node process tree now", name);
      manager.StopAll(true, [] {});
    }
  });

  io.run();

  bool recorded = Journal(**journal, Stopped());
  spdlog::info("wardend stopped");
  return recorded ? 0 : 1;
}
