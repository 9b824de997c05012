// kill_floor: the least a stop can cost — N running processes, each sent SIGNAL and then
// reaped with waitpid, by their parent, with nothing recorded. The processes are spawned
// first (untimed: posix_spawn returns once each has exec'd); the time from the first kill
// to the last waitpid is printed in milliseconds.
//
//   kill_floor N TERM|KILL COMMAND [ARG...]      e.g. kill_floor 100 TERM sleep 60
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

extern char** environ;

namespace {

double NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s N TERM|KILL COMMAND [ARG...]\n", argv[0]);
    return 64;
  }
  const int n = std::atoi(argv[1]);
  const int sig = std::strcmp(argv[2], "KILL") == 0 ? SIGKILL : SIGTERM;
  std::vector<pid_t> pids;
  for (int i = 0; i < n; ++i) {
    pid_t pid;
    if (posix_spawnp(&pid, argv[3], nullptr, nullptr, argv + 3, environ) != 0) {
      std::perror("posix_spawnp");
      for (pid_t p : pids) kill(p, SIGKILL);
      for (pid_t p : pids) waitpid(p, nullptr, 0);
      return 1;
    }
    pids.push_back(pid);
  }
  const double start = NowMs();
  for (pid_t pid : pids) kill(pid, sig);
  for (pid_t pid : pids) waitpid(pid, nullptr, 0);
  std::printf("%.3f\n", NowMs() - start);
  return 0;
}
