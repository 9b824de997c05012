#include "commands.h"

#include <boost/asio/io_context.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/program_options.hpp>
#include <cctype>
#include <iostream>

#include "output.h"

namespace warden::cli {

namespace po = boost::program_options;
namespace json = boost::json;

namespace {

// Parses `args` against `options` plus the positional arguments `names` (all required).
// Prints the usage and returns false on an error.

// GET or POST `target`; on success parses the JSON body into `body`. Returns -1 when the
// caller should go on, else the exit status.
int CallJson(const DaemonClient& client, std::string_view method, const std::string& target,
             const std::string& request_body, json::value& body, HttpReply* raw = nullptr) {
  auto reply = client.Call(method, target, request_body);
  if (!reply.ok()) return ReportFailure(reply.status());
  if (reply->status / 100 != 2) return ReportErrorReply(*reply);
  boost::system::error_code ec;
  body = json::parse(reply->body, ec);
  if (ec) {
    std::cerr << "warden: wardend answered something that is not JSON: " << ec.message() << "\n";
    return kExitFailed;
  }
  if (raw) *raw = std::move(*reply);
  return -1;
}

}  // namespace

bool ParseArgs(const Args& args, po::options_description& options,
               const std::vector<std::string>& names, po::variables_map& vm,
               const std::string& usage) {
  po::options_description all;
  all.add(options);
  po::positional_options_description positional;
  for (const auto& name : names) {
    all.add_options()(name.c_str(), po::value<std::string>()->required());
    positional.add(name.c_str(), 1);
  }
  try {
    po::store(po::command_line_parser(args).options(all).positional(positional).run(), vm);
    for (const auto& name : names) {
      // Named as the usage line shows it, not as the internal option "--id".
      if (!vm.count(name)) {
        std::string shown = name;
        for (char& c : shown) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        std::cerr << "warden: missing " << shown << "\nusage: " << usage << "\n" << options;
        return false;
      }
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "warden: " << e.what() << "\nusage: " << usage << "\n" << options;
    return false;
  }
  return true;
}

int ReportFailure(const Status& status) {
  std::cerr << "warden: " << status.message() << "\n";
  return status.code() == StatusCode::kUnavailable ? kExitUnavailable : kExitFailed;
}

int ReportErrorReply(const HttpReply& reply) {
  std::cerr << "warden: " << ErrorMessage(reply) << "\n";
  return kExitFailed;
}

std::string UrlEncode(const std::string& text) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

int Ps(const DaemonClient& client, const Args& args) {
  bool all = false, as_json = false;
  po::options_description options("options");
  options.add_options()("all,a", po::bool_switch(&all), "include ended executions")(
      "json", po::bool_switch(&as_json), "print JSON");
  po::variables_map vm;
  if (!ParseArgs(args, options, {}, vm, "warden ps [--all] [--json]")) return kExitUsage;
  json::value body;
  std::string target = std::string("/api/executions?state=") + (all ? "all" : "active");
  if (int exit = CallJson(client, "GET", target, "", body); exit >= 0) return exit;
  const json::value* executions =
      body.is_object() ? body.as_object().if_contains("executions") : nullptr;
  if (as_json) {
    std::cout << (executions ? json::serialize(*executions) : "[]") << "\n";
  } else if (!executions || !executions->is_array() || executions->as_array().empty()) {
    std::cout << (all ? "no executions\n" : "no active executions (warden ps --all lists all)\n");
  } else {
    PrintExecutionList(*executions, std::cout);
  }
  return kExitOk;
}

int Show(const DaemonClient& client, const Args& args) {
  bool as_json = false;
  po::options_description options("options");
  options.add_options()("json", po::bool_switch(&as_json), "print JSON");
  po::variables_map vm;
  if (!ParseArgs(args, options, {"id"}, vm, "warden show ID [--json]")) return kExitUsage;
  json::value body;
  std::string target = "/api/executions/" + UrlEncode(vm["id"].as<std::string>());
  if (int exit = CallJson(client, "GET", target, "", body); exit >= 0) return exit;
  if (as_json) {
    std::cout << json::serialize(body) << "\n";
  } else {
    PrintExecution(body, std::cout);
  }
  return kExitOk;
}

int Stop(const DaemonClient& client, const Args& args) {
  bool as_json = false, no_wait = false;
  std::string reason = "user_abort", note;
  int64_t grace_ms = -1;
  po::options_description options("options");
  options.add_options()("reason", po::value(&reason),
                        "user_abort (default), timeout, error, server_shutdown or crash_recovery")(
      "note", po::value(&note), "free text recorded with the stop")(
      "grace-ms", po::value(&grace_ms), "grace between SIGTERM and SIGKILL for every node")(
      "no-wait", po::bool_switch(&no_wait), "return once the execution is stopping")(
      "json", po::bool_switch(&as_json), "print JSON");
  po::variables_map vm;
  if (!ParseArgs(args, options, {"id"}, vm,
                 "warden stop ID [--reason R] [--note T] [--grace-ms N] [--no-wait] [--json]")) {
    return kExitUsage;
  }
  if (vm.count("grace-ms") && grace_ms < 0) {
    std::cerr << "warden: --grace-ms must not be negative\n";
    return kExitUsage;
  }
  json::object request;
  request["reason"] = reason;
  if (!note.empty()) request["note"] = note;
  if (grace_ms >= 0) request["graceMs"] = grace_ms;
  request["wait"] = !no_wait;
  json::value body;
  HttpReply reply;
  std::string target = "/api/executions/" + UrlEncode(vm["id"].as<std::string>()) + "/stop";
  if (int exit = CallJson(client, "POST", target, json::serialize(request), body, &reply);
      exit >= 0) {
    return exit;
  }
  if (as_json) {
    std::cout << json::serialize(body) << "\n";
  } else if (reply.status == 202) {
    std::cout << "execution " << vm["id"].as<std::string>() << " is stopping\n";
  } else {
    PrintStopResult(body, std::cout);
  }
  return kExitOk;
}

int PauseOrResume(const DaemonClient& client, const std::string& action, const Args& args) {
  bool as_json = false;
  po::options_description options("options");
  options.add_options()("json", po::bool_switch(&as_json), "print JSON");
  po::variables_map vm;
  if (!ParseArgs(args, options, {"id"}, vm, "warden " + action + " ID [--json]")) {
    return kExitUsage;
  }
  json::value body;
  std::string target = "/api/executions/" + UrlEncode(vm["id"].as<std::string>()) + "/" + action;
  if (int exit = CallJson(client, "POST", target, "", body); exit >= 0) return exit;
  if (as_json) {
    std::cout << json::serialize(body) << "\n";
  } else {
    std::cout << "execution " << vm["id"].as<std::string>() << " is " << ProgressOf(body).status
              << "\n";
  }
  return kExitOk;
}

int Logs(const DaemonClient& client, const Args& args) {
  bool stderr_stream = false, as_json = false;
  po::options_description options("options");
  options.add_options()("stderr", po::bool_switch(&stderr_stream), "show stderr, not stdout")(
      "json", po::bool_switch(&as_json), "print {\"output\": TEXT}");
  po::variables_map vm;
  if (!ParseArgs(args, options, {"id", "node"}, vm, "warden logs ID NODE [--stderr] [--json]")) {
    return kExitUsage;
  }
  std::string target = "/api/executions/" + UrlEncode(vm["id"].as<std::string>()) + "/nodes/" +
                       UrlEncode(vm["node"].as<std::string>()) +
                       "/log?stream=" + (stderr_stream ? "stderr" : "stdout");
  auto reply = client.Call("GET", target);
  if (!reply.ok()) return ReportFailure(reply.status());
  if (reply->status != 200) return ReportErrorReply(*reply);
  if (as_json) {
    json::object o;
    o["output"] = reply->body;
    std::cout << json::serialize(o) << "\n";
  } else {
    std::cout << reply->body << std::flush;
  }
  return kExitOk;
}

int Events(const DaemonClient& client, const Args& args) {
  bool as_json = false, follow = false;
  int64_t after = 0;
  po::options_description options("options");
  options.add_options()("follow,f", po::bool_switch(&follow),
                        "keep printing events as they happen, until the execution ends")(
      "after", po::value(&after), "only events with a greater seq")(
      "json", po::bool_switch(&as_json), "print one JSON object per line");
  po::variables_map vm;
  if (!ParseArgs(args, options, {"id"}, vm, "warden events ID [--follow] [--after SEQ] [--json]")) {
    return kExitUsage;
  }
  std::string target = "/api/executions/" + UrlEncode(vm["id"].as<std::string>()) +
                       "/events?after=" + std::to_string(after);
  auto print = [as_json](std::string_view line) {
    if (as_json) {
      std::cout << line << "\n" << std::flush;
      return;
    }
    boost::system::error_code ec;
    json::value event = json::parse(line, ec);
    std::cout << (ec ? std::string(line) : FormatEvent(event)) << "\n" << std::flush;
  };
  if (!follow) {
    json::value body;
    if (int exit = CallJson(client, "GET", target, "", body); exit >= 0) return exit;
    const json::value* events = body.is_object() ? body.as_object().if_contains("events") : nullptr;
    if (events && events->is_array()) {
      for (const auto& event : events->as_array()) print(json::serialize(event));
    }
    return kExitOk;
  }
  boost::asio::io_context io;
  Status end;
  auto stream = LineStream::Start(io, client.socket_path(), target + "&follow=true", print,
                                  [&end](Status s) { end = std::move(s); });
  io.run();
  return end.ok() ? kExitOk : ReportFailure(end);
}

}  // namespace warden::cli
