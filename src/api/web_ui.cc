#include "api/web_ui.h"

#include <string>

namespace warden::api {

namespace {

// The path part of a request target: what precedes '?' or '#'; of an absolute target
// ("http://host/path"), the part after the authority.
std::string_view PathOf(std::string_view target) {
  target = target.substr(0, target.find_first_of("?#"));
  if (!target.empty() && target.front() != '/') {
    size_t scheme = target.find("://");
    if (scheme == std::string_view::npos) return target;
    size_t slash = target.find('/', scheme + 3);
    return slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  return target;
}

// True if the comma-separated entity-tag list `header` names `etag` (weak or strong: a
// GET compares weakly, RFC 9110 §13.1.2) or is "*".
bool ListsEtag(std::string_view header, std::string_view etag) {
  while (!header.empty()) {
    size_t comma = header.find(',');
    std::string_view tag = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    while (!tag.empty() && (tag.front() == ' ' || tag.front() == '\t')) tag.remove_prefix(1);
    while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\t')) tag.remove_suffix(1);
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    if (tag == "*" || tag == etag) return true;
  }
  return false;
}

}  // namespace

const WebUiFile* FindWebUiFile(std::string_view path) {
  std::string_view name;
  if (path == "/" || path == "/ui" || path == "/ui/") {
    name = "index.html";
  } else if (path.starts_with("/ui/")) {
    name = path.substr(4);
  } else {
    return nullptr;
  }
  for (const WebUiFile& file : EmbeddedWebUiFiles()) {
    if (file.name == name) return &file;
  }
  return nullptr;
}

bool IsWebUiRead(std::string_view method, std::string_view target) {
  return (method == "GET" || method == "HEAD") && FindWebUiFile(PathOf(target)) != nullptr;
}

Response WebUiResponse(const WebUiFile& file, std::string_view if_none_match) {
  Response response;
  response.content_type = std::string(file.content_type);
  if (!if_none_match.empty() && ListsEtag(if_none_match, file.etag)) {
    response.status = 304;
  } else {
    response.body = std::string(file.body);
  }
  response.headers = {
      {"ETag", std::string(file.etag)},
      {"Cache-Control", "no-cache"},
      {"Content-Security-Policy", std::string(kWebUiContentSecurityPolicy)},
      {"X-Content-Type-Options", "nosniff"},
      {"Referrer-Policy", "no-referrer"},
  };
  return response;
}

}  // namespace warden::api
