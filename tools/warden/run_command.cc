// `warden run SPEC.json [--detach] [--json]`: creates the execution and follows it through
// its event stream (never by polling) until it ends. Exit status: 0 completed, 1 failed,
// 2 stopped, 130 after Ctrl-C (which stops it with reason user_abort; a second one kills
// its nodes at once), 64 usage, 65 a spec that is not JSON or that wardend refuses, 69 when
// wardend cannot be reached. If wardend goes away mid-run (a crash, a restart), the stream
// is reopened from the last event seen (after=SEQ) once a daemon answers again, for up to
// two minutes.
#include <signal.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>
#include <boost/program_options.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

#include "base/json_text.h"
#include "commands.h"
#include "dag/strict_json.h"
#include "output.h"

namespace warden::cli {

namespace po = boost::program_options;
namespace json = boost::json;

namespace {

// How often at most the progress line is refreshed (each refresh is one GET, made only
// after events arrived).
constexpr std::chrono::milliseconds kRefreshInterval{200};
// How often the progress line is redrawn between refreshes, with the cost of the running
// nodes extrapolated from their rates (no request to the daemon).
constexpr std::chrono::milliseconds kRedrawInterval{500};
// When wardend goes away mid-run (a crash, a restart), how often the stream is reopened
// and for how long at most: a restarted daemon opens its socket once crash recovery is
// done, which takes up to the longest grace plus the SIGKILL wait.
constexpr std::chrono::milliseconds kReconnectInterval{250};
constexpr std::chrono::seconds kReconnectFor{120};

Result<std::string> ReadSpec(const std::string& path) {
  std::ostringstream text;
  if (path == "-") {
    text << std::cin.rdbuf();
  } else {
    std::ifstream file(path, std::ios::binary);
    if (!file) return Status::InvalidArgument("cannot read " + path);
    text << file.rdbuf();
  }
  return std::move(text).str();
}

// costPerSecondUsd of every node that declares one, by node id.
std::map<std::string, double> CostRates(const std::string& spec_text) {
  std::map<std::string, double> rates;
  boost::system::error_code ec;
  json::value spec = ParseJson(spec_text, ec);
  const json::value* nodes =
      !ec && spec.is_object() ? spec.as_object().if_contains("nodes") : nullptr;
  if (!nodes || !nodes->is_array()) return rates;
  for (const json::value& node : nodes->as_array()) {
    if (!node.is_object()) continue;
    const json::value* id = node.as_object().if_contains("id");
    const json::value* rate = node.as_object().if_contains("costPerSecondUsd");
    if (id && id->is_string() && rate && rate->is_number()) {
      rates[std::string(id->as_string())] = rate->to_number<double>();
    }
  }
  return rates;
}

// The spec with `cwd` filled in (the CLI's working directory) for nodes that omit it.
Result<std::string> FillInCwd(const std::string& spec_text) {
  auto spec = dag::ParseStrictJson(spec_text);
  if (!spec.ok()) return spec.status();
  if (!spec->is_object()) return spec_text;  // the daemon explains what is wrong
  json::value* nodes = spec->as_object().if_contains("nodes");
  if (!nodes || !nodes->is_array()) return spec_text;
  std::error_code ec;
  std::string cwd = std::filesystem::current_path(ec).string();
  if (ec) return spec_text;
  for (json::value& node : nodes->as_array()) {
    if (node.is_object() && !node.as_object().contains("cwd")) node.as_object()["cwd"] = cwd;
  }
  return SerializeJson(*spec);
}

std::string Id(const json::value& execution) {
  const json::value* id =
      execution.is_object() ? execution.as_object().if_contains("executionId") : nullptr;
  return id && id->is_string() ? std::string(id->as_string()) : "";
}

// A human line for the node events worth a line of their own, or empty.
std::string NodeEventLine(const json::value& event) {
  if (!event.is_object()) return "";
  const json::object& e = event.as_object();
  auto text = [&](const json::value* v) {
    return v && v->is_string() ? std::string(v->as_string()) : v ? SerializeJson(*v) : "";
  };
  std::string kind = text(e.if_contains("kind"));
  std::string node = text(e.if_contains("node_id"));
  const json::value* payload = e.if_contains("payload");
  const json::object* p = payload && payload->is_object() ? &payload->as_object() : nullptr;
  auto field = [&](std::string_view name) -> const json::value* {
    if (!p) return nullptr;
    const json::value* v = p->if_contains(name);
    return v && !v->is_null() ? v : nullptr;
  };
  if (kind == "node.exited") {
    if (const json::value* signal = field("signal"))
      return "node " + node + " killed by " + text(signal);
    if (!field("exitCode")) {
      // Crash recovery ended it: the restarted wardend was not its parent.
      return "node " + node + " ended with no exit status (stopped by crash recovery)";
    }
    std::string code = text(field("exitCode"));
    return "node " + node + (code == "0" ? " succeeded" : " failed with exit code " + code);
  }
  if (kind == "node.launch_failed") return "node " + node + " could not start";
  if (kind == "node.timed_out") return "node " + node + " timed out";
  if (kind == "node.retry_scheduled") return "node " + node + " will be retried";
  if (kind == "node.skipped") return "node " + node + " skipped";
  if (kind == "node.unkillable") return "node " + node + " is unkillable";
  if (kind == "node.lost") return "node " + node + " was lost while wardend was down";
  return "";
}

class Follower {
 public:
  Follower(const DaemonClient& client, boost::asio::io_context& io, std::string id, bool json,
           std::map<std::string, double> rates)
      : client_(client),
        io_(io),
        id_(std::move(id)),
        json_(json),
        rates_(std::move(rates)),
        timer_(io),
        redraw_timer_(io),
        reconnect_timer_(io),
        tty_(!json && isatty(STDERR_FILENO)) {}

