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
//
// Every process of a tree writes "pid=<pid>" to the notify fd as it starts.
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
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
