// Bearer tokens for the optional TCP listener (`wardend --listen … --token-file F`).
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "base/status.h"

namespace warden::api {

// Token -> name, from a file of `NAME:TOKEN` lines (blank lines and lines starting with '#'
// are skipped). NAME is what the journal records as `token:NAME`. InvalidArgument naming the
// line for a malformed one, an empty name or token, or a repeated token; IoError when the
// file cannot be read; InvalidArgument when it is readable by group or others or holds no
// token.
Result<std::map<std::string, std::string>> LoadTokenFile(const std::string& path);

// The name for `token` in `tokens`, or empty when it matches none. Compares every entry in
// time independent of where the strings differ.
std::string TokenName(const std::map<std::string, std::string>& tokens, std::string_view token);

}  // namespace warden::api
