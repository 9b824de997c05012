#include "process/proc_stat.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <string>

#include "process/unique_fd.h"

namespace warden::process {
namespace {

// Reads a small /proc file in one go; /proc files are generated on read, so one read of a
// large enough buffer sees a consistent snapshot.
Result<std::string> ReadSmallFile(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    int err = errno;
    if (err == ENOENT || err == ESRCH) return Status::NotFound(path.string() + " does not exist");
    return Status::FromErrno("open " + path.string(), err);
  }
  std::string text(4096, '\0');
  ssize_t n;
  do {
    n = ::read(fd.get(), text.data(), text.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    int err = errno;
    if (err == ESRCH) return Status::NotFound(path.string() + " vanished");
    return Status::FromErrno("read " + path.string(), err);
  }
  text.resize(static_cast<size_t>(n));
  return text;
}

template <typename T>
bool ParseNumber(std::string_view token, T* out) {
  auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), *out);
  return ec == std::errc() && ptr == token.data() + token.size();
}

}  // namespace

Result<ProcStat> ParseProcStat(std::string_view text) {
  ProcStat stat;
  size_t open = text.find('(');
  size_t close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open ||
      !ParseNumber(text.substr(0, open > 0 ? open - 1 : 0), &stat.pid)) {
    return Status::Corruption("malformed /proc stat line");
  }
  // Fields after ")": index 0 is field 3 (state), so field N is index N - 3.
  std::string_view rest = text.substr(close + 1);
  int index = 0;
  bool ok = true;
  while (!rest.empty() && index <= 19) {
    size_t start = rest.find_first_not_of(' ');
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    size_t end = rest.find_first_of(" \n");
    std::string_view token = rest.substr(0, end);
    switch (index) {
      case 0:
        stat.state = token.empty() ? '?' : token[0];
        break;
      case 1:
        ok &= ParseNumber(token, &stat.ppid);
        break;
      case 2:
        ok &= ParseNumber(token, &stat.pgrp);
        break;
      case 3:
        ok &= ParseNumber(token, &stat.session);
        break;
      case 19:
        ok &= ParseNumber(token, &stat.start_ticks);
        break;
      default:
        break;
    }
    ++index;
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  }
  if (!ok || index <= 19) return Status::Corruption("malformed /proc stat fields");
  return stat;
}

Result<ProcStat> ReadProcStat(pid_t pid, const std::filesystem::path& proc_root) {
  Result<std::string> text = ReadSmallFile(proc_root / std::to_string(pid) / "stat");
  if (!text.ok()) return text.status();
  return ParseProcStat(*text);
}

Result<std::string> ReadBootId(const std::filesystem::path& proc_root) {
  Result<std::string> text = ReadSmallFile(proc_root / "sys/kernel/random/boot_id");
  if (!text.ok()) return text.status();
  std::string id = std::move(text).value();
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  if (id.empty()) return Status::Corruption("empty boot_id");
  return id;
}

}  // namespace warden::process
