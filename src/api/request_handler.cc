#include "api/request_handler.h"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "api/error_response.h"
#include "api/event_follower.h"
#include "api/json_codec.h"
#include "api/request_origin.h"
#include "api/web_ui.h"
#include "base/json_text.h"
#include "process/containment.h"

namespace warden::api {

namespace json = boost::json;
using lifecycle::ExecutionView;

namespace {

Response JsonResponse(int status, const json::value& body) {
  Response response;
  response.status = status;
  response.body = SerializeJson(body);
  return response;
}

Response ExecutionResponse(int status, const Result<ExecutionView>& execution) {
  if (!execution.ok()) return ErrorResponse(execution.status());
  return JsonResponse(status, ExecutionToJson(*execution));
}

// What each kind of route answers (its Allow header). HEAD goes wherever GET does.
constexpr std::string_view kGetRoute = "GET, HEAD";
constexpr std::string_view kPostRoute = "POST";
constexpr std::string_view kGetPostRoute = "GET, HEAD, POST";

// The methods RFC 9110 (and PATCH, RFC 5789) define: on a route that does not take one of
// them the answer is 405; any other method is not implemented here at all, 501.
bool IsKnownMethod(std::string_view method) {
  for (std::string_view known :
       {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"}) {
    if (method == known) return true;
  }
  return false;
}

Response MethodNotAllowed(std::string_view allow) {
  Response response =
      HttpErrorResponse(405, "method_not_allowed", "use " + std::string(allow) + " here");
  response.allow = allow;
  return response;
}

// An id names an execution (22 characters) or a node (at most 128, dag.h): a longer one names
// nothing, and is answered without asking the manager, whose messages quote ids whole.
constexpr size_t kMaxIdLength = 128;

Response NoSuchExecution(std::string_view id) {
  return ErrorResponse(Status::NotFound("no execution " + Excerpt(id)));
}

// True if a body coded as `content_encoding` (a comma-separated list, as sent) needs no
// decoding: no coding, or only "identity".
bool IsIdentityCoding(std::string_view content_encoding) {
  while (!content_encoding.empty()) {
    size_t comma = content_encoding.find(',');
    std::string_view coding = content_encoding.substr(0, comma);
    content_encoding =
        comma == std::string_view::npos ? std::string_view() : content_encoding.substr(comma + 1);
    while (!coding.empty() && (coding.front() == ' ' || coding.front() == '\t')) {
      coding.remove_prefix(1);
    }
    while (!coding.empty() && (coding.back() == ' ' || coding.back() == '\t')) {
      coding.remove_suffix(1);
    }
    if (coding.empty()) continue;
    if (coding.size() != 8) return false;
    for (size_t i = 0; i < coding.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(coding[i])) != "identity"[i]) return false;
    }
  }
  return true;
}

Response ShuttingDown() {
  return ErrorResponse(Status::Unavailable("wardend is shutting down: no new work accepted"));
}

// True if `content_type` names JSON ("application/json", parameters allowed).
bool IsJson(std::string_view content_type) {
  std::string_view media = content_type.substr(0, content_type.find(';'));
  while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
  if (media.size() != 16) return false;
  constexpr std::string_view kJson = "application/json";
  for (size_t i = 0; i < media.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(media[i])) != kJson[i]) return false;
  }
  return true;
}

Response NotJson(std::string_view content_type) {
  return HttpErrorResponse(415, "unsupported_media_type",
                           content_type.empty()
                               ? std::string("a POST needs Content-Type: application/json "
                                             "(also with an empty body)")
                               : "the body must be JSON (Content-Type: application/json), not '" +
                                     Excerpt(content_type) + "'");
}

Result<bool> BoolParam(const RequestTarget& target, const std::string& name, bool fallback) {
  auto value = target.Param(name);
  if (!value) return fallback;
  if (*value == "true") return true;
  if (*value == "false") return false;
  return Status::InvalidArgument(name + ": must be true or false, not '" + Excerpt(*value) + "'");
}

// The body of a stop request, parsed.
struct StopBody {
  lifecycle::StopRequest request;
  bool wait = true;
  std::string execution_id;  // only for POST /api/execute/stop
};

