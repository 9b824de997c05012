#include "process/spawner.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace warden::process {
namespace {

constexpr size_t kStackSize = 256 * 1024;

// Where the child stopped, shared with the parent through the common address space.
enum class Stage : int {
  kNone = 0,
  kSignals,
  kSetsid,
  kCgroup,
  kCredentials,
  kNoNewPrivs,
  kChdir,
  kStdio,
  kCloseRange,
  kExec,
};

const char* StageName(Stage stage) {
  switch (stage) {
    case Stage::kNone:
      return "none";
    case Stage::kSignals:
      return "reset signals";
    case Stage::kSetsid:
      return "setsid";
    case Stage::kCgroup:
      return "join cgroup";
    case Stage::kCredentials:
      return "switch user";
    case Stage::kNoNewPrivs:
      return "set no_new_privs";
    case Stage::kChdir:
      return "chdir";
    case Stage::kStdio:
      return "set up stdio";
    case Stage::kCloseRange:
      return "close descriptors";
    case Stage::kExec:
      return "exec";
  }
  return "?";
}

// Everything the child reads, laid out by the parent before clone.
struct ChildContext {
  const char* const* argv;
  const char* const* env;
  const char* const* candidates;  // null-terminated
  const char* cwd;
  int fds[3];  // targets 1, 2, kNotifyFd
  int cgroup_procs_fd;
  bool switch_user;
  uid_t uid;
  gid_t gid;
  const gid_t* groups;
  size_t group_count;
  // Written by the child on failure.
  Stage failed_stage;
  int failed_errno;
};

// The kernel's struct sigaction for rt_sigaction: SIG_DFL with no flags is all zeros
// whatever the architecture's field order.
struct KernelSigaction {
  unsigned long words[4];
};

#define WARDEN_CHILD_CODE __attribute__((no_sanitize("address", "thread", "undefined")))

// A raw system call: returns -1 and sets errno (the parent's, shared; the parent restores it).
WARDEN_CHILD_CODE inline long Sys(long number, long a = 0, long b = 0, long c = 0, long d = 0) {
  return ::syscall(number, a, b, c, d);
}

WARDEN_CHILD_CODE int ChildMain(void* arg) {
  auto* ctx = static_cast<ChildContext*>(arg);
  // A macro, not a lambda: a lambda is a separate function the sanitizers would instrument.
#define fail(stage)                 \
  do {                              \
    ctx->failed_errno = errno;      \
    ctx->failed_stage = (stage);    \
    ::syscall(SYS_exit_group, 127); \
    __builtin_unreachable();        \
  } while (false)

  // Dispositions: the daemon's handlers point into its memory and its ignored signals would
  // be inherited through exec; every one goes back to the default.
  static const KernelSigaction dfl{};
  for (int sig = 1; sig < _NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    Sys(SYS_rt_sigaction, sig, reinterpret_cast<long>(&dfl), 0, _NSIG / 8);
  }
  if (Sys(SYS_setsid) < 0) fail(Stage::kSetsid);
  if (ctx->cgroup_procs_fd >= 0 &&
      Sys(SYS_write, ctx->cgroup_procs_fd, reinterpret_cast<long>("0"), 1) < 0) {
    fail(Stage::kCgroup);
  }
  if (ctx->switch_user) {
    // Raw set*id calls change only this (single-threaded) child, which is what we want.
    if (Sys(SYS_setgroups, static_cast<long>(ctx->group_count),
            reinterpret_cast<long>(ctx->groups)) < 0 ||
        Sys(SYS_setresgid, ctx->gid, ctx->gid, ctx->gid) < 0 ||
        Sys(SYS_setresuid, ctx->uid, ctx->uid, ctx->uid) < 0) {
      fail(Stage::kCredentials);
    }
  }
  if (Sys(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0) < 0) fail(Stage::kNoNewPrivs);
  if (Sys(SYS_chdir, reinterpret_cast<long>(ctx->cwd)) < 0) fail(Stage::kChdir);

  // Sources may sit on 0..3 themselves: move them above first so no dup2 clobbers another.
  int sources[3];
  for (int i = 0; i < 3; ++i) {
    sources[i] = static_cast<int>(Sys(SYS_fcntl, ctx->fds[i], F_DUPFD, kNotifyFd + 1));
    if (sources[i] < 0) fail(Stage::kStdio);
  }
  int null_fd =
      static_cast<int>(Sys(SYS_openat, AT_FDCWD, reinterpret_cast<long>("/dev/null"), O_RDONLY));
  if (null_fd < 0) fail(Stage::kStdio);
  const int targets[3] = {1, 2, kNotifyFd};
  if (Sys(SYS_dup3, null_fd, 0, 0) < 0 && null_fd != 0) fail(Stage::kStdio);
  for (int i = 0; i < 3; ++i) {
    if (Sys(SYS_dup3, sources[i], targets[i], 0) < 0) fail(Stage::kStdio);
  }
  if (Sys(SYS_close_range, kNotifyFd + 1, ~0U, 0) < 0) fail(Stage::kCloseRange);

  static const unsigned long empty_mask[2] = {0, 0};
  Sys(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(empty_mask), 0, _NSIG / 8);

  // execvp's rules without its shell fallback: ENOENT-like errors move on to the next
  // directory, EACCES is remembered, anything else stops the search.
  bool saw_eacces = false;
  for (const char* const* path = ctx->candidates; *path != nullptr; ++path) {
    Sys(SYS_execve, reinterpret_cast<long>(*path), reinterpret_cast<long>(ctx->argv),
        reinterpret_cast<long>(ctx->env));
    int err = errno;
    if (err == EACCES) {
      saw_eacces = true;
    } else if (err != ENOENT && err != ENOTDIR && err != ESTALE && err != ENODEV &&
               err != ETIMEDOUT) {
      fail(Stage::kExec);
    }
  }
  if (saw_eacces) errno = EACCES;
  fail(Stage::kExec);
#undef fail
}

std::vector<const char*> CStrings(const std::vector<std::string>& strings) {
  std::vector<const char*> out;
  out.reserve(strings.size() + 1);
  for (const std::string& s : strings) out.push_back(s.c_str());
  out.push_back(nullptr);
  return out;
}

}  // namespace

