#include "commands.h"

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/json/object.hpp>
#include <boost/program_options.hpp>
#include <cctype>
#include <iostream>

#include "base/json_text.h"
#include "dot_output.h"
#include "output.h"

namespace warden::cli {

namespace po = boost::program_options;
namespace json = boost::json;

namespace {

// `text` quoted for an error message: at most 64 bytes, anything unprintable as '?'.
std::string Quoted(std::string_view text) {
  std::string out = "'";
  for (size_t i = 0; i < text.size() && i < 64; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    out += std::isprint(c) ? static_cast<char>(c) : '?';
  }
  return out + (text.size() > 64 ? "...'" : "'");
}

// GET or POST `target`; on success parses the JSON body into `body`. Returns -1 when the
// caller should go on, else the exit status.
int CallJson(const DaemonClient& client, std::string_view method, const std::string& target,
             const std::string& request_body, json::value& body, HttpReply* raw = nullptr) {
  auto reply = client.Call(method, target, request_body);
  if (!reply.ok()) return ReportFailure(reply.status());
  if (reply->status / 100 != 2) return ReportErrorReply(*reply);
  boost::system::error_code ec;
  body = ParseJson(reply->body, ec);
  if (ec) {
    std::cerr << "warden: wardend answered something that is not JSON: " << ec.message() << "\n";
    return kExitFailed;
  }
  if (raw) *raw = std::move(*reply);
  return -1;
}

}  // namespace

bool IsExecutionId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
}

std::optional<int> ParseArgs(const Args& args, po::options_description& options,
                             const std::vector<std::string>& names, po::variables_map& vm,
                             const std::string& usage, std::string_view help_more) {
  options.add_options()("help,h", "print this help");
  po::options_description all;
  all.add(options);
  po::positional_options_description positional;
  for (const auto& name : names) {
    all.add_options()(name.c_str(), po::value<std::string>()->required());
    positional.add(name.c_str(), 1);
  }
  auto usage_error = [&](const std::string& message) {
    std::cerr << "warden: " << message << "\nusage: " << usage << "\n" << options;
    return kExitUsage;
  };
  try {
    po::store(po::command_line_parser(args).options(all).positional(positional).run(), vm);
    if (vm.count("help")) {
      std::cout << "usage: " << usage << "\n" << options << help_more;
      return kExitOk;
    }
    for (const auto& name : names) {
      // Named as the usage line shows it, not as the internal option "--id".
      if (!vm.count(name)) {
        std::string shown = name;
        for (char& c : shown) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        return usage_error("missing " + shown);
      }
    }
    po::notify(vm);
  } catch (const po::error& e) {
    return usage_error(e.what());
  }
  // Checked here, not left to the daemon: an empty id would make another route's path
  // (`/api/executions/` is the list), a '/' another resource.
  if (vm.count("id") && !IsExecutionId(vm["id"].as<std::string>())) {
    return usage_error(Quoted(vm["id"].as<std::string>()) +
                       " is not an execution ID (letters, digits, '-' and '_')");
  }
  if (vm.count("node") && vm["node"].as<std::string>().empty()) {
    return usage_error("'' is not a node ID");
  }
  return std::nullopt;
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
  if (auto done = ParseArgs(args, options, {}, vm, "warden ps [--all] [--json]")) return *done;
  json::value body;
  std::string target = std::string("/api/executions?state=") + (all ? "all" : "active");
  if (int exit = CallJson(client, "GET", target, "", body); exit >= 0) return exit;
  const json::value* executions =
      body.is_object() ? body.as_object().if_contains("executions") : nullptr;
  if (as_json) {
    std::cout << (executions ? SerializeJson(*executions) : "[]") << "\n";
  } else if (!executions || !executions->is_array() || executions->as_array().empty()) {
    std::cout << (all ? "no executions\n" : "no active executions (warden ps --all lists all)\n");
  } else {
    PrintExecutionList(*executions, std::cout);
  }
  return kExitOk;
}

int Show(const DaemonClient& client, const Args& args) {
  bool as_json = false, as_dot = false;
  po::options_description options("options");
  options.add_options()("json", po::bool_switch(&as_json), "print JSON")(
      "dot", po::bool_switch(&as_dot),
      "print the DAG as Graphviz DOT, coloured by node state (| dot -Tsvg > run.svg)");
  po::variables_map vm;
  if (auto done = ParseArgs(args, options, {"id"}, vm, "warden show ID [--json | --dot]")) {
    return *done;
  }
  if (as_json && as_dot) {
    std::cerr << "warden: --json and --dot exclude each other\n";
    return kExitUsage;
  }
  json::value body;
  std::string target = "/api/executions/" + UrlEncode(vm["id"].as<std::string>());
  if (int exit = CallJson(client, "GET", target, "", body); exit >= 0) return exit;
  if (as_json) {
    std::cout << SerializeJson(body) << "\n";
  } else if (as_dot) {
    PrintDot(body, std::cout);
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
  if (auto done =
          ParseArgs(args, options, {"id"}, vm,
                    "warden stop ID [--reason R] [--note T] [--grace-ms N] [--no-wait] [--json]")) {
    return *done;
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
  if (int exit = CallJson(client, "POST", target, SerializeJson(request), body, &reply);
      exit >= 0) {
    return exit;
  }
  if (as_json) {
    std::cout << SerializeJson(body) << "\n";
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
  if (auto done = ParseArgs(args, options, {"id"}, vm, "warden " + action + " ID [--json]")) {
    return *done;
  }
  json::value body;
  std::string target = "/api/executions/" + UrlEncode(vm["id"].as<std::string>()) + "/" + action;
  if (int exit = CallJson(client, "POST", target, "", body); exit >= 0) return exit;
  if (as_json) {
    std::cout << SerializeJson(body) << "\n";
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
  if (auto done =
          ParseArgs(args, options, {"id", "node"}, vm, "warden logs ID NODE [--stderr] [--json]")) {
    return *done;
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
    std::cout << SerializeJson(o) << "\n";
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
  if (auto done = ParseArgs(args, options, {"id"}, vm,
                            "warden events ID [--follow] [--after SEQ] [--json]")) {
    return *done;
  }
  std::string target = "/api/executions/" + UrlEncode(vm["id"].as<std::string>()) +
                       "/events?after=" + std::to_string(after);
  auto print = [as_json](std::string_view line) {
    if (as_json) {
      std::cout << line << "\n" << std::flush;
      return;
    }
    boost::system::error_code ec;
    json::value event = ParseJson(line, ec);
    std::cout << (ec ? std::string(line) : FormatEvent(event)) << "\n" << std::flush;
  };
  if (!follow) {
    json::value body;
    if (int exit = CallJson(client, "GET", target, "", body); exit >= 0) return exit;
    const json::value* events = body.is_object() ? body.as_object().if_contains("events") : nullptr;
    if (events && events->is_array()) {
      for (const auto& event : events->as_array()) print(SerializeJson(event));
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