Result<StopBody> ParseStopBody(const Request& request, bool with_execution_id) {
  StopBody stop;
  stop.request.requester = request.requester;
  if (request.body.empty()) {
    if (with_execution_id) return Status::InvalidArgument("executionId: required");
    return stop;
  }
  boost::system::error_code ec;
  json::value body = json::parse(request.body, ec);
  if (ec) return Status::InvalidArgument("invalid JSON body: " + ec.message());
  if (!body.is_object()) return Status::InvalidArgument("the body must be a JSON object");
  for (const auto& [key, value] : body.as_object()) {
    if (key == "reason") {
      if (!value.is_string()) return Status::InvalidArgument("reason: must be a string");
      // Every reason is shorter than an excerpt: a longer string is refused all the same,
      // and only its excerpt is quoted back.
      auto reason = lifecycle::ParseStopReason(Excerpt(value.as_string()));
      if (!reason.ok()) return reason.status();
      stop.request.reason = *reason;
    } else if (key == "note") {
      if (!value.is_string()) return Status::InvalidArgument("note: must be a string");
      stop.request.note = value.as_string();
    } else if (key == "graceMs") {
      if (value.is_int64() && value.as_int64() >= 0) {
        stop.request.grace_ms = value.as_int64();
      } else if (value.is_uint64() && value.as_uint64() <= INT64_MAX) {
        stop.request.grace_ms = static_cast<int64_t>(value.as_uint64());
      } else {
        return Status::InvalidArgument("graceMs: must be a non-negative integer");
      }
    } else if (key == "wait") {
      if (!value.is_bool()) return Status::InvalidArgument("wait: must be true or false");
      stop.wait = value.as_bool();
    } else if (key == "executionId" && with_execution_id) {
      if (!value.is_string() || value.as_string().empty()) {
        return Status::InvalidArgument("executionId: must be a non-empty string");
      }
      stop.execution_id = value.as_string();
    } else {
      return Status::InvalidArgument("unknown field '" + Excerpt(key) + "' in the stop request");
    }
  }
  if (with_execution_id && stop.execution_id.empty()) {
    return Status::InvalidArgument("executionId: required");
  }
  return stop;
}

}  // namespace

RequestHandler::RequestHandler(boost::asio::io_context& io, lifecycle::ExecutionManager& manager,
                               DaemonMetrics& metrics, HandlerOptions options)
    : io_(io), manager_(manager), metrics_(metrics), options_(options) {}

void RequestHandler::Handle(Request request, Responder respond) {
  ++metrics_.http_requests;
  if (auto refusal = RefuseForeignRequest(
          request, request.listener ? *request.listener : ListenerNames::Any())) {
    respond(std::move(*refusal));
    return;
  }
  if (request.body.size() > options_.max_body_bytes) {
    respond(ErrorResponse(Status::TooLarge(
        "request body of " + std::to_string(request.body.size()) + " bytes is over the limit of " +
        std::to_string(options_.max_body_bytes))));
    return;
  }
  if (!IsKnownMethod(request.method)) {
    respond(HttpErrorResponse(501, "not_implemented",
                              "method " + Excerpt(request.method) +
                                  " is not implemented (wardend takes GET, HEAD, POST)"));
    return;
  }
  auto target = RequestTarget::Parse(request.target);
  if (!target.ok()) {
    respond(ErrorResponse(target.status()));
    return;
  }
  // No endpoint takes a coded body; RFC 9110 §15.5.16 says which codings would do.
  if (!request.body.empty() && !IsIdentityCoding(request.content_encoding)) {
    Response response =
        HttpErrorResponse(415, "unsupported_media_type",
                          "Content-Encoding '" + Excerpt(request.content_encoding) +
                              "' is not supported: send the body as it is (identity)");
    response.accept_encoding = "identity";
    respond(std::move(response));
    return;
  }
  Route(request, *target, respond);
}

