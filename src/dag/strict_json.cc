#include "dag/strict_json.h"

#include <algorithm>
#include <string>
#include <unordered_set>
#include <vector>

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/value_stack.hpp>

#include "base/json_text.h"

namespace warden::dag {
namespace {

namespace json = boost::json;
using boost::system::error_code;

// The handler Boost.JSON's own parser uses (a value_stack fed by every event), plus one set
// of keys per open object to catch repeats, numbers read exactly (JsonNumberToDouble), and
// the path of the value being read, for the message about a string that is not UTF-8.
class StrictHandler {
 public:
  static constexpr size_t max_object_size = json::object::max_size();
  static constexpr size_t max_array_size = json::array::max_size();
  static constexpr size_t max_key_size = json::string::max_size();
  static constexpr size_t max_string_size = json::string::max_size();

  explicit StrictHandler(json::storage_ptr storage) { stack_.reset(std::move(storage)); }

  json::value Release() { return stack_.release(); }
  const std::string& duplicate_key() const { return duplicate_key_; }

  // Where the parser is: "nodes[0].argv[1]" (empty at the top level).
  std::string Path() const {
    std::string path;
    for (const Frame& frame : path_) {
      if (frame.array) {
        path += "[" + std::to_string(frame.index) + "]";
      } else if (!frame.key.empty()) {
        path += (path.empty() ? "" : ".") + frame.key;
      }
    }
    return path;
  }

  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }
  bool on_object_begin(error_code&) {
    keys_.emplace_back();
    path_.push_back({false, 0, {}});
    return true;
  }
  bool on_object_end(size_t n, error_code&) {
    keys_.pop_back();
    path_.pop_back();
    stack_.push_object(n);
    return ValueDone();
  }
  bool on_array_begin(error_code&) {
    path_.push_back({true, 0, {}});
    return true;
  }
  bool on_array_end(size_t n, error_code&) {
    path_.pop_back();
    stack_.push_array(n);
    return ValueDone();
  }
  bool on_key_part(json::string_view s, size_t, error_code&) {
    stack_.push_chars(s);
    key_.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, size_t, error_code& ec) {
    key_.append(s.data(), s.size());
    if (!keys_.back().insert(key_).second) {
      duplicate_key_ = std::move(key_);
      ec = boost::system::errc::make_error_code(boost::system::errc::invalid_argument);
      return false;
    }
    path_.back().key = std::move(key_);
    key_.clear();
    stack_.push_key(s);
    return true;
  }
  bool on_string_part(json::string_view s, size_t, error_code&) {
    stack_.push_chars(s);
    return true;
  }
  bool on_string(json::string_view s, size_t, error_code&) {
    stack_.push_string(s);
    return ValueDone();
  }
  bool on_number_part(json::string_view s, error_code&) {
    number_.append(s.data(), s.size());
    return true;
  }
  bool on_int64(int64_t i, json::string_view, error_code&) {
    number_.clear();
    stack_.push_int64(i);
    return ValueDone();
  }
  bool on_uint64(uint64_t u, json::string_view, error_code&) {
    number_.clear();
    stack_.push_uint64(u);
    return ValueDone();
  }
  bool on_double(double d, json::string_view s, error_code&) {
    number_.append(s.data(), s.size());
    stack_.push_double(JsonNumberToDouble(number_, d));
    number_.clear();
    return ValueDone();
  }
  bool on_bool(bool b, error_code&) {
    stack_.push_bool(b);
    return ValueDone();
  }
  bool on_null(error_code&) {
    stack_.push_null();
    return ValueDone();
  }
  bool on_comment_part(json::string_view, error_code&) { return true; }
  bool on_comment(json::string_view, error_code&) { return true; }

 private:
  // One per open object or array: an array's index of the element being read, an object's
  // key of the member being read.
  struct Frame {
    bool array;
    size_t index;
    std::string key;
  };

  // A value is complete: the enclosing array moves on to its next element.
  bool ValueDone() {
    if (!path_.empty() && path_.back().array) ++path_.back().index;
    return true;
  }

  json::value_stack stack_;
  std::vector<Frame> path_;
  std::vector<std::unordered_set<std::string>> keys_;  // one per open object
  std::string key_;                                    // the key being read
  std::string number_;                                 // the number being read
  std::string duplicate_key_;
};

// "line L, column C" (both from 1) of byte `offset` in `text`.
std::string Position(std::string_view text, size_t offset) {
  offset = std::min(offset, text.size());
  std::string_view before = text.substr(0, offset);
  size_t line = 1 + std::count(before.begin(), before.end(), '\n');
  size_t last_newline = before.rfind('\n');
  size_t column = last_newline == std::string_view::npos ? offset + 1 : offset - last_newline;
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

// The offset of the first byte of `text` that is not part of a well-formed UTF-8 sequence
// (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), or npos.
size_t FirstInvalidUtf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    auto byte = [&](size_t at) { return static_cast<unsigned char>(text[at]); };
    unsigned char c = byte(i);
    size_t length = c < 0x80           ? 1
                    : (c >> 5) == 0x6  ? 2
                    : (c >> 4) == 0xE  ? 3
                    : (c >> 3) == 0x1E ? 4
                                       : 0;
    if (length == 0 || i + length > text.size()) return i;
    for (size_t k = 1; k < length; ++k) {
      if ((byte(i + k) & 0xC0) != 0x80) return i;
    }
    if ((length == 2 && c < 0xC2) || (length == 3 && c == 0xE0 && byte(i + 1) < 0xA0) ||
        (length == 3 && c == 0xED && byte(i + 1) >= 0xA0) ||
        (length == 4 && c == 0xF0 && byte(i + 1) < 0x90) ||
        (length == 4 && (c > 0xF4 || (c == 0xF4 && byte(i + 1) >= 0x90)))) {
      return i;
    }
    i += length;
  }
  return std::string_view::npos;
}

}  // namespace

Result<json::value> ParseStrictJson(std::string_view text, json::storage_ptr storage) {
  try {
    json::basic_parser<StrictHandler> parser(json::parse_options{}, std::move(storage));
    error_code ec;
    size_t consumed = parser.write_some(false, text.data(), text.size(), ec);
    if (!ec && consumed < text.size()) ec = json::make_error_code(json::error::extra_data);
    if (ec) {
      std::string what = parser.handler().duplicate_key().empty()
                             ? ec.message()
                             : "duplicate key \"" + parser.handler().duplicate_key() + "\"";
      // The parser stops at (or just after) a byte that is not UTF-8: say so, and where.
      size_t invalid = FirstInvalidUtf8(text.substr(0, std::min(text.size(), consumed + 4)));
      if (ec == json::error::syntax && invalid <= consumed) {
        std::string path = parser.handler().Path();
        what = (path.empty() ? "" : path + ": ") + "invalid UTF-8";
        consumed = invalid;
      }
      return Status::InvalidArgument("invalid JSON at " + Position(text, consumed) + ": " + what);
    }
    return parser.handler().Release();
  } catch (const std::exception& e) {  // std::bad_alloc from the value stack
    return Status::Internal(std::string("parsing JSON: ") + e.what());
  }
}

}  // namespace warden::dag
