// The subcommands of `warden` that talk to wardend (api.md, "Command line"). Each takes
// the arguments after its name and returns the process exit status.
#pragma once

#include <boost/program_options.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "daemon_client.h"

namespace warden::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // the daemon refused, or the execution failed
inline constexpr int kExitStopped = 2;
inline constexpr int kExitUsage = 64;
inline constexpr int kExitDataError = 65;  // EX_DATAERR: a spec that is not JSON or is refused
inline constexpr int kExitUnavailable = 69;
inline constexpr int kExitInterrupted = 130;

using Args = std::vector<std::string>;

int Ps(const DaemonClient& client, const Args& args);
int Show(const DaemonClient& client, const Args& args);
int Stop(const DaemonClient& client, const Args& args);
// `pause ID` or `resume ID` (`action` is "pause" or "resume").
int PauseOrResume(const DaemonClient& client, const std::string& action, const Args& args);
int Logs(const DaemonClient& client, const Args& args);
int Events(const DaemonClient& client, const Args& args);
// Defined in run_command.cc.
int Run(const DaemonClient& client, const Args& args);

// Parses a subcommand's `args`: `options` (to which it adds --help), then the positional
// arguments `names`, each required (a missing one is named as the usage line shows it, e.g.
// "missing ID"). A positional "id" must pass IsExecutionId and a positional "node" must not
// be empty. Returns the exit status when the command is done already: 0 after printing the
// help (`usage`, the options, then `help_more`) to stdout for --help, kExitUsage after
// printing a usage error to stderr; nullopt when the command goes on.
std::optional<int> ParseArgs(const Args& args, boost::program_options::options_description& options,
                             const std::vector<std::string>& names,
                             boost::program_options::variables_map& vm, const std::string& usage,
                             std::string_view help_more = {});
// True for what can be an execution id: 1 to 128 ASCII letters, digits, '-' and '_' (wardend
// makes 22 hex digits; the contract calls ids opaque, so only the alphabet is checked).
bool IsExecutionId(std::string_view id);
// Prints "warden: MESSAGE" for a failed call and returns 69 (daemon unreachable) or 1.
int ReportFailure(const Status& status);
// Prints the daemon's error message for a non-2xx reply and returns 1.
int ReportErrorReply(const HttpReply& reply);
// Percent-encodes `text` for a path segment or query value.
std::string UrlEncode(const std::string& text);

}  // namespace warden::cli
