// process_test_helper: small, predictable process trees for the process-control tests.
//
//   coop N         TERM handler that exits 0; forks N children that do the same; the leader
//                  waits for every child before exiting (a cooperative tree)
//   ignore N       ignores SIGTERM; forks N children that ignore it too; all pause for ever
//   escape         forks a child that calls setsid() and forks a grandchild that ignores
//                  SIGTERM; the child exits at once, so the grandchild is orphaned outside
//                  the node's session; the leader pauses (TERM: default action)
//   escape-clean   as escape, but the grandchild also wipes its environment (no cookie)
//   escape-threaded  as escape, but the grandchild's main thread exits while another
//                  thread of it runs on (a zombie thread-group leader)
//   escape-linger U  as escape, but the child (which ignores SIGTERM) writes "middle=<pid>"
//                  and outlives the leader: it exits U microseconds after it is orphaned
//   slow-term MS   the leader exits at SIGTERM; its child, in the same group, exits MS
//                  milliseconds after its SIGTERM
//   nested-cgroup  TERM handler that exits 0; makes the group "inner" inside its own cgroup
//                  and forks a child that calls setsid(), joins "inner" and writes
//                  "inner=<pid>" (or "error=<what>"); at SIGTERM the child writes
//                  "term=<pid>" and exits 0
//   fds            prints the entries of /proc/self/fd (space separated) and exits 0
//   exit CODE      exits with CODE
//   notify TEXT... writes each TEXT and a newline to $WARDEN_NOTIFY_FD, then exits 0
//   spew BYTES     writes BYTES bytes of 'x' to stdout, then exits 0
//   fuse-serve DIR a FUSE file system on DIR, served by this process alone (raw /dev/fuse, no
//                  libfuse): one file, DIR/f, opened in direct I/O, whose reads are never
//                  answered. Writes "mounted=<pid>" once mounted (or "mount-errno=<errno>"
//                  and exits 1), then "blocked=<pid>" for each read request it has taken
//                  (<pid>: the reader), which leaves that reader waiting for the answer: after
//                  a fatal signal, in uninterruptible sleep (D state) until this process
//                  dies (its /dev/fuse descriptor closes, which aborts the connection).
//                  It dies with its parent (PR_SET_PDEATHSIG): a test that dies leaves no
//                  reader blocked
//   fuse-read FILE forks a child that reads FILE (on a fuse-serve mount: it never returns);
//                  both keep the default action of SIGTERM
//
// Every process of a tree writes "pid=<pid>" to the notify fd as it starts.
#include <dirent.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

int NotifyFd() {
  const char* text = std::getenv("WARDEN_NOTIFY_FD");
  return text == nullptr ? -1 : std::atoi(text);
}

void WriteNote(const std::string& key, const std::string& value) {
  std::string line = key + "=" + value + "\n";
  (void)!::write(NotifyFd(), line.data(), line.size());
}

void AnnouncePid() {
  if (NotifyFd() >= 0) WriteNote("pid", std::to_string(::getpid()));
}

void OnTerm(int) { _exit(0); }

[[noreturn]] void PauseForever() {
  for (;;) ::pause();
}

int Coop(int children) {
  signal(SIGTERM, OnTerm);
  AnnouncePid();
  for (int i = 0; i < children; ++i) {
    pid_t pid = ::fork();
    if (pid == 0) {
      AnnouncePid();
      PauseForever();
    }
  }
  if (children == 0) PauseForever();
  // The leader leaves only once its children have: ignore TERM until then.
  signal(SIGTERM, [](int) {});
  while (::wait(nullptr) > 0 || errno == EINTR) {
  }
  return 0;
}

int Ignore(int children) {
  signal(SIGTERM, SIG_IGN);
  AnnouncePid();
  for (int i = 0; i < children; ++i) {
    pid_t pid = ::fork();
    if (pid == 0) {
      AnnouncePid();
      PauseForever();
    }
  }
  PauseForever();
}

enum class Escapee { kPlain, kWithoutCookie, kThreaded };

// The leader forks a child that calls setsid() and forks the escapee, which ignores SIGTERM
// and writes "escapee=<pid>"; the child exits at once, orphaning it outside the session.
int Escape(Escapee kind) {
  AnnouncePid();
  pid_t child = ::fork();
  if (child == 0) {
    ::setsid();
    if (::fork() == 0) {
      signal(SIGTERM, SIG_IGN);
      WriteNote("escapee", std::to_string(::getpid()));
      if (kind == Escapee::kWithoutCookie) {
        ::close(NotifyFd());
        char* argv[] = {const_cast<char*>("sleep"), const_cast<char*>("1000"), nullptr};
        char* envp[] = {nullptr};
        ::execve("/bin/sleep", argv, envp);
      }
      if (kind == Escapee::kThreaded) {
        pthread_t thread;
        pthread_create(
            &thread, nullptr, [](void*) -> void* { PauseForever(); }, nullptr);
        pthread_exit(nullptr);
      }
      PauseForever();
    }
    _exit(0);
  }
  ::waitpid(child, nullptr, 0);
  PauseForever();
}

