// warden: the command-line client of wardend.
#include <boost/program_options.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "audit.h"
#include "daemon/data_dir.h"

namespace po = boost::program_options;

namespace {

constexpr int kExitUsage = 64;
constexpr int kExitUnavailable = 69;

int Audit(const std::vector<std::string>& args) {
  std::string db;
  bool json = false;
  po::options_description options("warden audit stops|orphans");
  options.add_options()("db", po::value(&db), "the journal file (default: the daemon's)")(
      "json", po::bool_switch(&json), "print JSON");
  po::positional_options_description positional;
  positional.add("view", 1);
  std::string view;
  po::options_description all;
  all.add(options).add_options()("view", po::value(&view)->required());
  try {
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(all).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "warden audit: " << e.what() << "\nusage: warden audit stops|orphans [--db PATH] "
              << "[--json]\n";
    return kExitUsage;
  }
  if (db.empty()) db = warden::daemon::DefaultDataDir() + "/warden.db";
  warden::Status s = warden::cli::PrintAudit(db, view, json, std::cout);
  if (!s.ok()) {
    std::cerr << "warden: " << s.message() << "\n";
    return s.code() == warden::StatusCode::kInvalidArgument ? kExitUsage : kExitUnavailable;
  }
  return 0;
}

const char kUsage[] =
    "usage: warden [--socket PATH] COMMAND [ARGS] [--json]\n"
    "commands:\n"
    "  audit stops|orphans [--db PATH]   print an audit view of the journal\n";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << kUsage;
    return args.empty() ? kExitUsage : 0;
  }
  std::string command = args[0];
  args.erase(args.begin());
  if (command == "audit") return Audit(args);
  std::cerr << "warden: unknown command '" << command << "'\n" << kUsage;
  return kExitUsage;
}
