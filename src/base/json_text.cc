#include "base/json_text.h"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/serializer.hpp>
#include <boost/json/value_stack.hpp>
#include <charconv>
#include <cmath>

namespace warden {
namespace {

namespace json = boost::json;
using boost::system::error_code;

// Strings and keys go through Boost.JSON's own serializer (its escaping), one buffer at a
// time; everything else is written here.
class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}

  void Write(const json::value& v) {
    switch (v.kind()) {
      case json::kind::null:
        out_ += "null";
        return;
      case json::kind::bool_:
        out_ += v.get_bool() ? "true" : "false";
        return;
      case json::kind::int64:
        WriteInteger(v.get_int64());
        return;
      case json::kind::uint64:
        WriteInteger(v.get_uint64());
        return;
      case json::kind::double_:
        AppendJsonNumber(v.get_double(), out_);
        return;
      case json::kind::string:
        WriteString(v.get_string());
        return;
      case json::kind::array: {
        out_ += '[';
        bool first = true;
        for (const json::value& element : v.get_array()) {
          if (!first) out_ += ',';
          first = false;
          Write(element);
        }
        out_ += ']';
        return;
      }
      case json::kind::object: {
        out_ += '{';
        bool first = true;
        for (const json::key_value_pair& member : v.get_object()) {
          if (!first) out_ += ',';
          first = false;
          WriteString(member.key());
          out_ += ':';
          Write(member.value());
        }
        out_ += '}';
        return;
      }
    }
  }

 private:
  template <typename Integer>
  void WriteInteger(Integer i) {
    char buffer[24];
    auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, i);
    out_.append(buffer, end);
  }

  void WriteString(json::string_view s) {
    serializer_.reset(s);
    char buffer[256];
    while (!serializer_.done()) out_ += serializer_.read(buffer, sizeof buffer);
  }

  std::string& out_;
  json::serializer serializer_;
};

// The handler of Boost.JSON's own parser (a value_stack fed by every event), except that a
// number's text is collected and converted exactly.
class ExactNumberHandler {
 public:
  static constexpr size_t max_object_size = json::object::max_size();
  static constexpr size_t max_array_size = json::array::max_size();
  static constexpr size_t max_key_size = json::string::max_size();
  static constexpr size_t max_string_size = json::string::max_size();

  ExactNumberHandler() { stack_.reset(); }

  json::value Release() { return stack_.release(); }

  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }
  bool on_object_begin(error_code&) { return true; }
  bool on_object_end(size_t n, error_code&) {
    stack_.push_object(n);
    return true;
  }
  bool on_array_begin(error_code&) { return true; }
  bool on_array_end(size_t n, error_code&) {
    stack_.push_array(n);
    return true;
  }
  bool on_key_part(json::string_view s, size_t, error_code&) {
    stack_.push_chars(s);
    return true;
  }
  bool on_key(json::string_view s, size_t, error_code&) {
    stack_.push_key(s);
    return true;
  }
  bool on_string_part(json::string_view s, size_t, error_code&) {
    stack_.push_chars(s);
    return true;
  }
  bool on_string(json::string_view s, size_t, error_code&) {
    stack_.push_string(s);
    return true;
  }
  // A number split across buffers arrives in parts; the last part comes with its value.
  bool on_number_part(json::string_view s, error_code&) {
    number_.append(s.data(), s.size());
    return true;
  }
  bool on_int64(int64_t i, json::string_view s, error_code&) {
    // "-0" is the one integer spelling whose sign an int64 loses: it is a double's.
    const bool negative = number_.empty() ? !s.empty() && s.front() == '-' : number_.front() == '-';
    number_.clear();
    if (i == 0 && negative) {
      stack_.push_double(-0.0);
    } else {
      stack_.push_int64(i);
    }
    return true;
  }
  bool on_uint64(uint64_t u, json::string_view, error_code&) {
    number_.clear();
    stack_.push_uint64(u);
    return true;
  }
  bool on_double(double d, json::string_view s, error_code&) {
    if (number_.empty()) {
      stack_.push_double(JsonNumberToDouble(s, d));
    } else {
      number_.append(s.data(), s.size());
      stack_.push_double(JsonNumberToDouble(number_, d));
      number_.clear();
    }
    return true;
  }
  bool on_bool(bool b, error_code&) {
    stack_.push_bool(b);
    return true;
  }
  bool on_null(error_code&) {
    stack_.push_null();
    return true;
  }
  bool on_comment_part(json::string_view, error_code&) { return true; }
  bool on_comment(json::string_view, error_code&) { return true; }

 private:
  json::value_stack stack_;
  std::string number_;  // the parts of a number seen so far
};

}  // namespace

std::string SerializeJson(const json::value& value) {
  std::string out;
  AppendJson(value, out);
  return out;
}

void AppendJson(const json::value& value, std::string& out) { Writer(out).Write(value); }

void AppendJsonNumber(double number, std::string& out) {
  if (!std::isfinite(number)) {
    out += "null";
    return;
  }
  // Without a precision, std::to_chars writes the shortest digits that read back as the
  // same double, in the notation asked for.
  const double magnitude = std::fabs(number);
  const std::chars_format notation = magnitude == 0 || (magnitude >= 1e-7 && magnitude < 1e21)
                                         ? std::chars_format::fixed
                                         : std::chars_format::scientific;
  char buffer[64];  // enough: fixed notation is used below 1e21 and from 1e-7 only
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, number, notation);
  if (ec != std::errc()) {
    out += "null";
    return;
  }
  out.append(buffer, end);
}

json::value ParseJson(std::string_view text, error_code& ec) {
  json::basic_parser<ExactNumberHandler> parser(json::parse_options{});
  ec = {};
  const size_t consumed = parser.write_some(false, text.data(), text.size(), ec);
  if (!ec && consumed < text.size()) ec = json::make_error_code(json::error::extra_data);
  if (ec) return nullptr;
  return parser.handler().Release();
}

double JsonNumberToDouble(std::string_view text, double approximate) {
  double exact = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), exact);
  if (ec != std::errc() || end != text.data() + text.size()) return approximate;
  return exact;
}

}  // namespace warden
