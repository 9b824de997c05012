// wardend: the Warden daemon.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/program_options.hpp>
#include <iostream>
#include <string>

#include "daemon/data_dir.h"
#include "journal/journal.h"

namespace po = boost::program_options;

namespace {

constexpr int kExitUsage = 64;
constexpr int kExitUnavailable = 69;

std::string DaemonPayload() {
  return "{\"pid\":" + std::to_string(getpid()) + ",\"version\":\"" WARDEN_VERSION "\"}";
}

}  // namespace

int main(int argc, char** argv) {
  std::string data_dir;
  std::string log_level;
  po::options_description options("wardend options");
  options.add_options()("help,h", "show this help")(
      "data-dir", po::value(&data_dir)->default_value(warden::daemon::DefaultDataDir()),
      "directory for the journal (warden.db), logs and the lock")(
      "log-level", po::value(&log_level)->default_value("info"),
      "trace, debug, info, warn, error or off");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, options), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "wardend: " << e.what() << "\n" << options;
    return kExitUsage;
  }
  if (vm.count("help")) {
    std::cout << options;
    return 0;
  }
  auto level = spdlog::level::from_str(log_level);
  if (level == spdlog::level::off && log_level != "off") {
    std::cerr << "wardend: --log-level: unknown level '" << log_level << "'\n";
    return kExitUsage;
  }
  spdlog::set_default_logger(spdlog::stderr_color_mt("wardend"));
  spdlog::set_level(level);

  // Signals are caught from here on, before anything says "ready": a SIGTERM that arrives
  // during start-up is handled as a shutdown, not by the default action.
  boost::asio::io_context io;
  boost::asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    spdlog::info("received {}, shutting down", signo == SIGTERM ? "SIGTERM" : "SIGINT");
  });

  auto dir = warden::daemon::DataDir::Acquire(data_dir);
  if (!dir.ok()) {
    spdlog::error("{}", dir.status().message());
    return kExitUnavailable;
  }
  auto journal = warden::journal::Journal::Open(dir->JournalPath());
  if (!journal.ok()) {
    spdlog::error("{}", journal.status().message());
    return kExitUnavailable;
  }
  warden::journal::Event started;
  started.kind = warden::journal::kind::kDaemonStarted;
  started.payload = DaemonPayload();
  if (auto r = (*journal)->Append(started, warden::journal::Durability::kDurable); !r.ok()) {
    spdlog::error("cannot record the start: {}", r.status().message());
    return kExitUnavailable;
  }
  spdlog::info("wardend {} ready: data directory {}, journal {}", WARDEN_VERSION, dir->path(),
               dir->JournalPath());

  io.run();

  warden::journal::Event stopped;
  stopped.kind = warden::journal::kind::kDaemonStopped;
  stopped.payload = DaemonPayload();
  if (auto r = (*journal)->Append(stopped, warden::journal::Durability::kDurable); !r.ok()) {
    spdlog::error("cannot record the stop: {}", r.status().message());
    return 1;
  }
  spdlog::info("wardend stopped");
  return 0;
}