Spawner::Spawner() {
  void* stack = ::mmap(nullptr, kStackSize, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  stack_ = stack == MAP_FAILED ? nullptr : stack;
}

Spawner::~Spawner() {
  if (stack_ != nullptr) ::munmap(stack_, kStackSize);
}

Result<SpawnedChild> Spawner::Spawn(const SpawnRequest& request) {
  if (stack_ == nullptr) return Status::Internal("no stack for the spawn child");
  if (request.argv.empty() || request.exec_candidates.empty()) {
    return Status::InvalidArgument("empty argv");
  }
  std::vector<const char*> argv = CStrings(request.argv);
  std::vector<const char*> env = CStrings(request.env);
  std::vector<const char*> candidates = CStrings(request.exec_candidates);

  ChildContext ctx{};
  ctx.argv = argv.data();
  ctx.env = env.data();
  ctx.candidates = candidates.data();
  ctx.cwd = request.cwd.c_str();
  ctx.fds[0] = request.stdout_fd;
  ctx.fds[1] = request.stderr_fd;
  ctx.fds[2] = request.notify_fd;
  ctx.cgroup_procs_fd = request.cgroup_procs_fd;
  if (request.credentials) {
    ctx.switch_user = true;
    ctx.uid = request.credentials->uid;
    ctx.gid = request.credentials->gid;
    ctx.groups = request.credentials->groups.data();
    ctx.group_count = request.credentials->groups.size();
  }
  ctx.failed_stage = Stage::kNone;

  // Blocked signals keep the daemon's handlers from running on the child's side of the
  // shared memory before it has reset them; the child unblocks just before exec.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int pidfd = -1;
  char* stack_top = static_cast<char*>(stack_) + kStackSize;
  int saved_errno = errno;
  pid_t pid =
      ::clone(ChildMain, stack_top, CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &ctx, &pidfd);
  int clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) return Status::FromErrno("clone", clone_errno);
  errno = saved_errno;  // the child's system calls wrote the shared errno
  UniqueFd owned(pidfd);

  if (ctx.failed_stage != Stage::kNone) {
    siginfo_t info;
    while (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(owned.get()), &info,
                    WEXITED) != 0 &&
           errno == EINTR) {
    }
    std::string what = std::string(StageName(ctx.failed_stage)) + " " +
                       (ctx.failed_stage == Stage::kExec    ? request.argv[0]
                        : ctx.failed_stage == Stage::kChdir ? request.cwd
                                                            : std::string()) +
                       ": " + std::strerror(ctx.failed_errno);
    if (ctx.failed_stage == Stage::kExec && ctx.failed_errno == ENOENT) {
      return Status::NotFound(what + " (exit 127)");
    }
    if (ctx.failed_stage == Stage::kExec || ctx.failed_stage == Stage::kChdir ||
        ctx.failed_stage == Stage::kCredentials) {
      return Status::InvalidArgument(what + " (exit 126)");
    }
    return Status::IoError(what);
  }
  SpawnedChild child;
  child.pid = pid;
  child.pidfd = std::move(owned);
  return child;
}

int ExitCodeForLaunchFailure(const Status& status) {
  return status.code() == StatusCode::kNotFound ? 127 : 126;
}

}  // namespace warden::process
