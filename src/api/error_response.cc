#include "api/error_response.h"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace warden::api {

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kConflict:
      return 409;
    case StatusCode::kTooLarge:
      return 413;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kIoError:
    case StatusCode::kCorruption:
    case StatusCode::kInternal:
      return 500;
  }
  return 500;
}

Response ErrorResponse(const Status& status) {
  return HttpErrorResponse(HttpStatusFor(status.code()), StatusCodeName(status.code()),
                           status.message());
}

Response HttpErrorResponse(int http_status, std::string_view code, std::string_view message) {
  boost::json::object error;
  error["code"] = code;
  error["message"] = message;
  boost::json::object body;
  body["error"] = std::move(error);
  Response response;
  response.status = http_status;
  response.body = boost::json::serialize(body);
  return response;
}

std::string Excerpt(std::string_view text) {
  constexpr size_t kMaxBytes = 64;
  if (text.size() <= kMaxBytes) return std::string(text);
  size_t cut = kMaxBytes;
  // Back up to the start of a UTF-8 sequence (a byte that is not 10xxxxxx).
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return std::string(text.substr(0, cut)) + "\u2026";
}

}  // namespace warden::api