void RequestHandler::Route(const Request& request, const RequestTarget& target,
                           Responder& respond) {
  const auto& s = target.segments;
  const std::string& method = request.method;
  // HEAD is answered as GET; the server sends the head of the answer without its body.
  const bool get = method == "GET" || method == "HEAD";
  const bool post = method == "POST";
  auto not_found = [&] {
    return ErrorResponse(
        Status::NotFound("no such endpoint: " + method + " " + Excerpt(target.path)));
  };

  if (s.size() == 1 && s[0] == "metrics") {
    return respond(get ? Metrics() : MethodNotAllowed(kGetRoute));
  }
  if (const WebUiFile* file = FindWebUiFile(target.path)) {
    return respond(get ? WebUiResponse(*file, request.if_none_match) : MethodNotAllowed(kGetRoute));
  }
  if (s.empty() || s[0] != "api") return respond(not_found());
  if (s.size() == 2 && s[1] == "health") {
    return respond(get ? Health() : MethodNotAllowed(kGetRoute));
  }
  // Every POST declares a JSON body, also an empty one: a browser can send a form or plain
  // text to any site without asking first, but not application/json.
  const bool post_not_json = post && !IsJson(request.content_type);
  if (s.size() == 3 && s[1] == "execute" && s[2] == "stop") {
    if (!post) return respond(MethodNotAllowed(kPostRoute));
    if (post_not_json) return respond(NotJson(request.content_type));
    return Stop(request, {}, std::move(respond));
  }
  if (s.size() < 2 || s[1] != "executions") return respond(not_found());
  if (s.size() == 2) {
    if (get) return respond(List(target));
    if (post_not_json) return respond(NotJson(request.content_type));
    if (post) return respond(Create(request, target));
    return respond(MethodNotAllowed(kGetPostRoute));
  }
  const std::string& id = s[2];
  const bool events = s.size() == 4 && s[3] == "events";
  const bool action =
      s.size() == 4 && (s[3] == "start" || s[3] == "pause" || s[3] == "resume" || s[3] == "stop");
  const bool log = s.size() == 6 && s[3] == "nodes" && s[5] == "log";
  if (s.size() != 3 && !events && !action && !log) return respond(not_found());
  if (!(action ? post : get)) return respond(MethodNotAllowed(action ? kPostRoute : kGetRoute));
  if (post_not_json) return respond(NotJson(request.content_type));
  if (id.size() > kMaxIdLength) return respond(NoSuchExecution(id));
  if (s.size() == 3) return respond(Get(id));
  if (events) return respond(Events(target, id));
  if (log) {
    if (s[4].size() > kMaxIdLength) {
      return respond(
          ErrorResponse(Status::NotFound("execution " + id + " has no node " + Excerpt(s[4]))));
    }
    return respond(Log(target, id, s[4]));
  }
  if (s[3] == "start") return respond(Start(request, id));
  if (s[3] == "stop") return Stop(request, id, std::move(respond));
  PauseOrResume(request, id, s[3] == "pause", std::move(respond));
}

Response RequestHandler::Health() const {
  Status journal = manager_.journal_health();
  Status busy = journal.ok() ? manager_.journal_busy() : Status::Ok();
  const size_t active = manager_.active_count();
  const std::string_view state = !journal.ok() ? "failed" : !busy.ok() ? "busy" : "ok";
  const std::string& error = !journal.ok() ? journal.message() : busy.message();
  HealthCache& cache = health_;
  if (!cache.valid || cache.active != active || cache.journal != state ||
      cache.journal_error != error || cache.shutting_down != shutting_down_) {
    json::object body;
    body["status"] = "ok";
    body["version"] = WARDEN_VERSION;
    body["activeExecutions"] = active;
    body["containment"] = process::ContainmentModeName(manager_.containment());
    body["journal"] = state;
    if (!error.empty()) body["journalError"] = error;
    if (shutting_down_) body["shuttingDown"] = true;
    cache = {true, active, std::string(state), error, shutting_down_, SerializeJson(body)};
  }
  Response response;
  response.status = 200;
  response.body = cache.body;
  return response;
}

Response RequestHandler::Metrics() const {
  Response response;
  response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  response.body = RenderMetrics(manager_, metrics_);
  return response;
}

Response RequestHandler::Create(const Request& request, const RequestTarget& target) {
  if (shutting_down_) return ShuttingDown();
  auto start = BoolParam(target, "start", true);
  if (!start.ok()) return ErrorResponse(start.status());
  auto created = manager_.Create(request.body, request.requester, *start);
  if (!created.ok()) return ErrorResponse(created.status());
  return JsonResponse(created->existing ? 200 : 201, ExecutionToJson(created->execution));
}

Response RequestHandler::List(const RequestTarget& target) const {
  auto state = target.Param("state").value_or("active");
  if (state != "active" && state != "all") {
    return ErrorResponse(
        Status::InvalidArgument("state: must be active or all, not '" + Excerpt(state) + "'"));
  }
  auto list = manager_.List(state == "all");
  if (!list.ok()) return ErrorResponse(list.status());
  json::array executions;
  for (const auto& execution : *list) {
    executions.push_back(ExecutionToJson(execution));
  }
  json::object body;
  body["executions"] = std::move(executions);
  return JsonResponse(200, body);
}

