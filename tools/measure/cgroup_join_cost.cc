// cgroup_join_cost: what it costs to start a process in a fresh cgroup, three ways, so the
// spawner's choice can be checked on a host. Each way forks and execs /bin/true N times,
// one fresh group per process (made beforehand, removed afterwards: not timed):
//   none          no cgroup (the floor)
//   write         the child writes "0" to the group's cgroup.procs before exec (Warden's way)
//   clone3        clone3(CLONE_INTO_CGROUP): the child starts in the group
// Build and run as root on a host with a writable cgroup v2 directory:
//   c++ -O2 -std=c++20 tools/measure/cgroup_join_cost.cc -o /tmp/cgroup_join_cost
//   /tmp/cgroup_join_cost /sys/fs/cgroup/unified/some-writable-group [N]
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

pid_t Spawn(int way, int procs_fd, int dir_fd) {
  static char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
  static char* envp[] = {nullptr};
  pid_t pid;
  if (way == 2) {
    clone_args args{};
    args.flags = CLONE_INTO_CGROUP;
    args.exit_signal = SIGCHLD;
    args.cgroup = static_cast<uint64_t>(dir_fd);
    pid = static_cast<pid_t>(::syscall(SYS_clone3, &args, sizeof args));
  } else {
    pid = ::fork();
  }
  if (pid == 0) {
    if (way == 1 && ::write(procs_fd, "0", 1) != 1) _exit(126);
    ::execve(argv[0], argv, envp);
    _exit(127);
  }
  return pid;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s WRITABLE_CGROUP_DIR [N]\n", argv[0]);
    return 64;
  }
  const std::string root = argv[1];
  const int n = argc > 2 ? std::atoi(argv[2]) : 300;
  const char* names[] = {"none", "write", "clone3"};
  for (int way = 0; way < 3; ++way) {
    std::vector<std::string> groups;
    std::vector<int> procs, dirs;
    for (int i = 0; i < n; ++i) {
      groups.push_back(root + "/join-cost-" + std::to_string(way) + "-" + std::to_string(i));
      if (::mkdir(groups.back().c_str(), 0755) != 0) {
        std::perror(groups.back().c_str());
        return 1;
      }
      procs.push_back(::open((groups.back() + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC));
      dirs.push_back(::open(groups.back().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    }
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
      pid_t pid = Spawn(way, procs[i], dirs[i]);
      if (pid < 0) {
        std::perror(names[way]);
        return 1;
      }
      int status = 0;
      ::waitpid(pid, &status, 0);
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::fprintf(stderr, "%s: the child failed (status %d)\n", names[way], status);
        return 1;
      }
    }
    std::chrono::duration<double, std::micro> took = std::chrono::steady_clock::now() - start;
    std::printf("%-7s %.1f us per process (N=%d)\n", names[way], took.count() / n, n);
    for (int i = 0; i < n; ++i) {
      ::close(procs[i]);
      ::close(dirs[i]);
      ::rmdir(groups[i].c_str());
    }
  }
  return 0;
}
