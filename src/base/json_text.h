// JSON text as Warden writes and reads it: in answers, journal payloads, the journaled spec
// and the CLI's --json output.
//
// Numbers are the point. Boost.JSON 1.81 writes a double in exponent form (0.01 as "1E-2", 0
// as "0E0") and reads a number of more than about 15 significant digits to a neighbouring
// double. Here a double is written as the shortest decimal that reads back as the same
// double, and read back exactly, so that a value is bit-identical on every path (journal,
// API, events, CLI) and spelled the way people and other JSON libraries spell it.
// Thread-safety: pure functions.
#pragma once

#include <boost/json/value.hpp>
#include <boost/system/error_code.hpp>
#include <string>
#include <string_view>

namespace warden {

// `value` as compact JSON text: what boost::json::serialize writes, except for doubles.
// A double is the shortest decimal that reads back as the same double: in plain notation
// when its magnitude is 0 or from 1e-7 up to (not including) 1e21 — "0", "0.012005", "2.5",
// "100000000000000000000" — and in exponent notation outside that range — "1e-08",
// "1e+300" — as JavaScript's JSON.stringify does; negative zero is "-0". A NaN or an
// infinity, which JSON cannot hold, is written as null. Integers (int64, uint64) are written
// as integers. Throws only std::bad_alloc.
std::string SerializeJson(const boost::json::value& value);

// Appends SerializeJson(value) to `out`.
void AppendJson(const boost::json::value& value, std::string& out);

// Appends the JSON text of one double to `out`, as SerializeJson writes it.
void AppendJsonNumber(double number, std::string& out);

// Parses one JSON document, as boost::json::parse(text, ec) does, except for numbers: one
// with a fraction or an exponent becomes the double nearest to its decimal value, and "-0"
// becomes the double -0 (other integers stay int64 or uint64). On a syntax error sets `ec`
// and returns null. Throws only std::bad_alloc.
boost::json::value ParseJson(std::string_view text, boost::system::error_code& ec);

// The double nearest to the JSON number `text` (a complete number token, such as
// "0.10198063705999999" or "1E-2"). `approximate` is returned when `text` is beyond the
// range of a double (it is what Boost.JSON computed: an infinity, or 0).
double JsonNumberToDouble(std::string_view text, double approximate);

}  // namespace warden
