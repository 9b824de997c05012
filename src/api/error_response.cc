#include "api/error_response.h"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <cstdint>

namespace warden::api {

namespace {

// The length of the well-formed UTF-8 sequence at the start of `text` (RFC 3629: no
// overlong form, no surrogate, nothing above U+10FFFF), or 0 when there is none.
size_t Utf8SequenceLength(std::string_view text) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  const size_t n = lead < 0x80           ? 1
                   : (lead >> 5) == 0x6  ? 2
                   : (lead >> 4) == 0xE  ? 3
                   : (lead >> 3) == 0x1E ? 4
                                         : 0;
  if (n == 0 || n > text.size()) return 0;
  if (n == 1) return 1;
  uint32_t code_point = lead & (0x7F >> n);
  for (size_t i = 1; i < n; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
    code_point = code_point << 6 | (byte(i) & 0x3F);
  }
  constexpr uint32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};
  const bool valid = code_point >= kSmallest[n] && code_point <= 0x10FFFF &&
                     (code_point < 0xD800 || code_point > 0xDFFF);
  return valid ? n : 0;
}

// `text` with every byte that is not part of a well-formed UTF-8 sequence replaced by U+FFFD.
std::string ValidUtf8(std::string_view text) {
  std::string valid;
  valid.reserve(text.size());
  while (!text.empty()) {
    const size_t n = Utf8SequenceLength(text);
    if (n == 0) {
      valid += "\uFFFD";
      text.remove_prefix(1);
    } else {
      valid.append(text.substr(0, n));
      text.remove_prefix(n);
    }
  }
  return valid;
}

}  // namespace

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
  // Messages quote the request (a path, an id), whose bytes need not be UTF-8; JSON must be.
  error["message"] = ValidUtf8(message);
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
