// libFuzzer target: journal record decoding (records.h), as recovery and history read the
// journal. The input is one row: its kind up to the first newline, its payload after it.
// A payload that decodes is encoded again (what Warden would write for that record); if that
// encoding decodes, it must be a fixed point: same kind, and written again the same.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "journal/event.h"
#include "journal/records.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace warden::journal;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t newline = input.find('\n');
  Event event;
  event.kind = std::string(input.substr(0, newline));
  event.payload = newline == std::string_view::npos ? "" : std::string(input.substr(newline + 1));

  warden::Result<Record> record = DecodeFrom(event);
  if (!record.ok()) return 0;
  if (KindOf(*record) != event.kind) __builtin_trap();

  Event written;
  EncodeTo(*record, written);
  if (written.kind != event.kind) __builtin_trap();
  // A decoded record may hold what Warden never writes (an infinite cost, a negative start
  // time), which its encoding cannot carry back: only an encoding that decodes is judged.
  warden::Result<Record> reread = DecodeFrom(written);
  if (!reread.ok()) return 0;
  if (reread->index() != record->index()) __builtin_trap();
  Event rewritten;
  EncodeTo(*reread, rewritten);
  if (rewritten.kind != written.kind || rewritten.payload != written.payload) __builtin_trap();
  return 0;
}
