#include "process/spawner.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace warden::process {

// Everything the child reads. Built by the parent, never modified while the child may run.
struct SpawnContext {
  std::vector<std::string> argv_storage;
  std::vector<std::string> env_storage;
  std::string path;
  std::string cwd;
  std::vector<gid_t> groups;
  std::vector<const char*> argv;
  std::vector<const char*> env;
  int fds[3] = {-1, -1, -1};  // targets 1, 2, kNotifyFd
  int cgroup_procs_fd = -1;
  bool set_nice = false;
  int nice = 0;
  bool switch_user = false;
  uid_t uid = 0;
  gid_t gid = 0;
  // Raw views of the above, so the child calls no library function at all.
  const char* path_c = nullptr;
  const char* cwd_c = nullptr;
  const char* const* argv_c = nullptr;
  const char* const* env_c = nullptr;
  const gid_t* groups_c = nullptr;
  long group_count = 0;
  // Written by the child just before it exits on a failure; read by the parent after.
  volatile int failed_stage = 0;
  volatile int failed_errno = 0;
  void* stack = nullptr;
  size_t stack_size = 0;
};

namespace {

constexpr size_t kStackSize = 32 * 1024;

// Child stacks are kept for reuse: an munmap per node would cost a TLB shootdown on every
// CPU the daemon's threads ran on, in the middle of a mass stop.
class StackCache {
 public:
  void* Take() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!free_.empty()) {
        void* stack = free_.back();
        free_.pop_back();
        return stack;
      }
    }
    void* stack = ::mmap(nullptr, kStackSize, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    return stack == MAP_FAILED ? nullptr : stack;
  }
  void Give(void* stack) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (free_.size() < 256) {
        free_.push_back(stack);
        return;
      }
    }
    ::munmap(stack, kStackSize);
  }

 private:
  std::mutex mutex_;
  std::vector<void*> free_;
};

// glibc's clone(), not a sanitizer's interceptor of it: ThreadSanitizer treats every clone
// as a fork (takes its internal locks, runs its at-fork logic), which is wrong for a CLONE_VM
// child that only makes raw system calls and then execs.
using CloneFunction = int (*)(int (*)(void*), void*, int, void*, ...);
CloneFunction LibcClone() {
  static const CloneFunction function = [] {
    void* libc = ::dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    void* symbol = libc != nullptr ? ::dlsym(libc, "clone") : nullptr;
    return symbol != nullptr ? reinterpret_cast<CloneFunction>(symbol) : &::clone;
  }();
  return function;
}

StackCache& Stacks() {
  static StackCache* cache = new StackCache;  // never destroyed: children may outlive main
  return *cache;
}

// Where the child stopped.
enum Stage : int {
  kStageSignals = 1,
  kStageSetsid,
  kStageCgroup,
  kStageCredentials,
  kStageNoNewPrivs,
  kStageChdir,
  kStageStdio,
  kStageCloseRange,
  kStageExec,
};

const char* StageName(int stage) {
  switch (stage) {
    case kStageSignals:
      return "reset signals";
    case kStageSetsid:
      return "setsid";
    case kStageCgroup:
      return "join cgroup";
    case kStageCredentials:
      return "switch user";
    case kStageNoNewPrivs:
      return "set no_new_privs";
    case kStageChdir:
      return "chdir";
    case kStageStdio:
      return "set up stdio";
    case kStageCloseRange:
      return "close descriptors";
    case kStageExec:
      return "exec";
  }
  return "spawn";
}

#define WARDEN_CHILD_CODE __attribute__((no_sanitize("address", "thread", "undefined"), noinline))

// The child shares the daemon's memory and thread pointer while other daemon threads run, so
// it must not touch errno (which lives in the parent thread's TLS): system calls are made
// directly and return -errno. Every argument register is set, unused ones to 0: prctl, for
// one, refuses PR_SET_NO_NEW_PRIVS unless its fifth argument is 0, and an optimised build
// leaves whatever it likes in a register nobody set.
WARDEN_CHILD_CODE long RawSyscall(long n, long a = 0, long b = 0, long c = 0, long d = 0,
                                  long e = 0) {
#if defined(__x86_64__)
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
                   : "rcx", "r11", "memory");
  return ret;
#elif defined(__aarch64__)
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  register long x4 __asm__("x4") = e;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4) : "memory");
  return x0;
#else
#error "Warden's spawner needs a raw system call sequence for this architecture"
#endif
}

// The kernel's struct sigaction for rt_sigaction: SIG_DFL with no flags is all zeros
// whatever the architecture's field order.
struct KernelSigaction {
  unsigned long words[4];
};
const KernelSigaction kDefaultAction{};
const unsigned long kEmptyMask[2] = {0, 0};