  void Start(boost::asio::signal_set& signals) {
    signals_ = &signals;
    signals.async_wait([this](const boost::system::error_code& ec, int) {
      if (ec) return;
      interrupted_ = true;
      Finish();
    });
    Open();
  }

  bool interrupted() const { return interrupted_; }
  const Status& end() const { return end_; }

 private:
  // Follows the event stream from after the last event seen.
  void Open() {
    stream_ = LineStream::Start(
        io_, client_.socket_path(),
        "/api/executions/" + UrlEncode(id_) +
            "/events?follow=true&after=" + std::to_string(last_seq_),
        [this](std::string_view line) { OnLine(line); },
        [this](Status status) { OnStreamEnd(std::move(status)); });
  }

  // The stream ends after the execution's terminal event. Any other end means wardend went
  // away: the stream is reopened, from where it was, once a daemon answers again.
  void OnStreamEnd(Status status) {
    if (finished_) return;
    if (status.ok()) {
      end_ = std::move(status);
      Finish();
      return;
    }
    const auto now = std::chrono::steady_clock::now();
    if (!reconnecting_) {
      reconnecting_ = true;
      reconnect_deadline_ = now + kReconnectFor;
      ClearProgress();
      if (!json_) std::cerr << "wardend went away (" << status.message() << "); reconnecting\n";
    }
    if (now >= reconnect_deadline_) {
      end_ = std::move(status);
      Finish();
      return;
    }
    reconnect_timer_.expires_after(kReconnectInterval);
    reconnect_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec && !finished_) Open();
    });
  }

  void OnLine(std::string_view line) {
    boost::system::error_code ec;
    json::value event = ParseJson(line, ec);
    if (!ec && event.is_object()) {
      const json::value* seq = event.as_object().if_contains("seq");
      if (seq && seq->is_int64()) last_seq_ = std::max(last_seq_, seq->as_int64());
      if (reconnecting_) {
        reconnecting_ = false;
        if (!json_) std::cerr << "reconnected to wardend\n";
      }
    }
    if (json_) return;
    if (!ec) {
      std::string text = NodeEventLine(event);
      if (!text.empty()) {
        ClearProgress();
        std::cerr << text << "\n";
      }
    }
    ScheduleRefresh();
  }

  void ScheduleRefresh() {
    if (refresh_pending_ || !tty_) return;
    refresh_pending_ = true;
    timer_.expires_after(kRefreshInterval);
    timer_.async_wait([this](const boost::system::error_code& ec) {
      refresh_pending_ = false;
      if (ec || finished_) return;
      auto reply = client_.Call("GET", "/api/executions/" + UrlEncode(id_));
      if (!reply.ok() || reply->status != 200) return;
      boost::system::error_code parse_error;
      json::value execution = ParseJson(reply->body, parse_error);
      if (parse_error) return;
      progress_ = ProgressOf(execution);
      fetched_at_ = std::chrono::steady_clock::now();
      running_rate_ = 0;
      if (const json::value* nodes = execution.as_object().if_contains("nodes");
          nodes && nodes->is_array()) {
        for (const json::value& node : nodes->as_array()) {
          if (!node.is_object() || node.at("status") != "running") continue;
          auto rate = rates_.find(std::string(node.at("id").as_string()));
          if (rate != rates_.end()) running_rate_ += rate->second;
        }
      }
      Draw();
      if (!redrawing_) Redraw();
    });
  }

  // Redraws the line now and then, so that the cost of running nodes visibly grows.
  void Redraw() {
    redrawing_ = true;
    redraw_timer_.expires_after(kRedrawInterval);
    redraw_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || finished_) return;
      Draw();
      Redraw();
    });
  }

  void Draw() {
    Progress now = progress_;
    now.cost_usd +=
        running_rate_ *
        std::chrono::duration<double>(std::chrono::steady_clock::now() - fetched_at_).count();
    std::cerr << "\r\033[K" << id_ << ": " << FormatProgress(now) << std::flush;
    progress_shown_ = true;
  }

  void ClearProgress() {
    if (progress_shown_) std::cerr << "\r\033[K" << std::flush;
    progress_shown_ = false;
  }

  void Finish() {
    if (finished_) return;
    finished_ = true;
    ClearProgress();
    if (stream_) stream_->Cancel();
    timer_.cancel();
    redraw_timer_.cancel();
    reconnect_timer_.cancel();
    if (signals_) signals_->cancel();
  }

  const DaemonClient& client_;
  boost::asio::io_context& io_;
  std::string id_;
  bool json_;
  std::map<std::string, double> rates_;        // costPerSecondUsd by node id, from the spec
  boost::asio::steady_timer timer_;            // the next refresh (one GET)
  boost::asio::steady_timer redraw_timer_;     // the next redraw (no request)
  boost::asio::steady_timer reconnect_timer_;  // the next try to reopen the stream
  int64_t last_seq_ = 0;                       // of the last event received
  bool reconnecting_ = false;
  std::chrono::steady_clock::time_point reconnect_deadline_;
  bool tty_;
  Progress progress_;  // as of the last refresh
  std::chrono::steady_clock::time_point fetched_at_;
  double running_rate_ = 0;  // USD per second of the nodes running at the last refresh
  bool redrawing_ = false;
  boost::asio::signal_set* signals_ = nullptr;
  std::shared_ptr<LineStream> stream_;
  Status end_;
  bool interrupted_ = false;
  bool finished_ = false;
  bool refresh_pending_ = false;
  bool progress_shown_ = false;
};

