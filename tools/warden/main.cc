// warden: the command-line client of wardend.
#include <boost/program_options.hpp>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "audit.h"
#include "commands.h"
#include "daemon/data_dir.h"
#include "daemon/socket_file.h"

namespace po = boost::program_options;
using namespace warden::cli;

namespace {

int Audit(const std::vector<std::string>& args) {
  std::string db;
  bool json = false;
  po::options_description options("warden audit stops|orphans|stop ID");
  options.add_options()("db", po::value(&db), "the journal file (default: the daemon's)")(
      "json", po::bool_switch(&json), "print JSON");
  po::variables_map vm;
  const bool one_stop = !args.empty() && args.front() == "stop";
  const std::vector<std::string> names =
      one_stop ? std::vector<std::string>{"view", "id"} : std::vector<std::string>{"view"};
  if (auto done = warden::cli::ParseArgs(
          args, options, names, vm, "warden audit stops|orphans|stop ID [--db PATH] [--json]")) {
    return *done;
  }
  const std::string view = vm["view"].as<std::string>();
  if (db.empty()) db = warden::daemon::DefaultDataDir() + "/warden.db";
  warden::Status s =
      one_stop ? warden::cli::PrintStopTimeline(db, vm["id"].as<std::string>(), json, std::cout)
               : warden::cli::PrintAudit(db, view, json, std::cout);
  if (!s.ok()) {
    std::cerr << "warden: " << s.message() << "\n";
    if (s.code() == warden::StatusCode::kNotFound) return 1;
    return s.code() == warden::StatusCode::kInvalidArgument ? kExitUsage : kExitUnavailable;
  }
  return 0;
}

const char kUsage[] =
    "usage: warden [--socket PATH] COMMAND [ARGS] [--json]\n"
    "commands:\n"
    "  run SPEC.json|- [--detach]        run a DAG and follow it until it ends\n"
    "  ps [--all]                        list active (or all) executions\n"
    "  show ID [--dot]                   one execution and its nodes (--dot: its DAG as\n"
    "                                    Graphviz DOT, coloured by node state)\n"
    "  stop ID [--reason R] [--note T] [--grace-ms N] [--no-wait]\n"
    "                                    stop an execution and print the stop summary\n"
    "  pause ID | resume ID              freeze or thaw an execution\n"
    "  logs ID NODE [--stderr]           a node's captured output\n"
    "  events ID [--follow] [--after SEQ]\n"
    "                                    an execution's journal rows\n"
    "  audit stops|orphans [--db PATH]   print an audit view of the journal\n"
    "  audit stop ID [--db PATH]         one stop as a timeline: requests, SIGTERM, SIGKILL, ends\n"
    "Every command takes --help. --socket defaults to $WARDEN_SOCKET, else wardend's default\n"
    "socket.\n"
    "exit status: 0 success; 1 the request failed (run: the execution failed);\n"
    "  2 run: the execution was stopped; 64 usage error; 65 run: the spec is not JSON or\n"
    "  wardend refused it; 69 wardend cannot be reached; 130 run: interrupted (Ctrl-C stops\n"
    "  the execution, a second Ctrl-C kills its nodes at once).\n";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  // --socket PATH (or --socket=PATH) may come anywhere.
  std::string socket_path;
  if (const char* env = std::getenv("WARDEN_SOCKET"); env && *env) socket_path = env;
  for (size_t i = 0; i < args.size();) {
    if (args[i] == "--socket") {
      if (i + 1 == args.size()) {
        std::cerr << "warden: --socket needs a PATH\n" << kUsage;
        return kExitUsage;
      }
      socket_path = args[i + 1];
      args.erase(args.begin() + static_cast<long>(i), args.begin() + static_cast<long>(i) + 2);
    } else if (args[i].rfind("--socket=", 0) == 0) {
      socket_path = args[i].substr(9);
      args.erase(args.begin() + static_cast<long>(i));
    } else {
      ++i;
    }
  }
  if (socket_path.empty()) socket_path = warden::daemon::DefaultSocketPath();
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsage;
    return args.empty() ? kExitUsage : 0;
  }
  if (args[0] == "--version") {
    std::cout << "warden " WARDEN_VERSION "\n";
    return 0;
  }
  std::string command = args[0];
  args.erase(args.begin());
  DaemonClient client(socket_path);
  if (command == "audit") return Audit(args);
  if (command == "run") return Run(client, args);
  if (command == "ps") return Ps(client, args);
  if (command == "show") return Show(client, args);
  if (command == "stop") return Stop(client, args);
  if (command == "pause" || command == "resume") return PauseOrResume(client, command, args);
  if (command == "logs") return Logs(client, args);
  if (command == "events") return Events(client, args);
  std::cerr << "warden: unknown command '" << command << "'\n" << kUsage;
  return kExitUsage;
}