[[noreturn]] WARDEN_CHILD_CODE void ChildFail(SpawnContext* ctx, int stage, long ret) {
  ctx->failed_errno = static_cast<int>(-ret);
  ctx->failed_stage = stage;
  RawSyscall(SYS_exit_group, (stage == kStageExec && -ret == ENOENT) ? 127 : 126);
  __builtin_unreachable();
}

WARDEN_CHILD_CODE int ChildMain(void* arg) {
  auto* ctx = static_cast<SpawnContext*>(arg);
  long ret;
  // The daemon's handlers point into its memory and its ignored signals would survive exec:
  // every disposition goes back to the default while all signals are still blocked.
  for (int sig = 1; sig < _NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    RawSyscall(SYS_rt_sigaction, sig, reinterpret_cast<long>(&kDefaultAction), 0, _NSIG / 8);
  }
  // Back to the priority wardend was started with (it runs ahead of its nodes). Raising a
  // nice value is always allowed.
  if (ctx->set_nice) (void)RawSyscall(SYS_setpriority, PRIO_PROCESS, 0, ctx->nice);
  if ((ret = RawSyscall(SYS_setsid)) < 0) ChildFail(ctx, kStageSetsid, ret);
  if (ctx->cgroup_procs_fd >= 0 &&
      (ret = RawSyscall(SYS_write, ctx->cgroup_procs_fd, reinterpret_cast<long>("0"), 1)) < 0) {
    ChildFail(ctx, kStageCgroup, ret);
  }
  if (ctx->switch_user) {
    // Raw set*id calls change only this single-threaded child, which is what we want.
    if ((ret = RawSyscall(SYS_setgroups, ctx->group_count, reinterpret_cast<long>(ctx->groups_c))) <
            0 ||
        (ret = RawSyscall(SYS_setresgid, ctx->gid, ctx->gid, ctx->gid)) < 0 ||
        (ret = RawSyscall(SYS_setresuid, ctx->uid, ctx->uid, ctx->uid)) < 0) {
      ChildFail(ctx, kStageCredentials, ret);
    }
  }
  if ((ret = RawSyscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) < 0) {
    ChildFail(ctx, kStageNoNewPrivs, ret);
  }
  if ((ret = RawSyscall(SYS_chdir, reinterpret_cast<long>(ctx->cwd_c))) < 0) {
    ChildFail(ctx, kStageChdir, ret);
  }
  // Sources may sit on 0..3 themselves: move them above first so no dup3 clobbers another.
  int sources[3];
  for (int i = 0; i < 3; ++i) {
    ret = RawSyscall(SYS_fcntl, ctx->fds[i], F_DUPFD_CLOEXEC, kNotifyFd + 1);
    if (ret < 0) ChildFail(ctx, kStageStdio, ret);
    sources[i] = static_cast<int>(ret);
  }
  ret = RawSyscall(SYS_openat, AT_FDCWD, reinterpret_cast<long>("/dev/null"), O_RDONLY | O_CLOEXEC);
  if (ret < 0) ChildFail(ctx, kStageStdio, ret);
  ret = ret == 0 ? RawSyscall(SYS_fcntl, 0, F_SETFD, 0) : RawSyscall(SYS_dup3, ret, 0, 0);
  if (ret < 0) ChildFail(ctx, kStageStdio, ret);
  const int targets[3] = {1, 2, kNotifyFd};
  for (int i = 0; i < 3; ++i) {
    if ((ret = RawSyscall(SYS_dup3, sources[i], targets[i], 0)) < 0) {
      ChildFail(ctx, kStageStdio, ret);
    }
  }
  // Close-on-exec rather than close: cheaper, and the same once exec succeeds.
  if ((ret = RawSyscall(SYS_close_range, kNotifyFd + 1, ~0U, CLOSE_RANGE_CLOEXEC)) < 0) {
    ChildFail(ctx, kStageCloseRange, ret);
  }
  RawSyscall(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(kEmptyMask), 0, _NSIG / 8);
  ret = RawSyscall(SYS_execve, reinterpret_cast<long>(ctx->path_c),
                   reinterpret_cast<long>(ctx->argv_c), reinterpret_cast<long>(ctx->env_c));
  ChildFail(ctx, kStageExec, ret);
}

// execvp's search without its shell fallback, done by the parent so that the common
// failures are synchronous: the first candidate that is an executable regular file wins.
Result<std::string> ResolveExecutable(const SpawnRequest& request) {
  bool saw_denied = false;
  for (const std::string& path : request.exec_candidates) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (::access(path.c_str(), X_OK) == 0) return path;
    saw_denied = true;
  }
  if (saw_denied) {
    return Status::InvalidArgument("exec " + request.argv[0] + ": Permission denied (exit 126)");
  }
  return Status::NotFound("exec " + request.argv[0] + ": No such file or directory (exit 127)");
}

}  // namespace