// After the first Ctrl-C (or SIGTERM): asks the daemon to stop the execution (reason
// user_abort, each node's own grace) and waits for the StopResponse on `io`. A second signal
// meanwhile joins the stop with graceMs 0, which brings SIGKILL forward for every node; the
// wait for the result goes on either way. Returns 130, or 69 when the daemon cannot be
// reached.
int StopAfterInterrupt(const DaemonClient& client, boost::asio::io_context& io,
                       boost::asio::signal_set& signals, const std::string& id, bool as_json) {
  std::cerr << "interrupted: stopping execution " << id
            << " (user_abort); interrupt again to kill its nodes now\n";
  const std::string target = "/api/executions/" + UrlEncode(id) + "/stop";
  json::object request;
  request["reason"] = "user_abort";
  request["note"] = "Ctrl-C in warden run";
  std::optional<Result<HttpReply>> result;
  client.AsyncCall(io, "POST", target, SerializeJson(request),
                   [&result, &signals](Result<HttpReply> reply) {
                     result.emplace(std::move(reply));
                     signals.cancel();
                   });
  bool killing = false;
  std::function<void()> wait_for_signal = [&] {
    signals.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec || result) return;
      if (killing) {
        std::cerr << "the stop is under way; waiting for its result\n";
      } else {
        killing = true;
        std::cerr << "interrupted again: killing the nodes of execution " << id << " now\n";
        json::object kill;
        kill["reason"] = "user_abort";
        kill["note"] = "second Ctrl-C in warden run";
        kill["graceMs"] = 0;
        kill["wait"] = false;  // the first request's answer is the result
        client.AsyncCall(io, "POST", target, SerializeJson(kill),
                         [&result](Result<HttpReply> reply) {
                           if (result) return;  // the stop ended first
                           if (!reply.ok()) {
                             std::cerr << "warden: " << reply.status().message() << "\n";
                           } else if (reply->status / 100 != 2) {
                             std::cerr << "warden: " << ErrorMessage(*reply) << "\n";
                           }
                         });
      }
      wait_for_signal();
    });
  };
  wait_for_signal();
  io.restart();
  io.run();
  if (!result->ok()) return ReportFailure(result->status());
  const HttpReply& reply = **result;
  if (reply.status != 200) {
    ReportErrorReply(reply);
    return kExitInterrupted;
  }
  boost::system::error_code ec;
  json::value stop = ParseJson(reply.body, ec);
  if (as_json) {
    std::cout << reply.body << "\n";
  } else if (!ec) {
    PrintStopResult(stop, std::cout);
  }
  return kExitInterrupted;
}