int EscapeLinger(long linger_us) {
  AnnouncePid();
  pid_t child = ::fork();
  if (child == 0) {
    signal(SIGTERM, SIG_IGN);
    pid_t leader = ::getppid();
    ::setsid();
    if (::fork() == 0) {
      WriteNote("escapee", std::to_string(::getpid()));
      PauseForever();
    }
    WriteNote("middle", std::to_string(::getpid()));
    while (::getppid() == leader) ::usleep(20);
    timespec start{};
    ::clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
      timespec now{};
      ::clock_gettime(CLOCK_MONOTONIC, &now);
      long elapsed_us =
          (now.tv_sec - start.tv_sec) * 1000000L + (now.tv_nsec - start.tv_nsec) / 1000;
      if (elapsed_us >= linger_us) _exit(0);
    }
  }
  PauseForever();
}

int SlowTerm(int ms) {
  AnnouncePid();
  static int delay_ms = ms;
  if (::fork() == 0) {
    signal(SIGTERM, [](int) {
      ::usleep(static_cast<useconds_t>(delay_ms) * 1000);
      _exit(0);
    });
    AnnouncePid();
    PauseForever();
  }
  PauseForever();
}

// This process's cgroup v2 directory: the cgroup2 mount plus the "0::" path.
std::string OwnCgroupDir() {
  std::string mount;
  if (FILE* f = std::fopen("/proc/self/mountinfo", "r")) {
    char line[4096];
    while (mount.empty() && std::fgets(line, sizeof line, f) != nullptr) {
      const char* dash = std::strstr(line, " - cgroup2 ");
      char point[2048];
      if (dash != nullptr && std::sscanf(line, "%*s %*s %*s %*s %2047s", point) == 1) {
        mount = point;
      }
    }
    std::fclose(f);
  }
  std::string path;
  if (FILE* f = std::fopen("/proc/self/cgroup", "r")) {
    char line[4096];
    while (std::fgets(line, sizeof line, f) != nullptr) {
      if (std::strncmp(line, "0::", 3) == 0) {
        path = line + 3;
        if (!path.empty() && path.back() == '\n') path.pop_back();
      }
    }
    std::fclose(f);
  }
  return mount + path;
}

int NestedCgroup() {
  signal(SIGTERM, OnTerm);
  AnnouncePid();
  const std::string inner = OwnCgroupDir() + "/inner";
  if (::mkdir(inner.c_str(), 0755) != 0) {
    WriteNote("error", "mkdir " + inner + ": " + std::strerror(errno));
    return 1;
  }
  if (::fork() == 0) {
    static char term_line[64];
    std::snprintf(term_line, sizeof term_line, "term=%d\n", static_cast<int>(::getpid()));
    signal(SIGTERM, [](int) {
      (void)!::write(NotifyFd(), term_line, std::strlen(term_line));
      _exit(0);
    });
    ::setsid();  // out of the leader's group: only the cgroup holds it
    int fd = ::open((inner + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::write(fd, "0", 1) != 1) {
      WriteNote("error", "join " + inner + ": " + std::strerror(errno));
      _exit(1);
    }
    ::close(fd);
    WriteNote("inner", std::to_string(::getpid()));
    PauseForever();
  }
  PauseForever();
}

int ListFds() {
  DIR* dir = ::opendir("/proc/self/fd");
  int own = ::dirfd(dir);
  std::string out;
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    if (std::atoi(entry->d_name) == own) continue;
    out += entry->d_name;
    out += ' ';
  }
  ::closedir(dir);
  std::fputs(out.c_str(), stdout);
  return 0;
}

// The attributes of the root directory (node 1) or of the file "f" (node 2).
fuse_attr FuseAttr(uint64_t node) {
  fuse_attr attr{};
  attr.ino = node;
  attr.mode = node == FUSE_ROOT_ID ? (S_IFDIR | 0755) : (S_IFREG | 0444);
  attr.nlink = node == FUSE_ROOT_ID ? 2 : 1;
  attr.size = node == FUSE_ROOT_ID ? 0 : 4096;
  attr.blocks = node == FUSE_ROOT_ID ? 0 : 8;
  attr.blksize = 4096;
  return attr;
}

// One reply: the header (error, or 0 and `size` bytes of `body`).
void FuseReply(int fd, uint64_t unique, int error, const void* body = nullptr, size_t size = 0) {
  fuse_out_header header{};
  header.len = static_cast<uint32_t>(sizeof header + (error == 0 ? size : 0));
  header.error = error;
  header.unique = unique;
  iovec parts[2] = {{&header, sizeof header}, {const_cast<void*>(body), size}};
  (void)!::writev(fd, parts, error == 0 && size > 0 ? 2 : 1);
}

