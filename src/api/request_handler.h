// RequestHandler: every endpoint of api.md's HTTP API, as a function from Request to
// Response with no socket in sight (the server in http_server.h does the wire).
//
// It validates the request (where it comes from — Host, Origin, Sec-Fetch-Site, see
// request_origin.h —, method, query, Content-Type, body), calls the ExecutionManager
// and turns the answer into api.md's JSON; every failure becomes an error body through
// ErrorResponse (error_response.h). It never touches processes or SQLite itself: history and
// journal rows come through the manager too.
//
// Threading: the io thread only (the manager's). `respond` is called exactly once per
// request: synchronously for reads and create/start, later for pause, resume and stop.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <string>

#include "api/http_message.h"
#include "api/metrics.h"
#include "api/request_target.h"
#include "lifecycle/execution_manager.h"

namespace warden::api {

struct HandlerOptions {
  size_t max_body_bytes = 4u << 20;  // bigger request bodies get 413
};

class RequestHandler {
 public:
  // Everything passed in must outlive the handler.
  RequestHandler(boost::asio::io_context& io, lifecycle::ExecutionManager& manager,
                 DaemonMetrics& metrics, HandlerOptions options = {});

  // Answers `request` through `respond` (exactly once; see above).
  void Handle(Request request, Responder respond);

  // The daemon is shutting down: from now on requests that would start new work (create,
  // start, resume) get 503; reads, pauses and stops are still served.
  void BeginShutdown() { shutting_down_ = true; }

  const HandlerOptions& options() const { return options_; }

 private:
  void Route(const Request& request, const RequestTarget& target, Responder& respond);
  Response Health() const;
  Response Metrics() const;
  Response Create(const Request& request, const RequestTarget& target);
  Response List(const RequestTarget& target) const;
  Response Get(const std::string& id) const;
  Response Start(const Request& request, const std::string& id);
  void PauseOrResume(const Request& request, const std::string& id, bool pause, Responder respond);
  void Stop(const Request& request, std::string id, Responder respond);
  Response Events(const RequestTarget& target, const std::string& id);
  Response Log(const RequestTarget& target, const std::string& id, const std::string& node) const;

  boost::asio::io_context& io_;
  lifecycle::ExecutionManager& manager_;
  DaemonMetrics& metrics_;
  const HandlerOptions options_;
  bool shutting_down_ = false;

  // The last health answer and what it was made of: a load balancer's probes get the same
  // bytes until something in them changes.
  struct HealthCache {
    bool valid = false;
    size_t active = 0;
    std::string journal;  // "ok", "busy" or "failed"
    std::string journal_error;
    bool shutting_down = false;
    std::string body;
  };
  mutable HealthCache health_;
};

}  // namespace warden::api