int Summarize(const json::value& execution, bool as_json) {
  Progress progress = ProgressOf(execution);
  if (as_json) {
    std::cout << SerializeJson(execution) << "\n";
  } else {
    std::cout << "execution " << Id(execution) << " " << progress.status << ": "
              << FormatProgress(progress) << "\n";
  }
  if (progress.status == "completed") return kExitOk;
  if (progress.status == "stopped") return kExitStopped;
  return kExitFailed;
}

}  // namespace

int Run(const DaemonClient& client, const Args& args) {
  bool detach = false, as_json = false;
  po::options_description options("options");
  options.add_options()("detach,d", po::bool_switch(&detach),
                        "print the execution id and return at once")(
      "json", po::bool_switch(&as_json), "print JSON");
  po::variables_map vm;
  if (auto done = ParseArgs(
          args, options, {"spec"}, vm, "warden run SPEC.json|- [--detach] [--json]",
          "SPEC.json is a DAG spec; - reads it from stdin.\n"
          "exit status: 0 completed, 1 failed, 2 stopped, 64 usage error, 65 the spec is not\n"
          "JSON or wardend refused it, 69 wardend cannot be reached, 130 interrupted: Ctrl-C\n"
          "(or SIGTERM) stops the execution (user_abort, each node's grace) and prints the stop\n"
          "summary; a second Ctrl-C kills its nodes at once.\n")) {
    return *done;
  }
  auto text = ReadSpec(vm["spec"].as<std::string>());
  if (!text.ok()) {
    std::cerr << "warden: " << text.status().message() << "\n";
    return kExitUsage;
  }
  auto spec = FillInCwd(*text);
  if (!spec.ok()) {
    std::cerr << "warden: " << vm["spec"].as<std::string>() << ": " << spec.status().message()
              << "\n";
    return kExitDataError;
  }

  // Ctrl-C is caught from before the execution exists, so that it is never left running
  // behind an interrupted client (a signal that comes during the create waits in the set).
  // With --detach, Ctrl-C ends the client as usual.
  boost::asio::io_context io;
  boost::asio::signal_set signals(io);
  if (!detach) {
    signals.add(SIGINT);
    signals.add(SIGTERM);
  }

  auto reply = client.Call("POST", "/api/executions", *spec);
  if (!reply.ok()) return ReportFailure(reply.status());
  if (reply->status / 100 != 2) {
    ReportErrorReply(*reply);
    // 400: the spec is invalid; 413: it is over the size limit. Anything else (the journal
    // is unwritable, the daemon is shutting down) is not the spec's fault.
    return reply->status == 400 || reply->status == 413 ? kExitDataError : kExitFailed;
  }
  boost::system::error_code ec;
  json::value created = ParseJson(reply->body, ec);
  std::string id = ec ? "" : Id(created);
  if (id.empty()) {
    std::cerr << "warden: wardend's answer has no executionId\n";
    return kExitFailed;
  }
  if (detach) {
    std::cout << (as_json ? reply->body : id) << "\n";
    return kExitOk;
  }
  if (!as_json) std::cerr << "execution " << id << " started\n";

  Follower follower(client, io, id, as_json, CostRates(*spec));
  follower.Start(signals);
  io.run();
  if (follower.interrupted()) return StopAfterInterrupt(client, io, signals, id, as_json);
  if (!follower.end().ok()) return ReportFailure(follower.end());
  auto final_reply = client.Call("GET", "/api/executions/" + UrlEncode(id));
  if (!final_reply.ok()) return ReportFailure(final_reply.status());
  if (final_reply->status != 200) return ReportErrorReply(*final_reply);
  json::value execution = ParseJson(final_reply->body, ec);
  if (ec) return kExitFailed;
  return Summarize(execution, as_json);
}

}  // namespace warden::cli
