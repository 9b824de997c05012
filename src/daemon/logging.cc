#include "daemon/logging.h"

#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <memory>

namespace warden::daemon {

namespace {

constexpr size_t kLogFileBytes = 10u << 20;
constexpr size_t kLogFiles = 3;

std::string log_path;  // empty until AddLogFile

Result<spdlog::sink_ptr> OpenFileSink() {
  try {
    return spdlog::sink_ptr(
        std::make_shared<spdlog::sinks::rotating_file_sink_mt>(log_path, kLogFileBytes, kLogFiles));
  } catch (const spdlog::spdlog_ex& e) {
    return Status::IoError("cannot open log file " + log_path + ": " + e.what());
  }
}

}  // namespace

Status SetUpLogging(const std::string& level) {
  auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") {
    return Status::InvalidArgument("--log-level: unknown level '" + level +
                                   "' (trace, debug, info, warn, error, critical, off)");
  }
  auto logger = spdlog::stderr_color_mt("wardend");
  spdlog::set_default_logger(logger);
  spdlog::set_level(parsed);
  spdlog::flush_on(spdlog::level::info);
  return Status::Ok();
}

Status AddLogFile(const std::string& data_dir) {
  log_path = data_dir + "/wardend.log";
  auto sink = OpenFileSink();
  if (!sink.ok()) return sink.status();
  spdlog::default_logger()->sinks().push_back(*sink);
  return Status::Ok();
}

Status ReopenLogFile() {
  if (log_path.empty()) return Status::Ok();
  auto& sinks = spdlog::default_logger()->sinks();
  if (sinks.size() < 2) return Status::Ok();
  auto sink = OpenFileSink();
  if (!sink.ok()) return sink.status();
  sinks[1] = *sink;
  return Status::Ok();
}

}  // namespace warden::daemon