int FuseServe(const char* dir) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  AnnouncePid();
  const int fd = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    WriteNote("mount-errno", std::to_string(errno));
    return 1;
  }
  const std::string options = "fd=" + std::to_string(fd) + ",rootmode=40000,user_id=0,group_id=0";
  if (::mount("warden-test", dir, "fuse", MS_NOSUID | MS_NODEV, options.c_str()) != 0) {
    WriteNote("mount-errno", std::to_string(errno));
    return 1;
  }
  WriteNote("mounted", std::to_string(::getpid()));
  constexpr uint64_t kFile = 2;
  // Large enough for any request with max_write 4096 (the kernel refuses smaller buffers).
  static char buffer[1 << 17];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && (errno == EINTR || errno == ENOENT)) continue;      // ENOENT: request withdrawn
    if (n < static_cast<ssize_t>(sizeof(fuse_in_header))) return 0;  // unmounted or aborted
    fuse_in_header in;
    std::memcpy(&in, buffer, sizeof in);
    const char* body = buffer + sizeof in;
    switch (in.opcode) {
      case FUSE_INIT: {
        fuse_init_in init;
        std::memcpy(&init, body, sizeof init.major + sizeof init.minor);
        fuse_init_out out{};
        out.major = FUSE_KERNEL_VERSION;
        out.minor = std::min<uint32_t>(init.minor, FUSE_KERNEL_MINOR_VERSION);
        out.max_write = 4096;
        out.time_gran = 1;
        FuseReply(fd, in.unique, 0, &out, sizeof out);
        break;
      }
      case FUSE_LOOKUP: {
        if (in.nodeid != FUSE_ROOT_ID || std::strcmp(body, "f") != 0) {
          FuseReply(fd, in.unique, -ENOENT);
          break;
        }
        fuse_entry_out out{};
        out.nodeid = kFile;
        out.generation = 1;
        out.entry_valid = out.attr_valid = 3600;
        out.attr = FuseAttr(kFile);
        FuseReply(fd, in.unique, 0, &out, sizeof out);
        break;
      }
      case FUSE_GETATTR: {
        fuse_attr_out out{};
        out.attr_valid = 3600;
        out.attr = FuseAttr(in.nodeid);
        FuseReply(fd, in.unique, 0, &out, sizeof out);
        break;
      }
      case FUSE_OPEN: {
        fuse_open_out out{};
        out.fh = 1;
        out.open_flags = FOPEN_DIRECT_IO;  // every read() is a request the reader waits on
        FuseReply(fd, in.unique, 0, &out, sizeof out);
        break;
      }
      case FUSE_READ:
        WriteNote("blocked", std::to_string(in.pid));  // and never answered
        break;
      case FUSE_INTERRUPT:
      case FUSE_FORGET:
      case FUSE_BATCH_FORGET:
        break;  // no reply expected (an interrupt may go unanswered)
      default:
        FuseReply(fd, in.unique, -ENOSYS);
        break;
    }
  }
}

int FuseRead(const char* file) {
  AnnouncePid();
  if (::fork() == 0) {
    AnnouncePid();
    int fd = ::open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      WriteNote("error", std::string("open ") + file + ": " + std::strerror(errno));
      PauseForever();
    }
    char byte;
    ssize_t n = ::read(fd, &byte, 1);
    WriteNote("error", "read returned " + std::to_string(n));
    PauseForever();
  }
  PauseForever();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 64;
  std::string mode = argv[1];
  int n = argc > 2 ? std::atoi(argv[2]) : 0;
  if (mode == "coop") return Coop(n);
  if (mode == "ignore") return Ignore(n);
  if (mode == "escape") return Escape(Escapee::kPlain);
  if (mode == "escape-clean") return Escape(Escapee::kWithoutCookie);
  if (mode == "escape-threaded") return Escape(Escapee::kThreaded);
  if (mode == "escape-linger") return EscapeLinger(argc > 2 ? std::atol(argv[2]) : 0);
  if (mode == "slow-term") return SlowTerm(n);
  if (mode == "nested-cgroup") return NestedCgroup();
  if (mode == "fds") return ListFds();
  if (mode == "fuse-serve" && argc > 2) return FuseServe(argv[2]);
  if (mode == "fuse-read" && argc > 2) return FuseRead(argv[2]);
  if (mode == "exit") return n;
  if (mode == "notify") {
    int fd = NotifyFd();
    for (int i = 2; i < argc; ++i) {
      std::string line = std::string(argv[i]) + "\n";
      (void)!::write(fd, line.data(), line.size());
    }
    return 0;
  }
  if (mode == "spew") {
    std::string chunk(4096, 'x');
    long left = std::atol(argv[2]);
    while (left > 0) {
      long size = left < 4096 ? left : 4096;
      ssize_t w = ::write(1, chunk.data(), static_cast<size_t>(size));
      if (w <= 0) return 1;
      left -= w;
    }
    return 0;
  }
  return 64;
}
