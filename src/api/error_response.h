// The API's error bodies, `{"error":{"code":"…","message":"…"}}`, and the one place where a
// Status becomes an HTTP status code.
#pragma once

#include <string>
#include <string_view>

#include "api/http_message.h"
#include "base/status.h"

namespace warden::api {

// The HTTP status for `code`: InvalidArgument 400, NotFound 404, Conflict 409, TooLarge 413,
// Unavailable 503, anything else 500. (Ok maps to 200.)
int HttpStatusFor(StatusCode code);

// The error response for a failed Status: HttpStatusFor(status.code()), with the status
// code's name ("conflict", ...) and its message.
Response ErrorResponse(const Status& status);

// An error that is about HTTP itself rather than Warden's state: 401 unauthorized,
// 405 method_not_allowed, 415 unsupported_media_type and the like.
// A byte of `message` that is not part of well-formed UTF-8 (from a request it quotes) is
// written as U+FFFD, so that the body is valid JSON.
Response HttpErrorResponse(int http_status, std::string_view code, std::string_view message);

// What an error message quotes of the request (a path, an id, a parameter's value): `text`
// itself up to 64 bytes, else its first 64 bytes (never cutting a UTF-8 sequence) and "…",
// so that a client's megabyte-long id is not sent back whole.
std::string Excerpt(std::string_view text);

}  // namespace warden::api
