// ParseStrictJson: Boost.JSON parsing that also rejects repeated keys in an object, and reads
// numbers exactly.
//
// Boost.JSON keeps the last of repeated keys silently; in a spec that would drop a field
// (a second "needs" replacing the first) without a word, so the spec parser refuses them.
// A number with a fraction or an exponent becomes the double nearest to it, as ParseJson
// (base/json_text.h) reads it, so a `costPerSecondUsd` is journaled as the client wrote it.
#pragma once

#include <string_view>

#include <boost/json/storage_ptr.hpp>
#include <boost/json/value.hpp>

#include "base/status.h"

namespace warden::dag {

// Parses `text` as one JSON document into memory from `storage`. Never throws. Returns
// InvalidArgument saying where: `invalid JSON at line 2, column 14: syntax error`, or
// `invalid JSON at line 4, column 9: duplicate key "needs"` (lines and columns from 1,
// columns in bytes; a repeated key is pointed at by its closing quote).
Result<boost::json::value> ParseStrictJson(std::string_view text,
                                           boost::json::storage_ptr storage = {});

}  // namespace warden::dag
