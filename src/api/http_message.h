// Request and Response: the HTTP exchange as plain values, free of Beast, so that request
// handling is a function tested without sockets (request_handler.h) and only the server
// (http_server.cc) knows the wire format.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "lifecycle/execution_view.h"

namespace warden::api {

class ListenerNames;  // request_origin.h

struct Request {
  std::string method;            // "GET", "POST", ... as sent
  std::string target;            // as sent: "/path?query", or absolute "http://host/path?query"
  std::string content_type;      // the Content-Type header; empty when absent
  std::string content_encoding;  // the Content-Encoding header(s), comma-joined; empty when absent
  std::string host;              // the Host header; empty when absent (HTTP/1.0)
  std::string origin;            // the Origin header; empty when absent
  std::string sec_fetch_site;    // the Sec-Fetch-Site header; empty when absent
  std::string if_none_match;     // the If-None-Match header(s), comma-joined; empty when absent
  std::string body;
  lifecycle::Requester requester;  // who is asking (set by the server from the connection)
  // The names of the listener the request came in on (request_origin.h); null: any name
  // (the Unix socket).
  std::shared_ptr<const ListenerNames> listener;
};

// A response body produced over time, sent with chunked transfer encoding (the
// `events?follow=true` stream). Owned by the connection that sends it: destroying it stops
// the production (and whatever subscription feeds it).
class ChunkStream {
 public:
  virtual ~ChunkStream() = default;
  // Starts production. `on_chunk` receives each piece in order, `on_end` once after the last
  // one; neither is called after the stream is destroyed, nor inside Start itself (the io
  // thread posts them). Called once.
  virtual void Start(std::function<void(std::string)> on_chunk, std::function<void()> on_end) = 0;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;                     // the whole body, or (with `stream`) nothing
  std::shared_ptr<ChunkStream> stream;  // set: the body is streamed chunk by chunk
  std::string allow;                    // the Allow header of a 405; empty otherwise
  std::string accept_encoding;          // the Accept-Encoding header of a 415; empty otherwise
  // Further header fields (name, value), set on the answer as they are; one named here
  // replaces the server's default of the same name (Content-Security-Policy,
  // X-Content-Type-Options).
  std::vector<std::pair<std::string, std::string>> headers;
};

// Called exactly once with the answer to one request, on the io thread.
using Responder = std::function<void(Response)>;

}  // namespace warden::api