Response RequestHandler::Get(const std::string& id) const {
  return ExecutionResponse(200, manager_.Get(id));
}

Response RequestHandler::Start(const Request& request, const std::string& id) {
  if (shutting_down_) return ShuttingDown();
  auto started = manager_.Start(id, request.requester);
  return ExecutionResponse(200, started);
}

void RequestHandler::PauseOrResume(const Request& request, const std::string& id, bool pause,
                                   Responder respond) {
  if (!pause && shutting_down_) return respond(ShuttingDown());
  auto done = [respond = std::move(respond)](Result<ExecutionView> execution) {
    respond(ExecutionResponse(200, execution));
  };
  if (pause) {
    manager_.Pause(id, request.requester, std::move(done));
  } else {
    manager_.Resume(id, request.requester, std::move(done));
  }
}

void RequestHandler::Stop(const Request& request, std::string id, Responder respond) {
  auto body = ParseStopBody(request, id.empty());
  if (!body.ok()) return respond(ErrorResponse(body.status()));
  if (id.empty()) id = body->execution_id;
  if (id.size() > kMaxIdLength) return respond(NoSuchExecution(id));
  auto on_done = [respond](Result<lifecycle::StopResult> result) {
    if (!result.ok()) return respond(ErrorResponse(result.status()));
    respond(JsonResponse(200, StopResultToJson(*result)));
  };
  if (body->wait) {
    manager_.Stop(id, std::move(body->request), nullptr, std::move(on_done));
    return;
  }
  // wait=false: answer 202 as soon as the execution is stopping; if it never gets there (an
  // error, or an idle execution that stops at once) the final answer goes out instead.
  auto answered = std::make_shared<bool>(false);
  manager_.Stop(
      id, std::move(body->request),
      [respond, answered](Result<ExecutionView> execution) {
        if (std::exchange(*answered, true)) return;
        respond(ExecutionResponse(202, execution));
      },
      [on_done, answered](Result<lifecycle::StopResult> result) {
        if (std::exchange(*answered, true)) return;
        on_done(std::move(result));
      });
}

Response RequestHandler::Events(const RequestTarget& target, const std::string& id) {
  int64_t after = 0;
  if (auto text = target.Param("after")) {
    size_t used = 0;
    try {
      after = std::stoll(std::string(*text), &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != text->size() || after < 0) {
      return ErrorResponse(Status::InvalidArgument("after: must be a non-negative integer, not '" +
                                                   Excerpt(*text) + "'"));
    }
  }
  auto follow = BoolParam(target, "follow", false);
  if (!follow.ok()) return ErrorResponse(follow.status());
  if (*follow) {
    auto follower = EventFollower::Open(io_, manager_, id, after);
    if (!follower.ok()) return ErrorResponse(follower.status());
    Response response;
    response.content_type = "application/x-ndjson";
    response.stream = std::move(*follower);
    return response;
  }
  auto rows = manager_.ReadEvents(id, after);
  if (!rows.ok()) return ErrorResponse(rows.status());
  json::array events;
  events.reserve(rows->size());
  for (const auto& event : *rows) events.push_back(EventToJson(event));
  json::object body;
  body["events"] = std::move(events);
  return JsonResponse(200, body);
}

Response RequestHandler::Log(const RequestTarget& target, const std::string& id,
                             const std::string& node) const {
  auto stream = target.Param("stream").value_or("stdout");
  if (stream != "stdout" && stream != "stderr") {
    return ErrorResponse(
        Status::InvalidArgument("stream: must be stdout or stderr, not '" + Excerpt(stream) + "'"));
  }
  auto path = manager_.OutputPath(id, node, stream == "stderr");
  if (!path.ok()) return ErrorResponse(path.status());
  Response response;
  response.content_type = "text/plain; charset=utf-8";
  std::ifstream file(*path, std::ios::binary);
  if (!file) {
    // The capture file is made on the node's first byte: none means it wrote nothing.
    std::error_code ec;
    if (!std::filesystem::exists(*path, ec) && !ec) return response;
    return ErrorResponse(Status::Internal("cannot read the captured " + std::string(stream) +
                                          " of node " + node + " of execution " + id));
  }
  std::ostringstream content;
  content << file.rdbuf();
  response.body = std::move(content).str();
  return response;
}

}  // namespace warden::api
