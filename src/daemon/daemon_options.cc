#include "daemon/daemon_options.h"

#include <boost/program_options.hpp>
#include <ostream>

#include "daemon/data_dir.h"
#include "daemon/socket_file.h"

namespace warden::daemon {

namespace po = boost::program_options;

namespace {

constexpr int kExitUsage = 64;

// "127.0.0.1:8080" or "[::1]:8080" -> address and port.
bool SplitListen(const std::string& text, std::string& address, uint16_t& port) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 == text.size()) return false;
  address = text.substr(0, colon);
  if (address.size() >= 2 && address.front() == '[' && address.back() == ']') {
    address = address.substr(1, address.size() - 2);
  }
  std::string digits = text.substr(colon + 1);
  if (address.empty() || digits.find_first_not_of("0123456789") != std::string::npos ||
      digits.size() > 5) {
    return false;
  }
  unsigned long value = std::stoul(digits);
  if (value == 0 || value > 65535) return false;
  port = static_cast<uint16_t>(value);
  return true;
}

}  // namespace

std::variant<DaemonOptions, int> ParseDaemonOptions(int argc, const char* const* argv,
                                                    std::ostream& out, std::ostream& err) {
  DaemonOptions options;
  std::string socket_group, listen, containment = "auto", cgroup_root;
  int64_t max_running = 0;
  po::options_description description("usage: wardend [options]\noptions");
  description.add_options()("help,h", "show this help")("version", "show the version")(
      "data-dir", po::value(&options.data_dir)->default_value(DefaultDataDir()),
      "directory for the journal (warden.db), node output, logs and the lock")(
      "socket", po::value(&options.socket_path)->default_value(DefaultSocketPath()),
      "the Unix socket of the API (mode 0600)")("socket-group", po::value(&socket_group),
                                                "make the socket 0660 and owned by this group")(
      "listen", po::value(&listen), "also serve HTTP on ADDR:PORT (needs --token-file)")(
      "token-file", po::value(&options.token_file), "NAME:TOKEN lines for --listen")(
      "allow-remote", po::bool_switch(&options.allow_remote),
      "allow a non-loopback --listen address")(
      "grace-ms", po::value(&options.grace_ms)->default_value(2000),
      "grace between SIGTERM and SIGKILL when nothing else sets one")(
      "max-running", po::value(&max_running)->default_value(0),
      "nodes running at once across all executions (0: no cap)")(
      "containment", po::value(&containment)->default_value("auto"), "auto, cgroup or pgroup")(
      "cgroup-root", po::value(&cgroup_root),
      "cgroup v2 directory for node groups (default: below wardend's own group)")(
      "log-level", po::value(&options.log_level)->default_value("info"),
      "trace, debug, info, warn, error, critical or off");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(description).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    err << "wardend: " << e.what() << "\n" << description;
    return kExitUsage;
  }
  if (vm.count("help")) {
    out << description;
    return 0;
  }
  if (vm.count("version")) {
    out << "wardend " WARDEN_VERSION "\n";
    return 0;
  }
  auto usage = [&](const std::string& message) {
    err << "wardend: " << message << "\n";
    return kExitUsage;
  };
  if (vm.count("socket-group")) options.socket_group = socket_group;
  if (vm.count("listen")) {
    std::string address;
    if (!SplitListen(listen, address, options.listen_port)) {
      return usage("--listen: expected ADDR:PORT, not '" + listen + "'");
    }
    options.listen_address = address;
    if (options.token_file.empty()) return usage("--listen needs --token-file");
  } else if (!options.token_file.empty() || options.allow_remote) {
    return usage("--token-file and --allow-remote only make sense with --listen");
  }
  if (options.grace_ms < 0) return usage("--grace-ms: must not be negative");
  if (max_running < 0) return usage("--max-running: must not be negative");
  options.max_running = static_cast<size_t>(max_running);
  auto request = process::ParseContainmentRequest(containment);
  if (!request.ok()) return usage("--containment: " + request.status().message());
  options.containment.request = *request;
  options.containment.cgroup_root = cgroup_root;
  if (options.data_dir.empty()) return usage("--data-dir: must not be empty");
  if (options.socket_path.empty()) return usage("--socket: must not be empty");
  return options;
}

}  // namespace warden::daemon