PendingExec::PendingExec(std::unique_ptr<SpawnContext> context) : context_(std::move(context)) {}

PendingExec::~PendingExec() {
  if (context_) (void)context_.release();  // the child may still run on it: leak, never free
}

Status PendingExec::Release() {
  if (!context_) return Status::Ok();
  std::unique_ptr<SpawnContext> context = std::move(context_);
  Stacks().Give(context->stack);
  int stage = context->failed_stage;
  int err = context->failed_errno;
  if (stage == 0) return Status::Ok();
  std::string what = std::string(StageName(stage)) + " " +
                     (stage == kStageExec    ? context->path
                      : stage == kStageChdir ? context->cwd
                                             : std::string()) +
                     ": " + std::strerror(err);
  if (stage == kStageExec && err == ENOENT) return Status::NotFound(what);
  return Status::InvalidArgument(what);
}

namespace {

// CLOCK_BOOTTIME in the clock ticks of /proc/PID/stat's start time, which the kernel takes
// from the same clock when it creates a process.
std::optional<unsigned long long> BoottimeTicks() {
  static const long ticks_per_second = ::sysconf(_SC_CLK_TCK);
  timespec now{};
  if (ticks_per_second <= 0 || ::clock_gettime(CLOCK_BOOTTIME, &now) != 0) return std::nullopt;
  const unsigned long long ns = static_cast<unsigned long long>(now.tv_sec) * 1'000'000'000ULL +
                                static_cast<unsigned long long>(now.tv_nsec);
  return ns / (1'000'000'000ULL / static_cast<unsigned long long>(ticks_per_second));
}

}  // namespace

Result<SpawnedChild> Spawner::Spawn(const SpawnRequest& request) {
  if (request.argv.empty() || request.exec_candidates.empty()) {
    return Status::InvalidArgument("empty argv");
  }
  struct stat st;
  if (::stat(request.cwd.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    int err = errno == 0 || S_ISDIR(st.st_mode) ? errno : ENOTDIR;
    return Status::InvalidArgument("chdir " + request.cwd + ": " +
                                   std::strerror(err ? err : ENOTDIR) + " (exit 126)");
  }
  Result<std::string> path = ResolveExecutable(request);
  if (!path.ok()) return path.status();

  auto ctx = std::make_unique<SpawnContext>();
  ctx->argv_storage = request.argv;
  ctx->env_storage = request.env;
  ctx->path = std::move(path).value();
  ctx->cwd = request.cwd;
  for (const std::string& s : ctx->argv_storage) ctx->argv.push_back(s.c_str());
  ctx->argv.push_back(nullptr);
  for (const std::string& s : ctx->env_storage) ctx->env.push_back(s.c_str());
  ctx->env.push_back(nullptr);
  ctx->fds[0] = request.stdout_fd;
  ctx->fds[1] = request.stderr_fd;
  ctx->fds[2] = request.notify_fd;
  ctx->cgroup_procs_fd = request.cgroup_procs_fd;
  ctx->set_nice = request.nice.has_value();
  ctx->nice = request.nice.value_or(0);
  if (request.credentials) {
    ctx->switch_user = true;
    ctx->uid = request.credentials->uid;
    ctx->gid = request.credentials->gid;
    ctx->groups = request.credentials->groups;
  }
  ctx->path_c = ctx->path.c_str();
  ctx->cwd_c = ctx->cwd.c_str();
  ctx->argv_c = ctx->argv.data();
  ctx->env_c = ctx->env.data();
  ctx->groups_c = ctx->groups.data();
  ctx->group_count = static_cast<long>(ctx->groups.size());
  void* stack = Stacks().Take();
  if (stack == nullptr) return Status::FromErrno("mmap child stack", errno);
  ctx->stack = stack;
  ctx->stack_size = kStackSize;

  // Blocked signals keep the daemon's handlers from running in the child (on shared memory)
  // before it has reset them; the child unblocks just before exec.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int pidfd = -1;
  const std::optional<unsigned long long> tick_before = BoottimeTicks();
  pid_t pid = LibcClone()(ChildMain, static_cast<char*>(stack) + kStackSize,
                          CLONE_VM | CLONE_PIDFD | SIGCHLD, ctx.get(), &pidfd);
  int clone_errno = errno;
  const std::optional<unsigned long long> tick_after = BoottimeTicks();
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) {
    Stacks().Give(stack);
    return Status::FromErrno("clone", clone_errno);
  }
  SpawnedChild child;
  child.pid = pid;
  child.pidfd.Reset(pidfd);
  child.pending = std::make_unique<PendingExec>(std::move(ctx));
  if (tick_before && tick_before == tick_after) child.start_ticks = tick_before;
  return child;
}

int ExitCodeForLaunchFailure(const Status& status) {
  return status.code() == StatusCode::kNotFound ? 127 : 126;
}

}  // namespace warden::process
