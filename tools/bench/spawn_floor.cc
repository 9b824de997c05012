// spawn_floor: the least a DAG runner can do — posix_spawn /bin/true for every node of a
// graph, at most PARALLEL running at once, a node started only once every node it needs
// has exited 0. No journal, no output capture, no containment: the floor under
// `warden run`, ninja and make on the same graph.
//
//   spawn_floor independent|chain|layers N PARALLEL
//
// independent: N nodes, no edges. chain: node i needs node i-1. layers: 10 layers of N/10,
// each node needing every node of the layer before. Exits 0 when every node exited 0.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

extern char** environ;

namespace {

struct Graph {
  std::vector<int> waiting_on;              // per node: needs not yet succeeded
  std::vector<std::vector<int>> needed_by;  // per node: the nodes that need it
};

bool MakeGraph(const std::string& shape, int n, Graph& g) {
  g.waiting_on.assign(n, 0);
  g.needed_by.assign(n, {});
  if (shape == "independent") return true;
  if (shape == "chain") {
    for (int i = 1; i < n; ++i) {
      g.waiting_on[i] = 1;
      g.needed_by[i - 1].push_back(i);
    }
    return true;
  }
  if (shape == "layers") {
    constexpr int kLayers = 10;
    if (n % kLayers != 0) return false;
    const int width = n / kLayers;
    for (int i = width; i < n; ++i) {
      const int first_of_previous = (i / width - 1) * width;
      g.waiting_on[i] = width;
      for (int j = first_of_previous; j < first_of_previous + width; ++j) {
        g.needed_by[j].push_back(i);
      }
    }
    return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s independent|chain|layers N PARALLEL\n", argv[0]);
    return 64;
  }
  const std::string shape = argv[1];
  const int n = std::atoi(argv[2]);
  const int parallel = std::atoi(argv[3]);
  Graph g;
  if (n < 1 || parallel < 1 || !MakeGraph(shape, n, g)) {
    std::fprintf(stderr, "spawn_floor: bad shape or size\n");
    return 64;
  }
  std::deque<int> ready;
  for (int i = 0; i < n; ++i) {
    if (g.waiting_on[i] == 0) ready.push_back(i);
  }
  char* child_argv[] = {const_cast<char*>("/bin/true"), nullptr};
  std::unordered_map<pid_t, int> running;
  int done = 0;
  while (done < n) {
    while (!ready.empty() && static_cast<int>(running.size()) < parallel) {
      pid_t pid;
      if (posix_spawn(&pid, child_argv[0], nullptr, nullptr, child_argv, environ) != 0) {
        std::perror("posix_spawn");
        return 1;
      }
      running[pid] = ready.front();
      ready.pop_front();
    }
    int status = 0;
    pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) {
      std::perror("waitpid");
      return 1;
    }
    auto it = running.find(pid);
    if (it == running.end()) continue;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::fprintf(stderr, "spawn_floor: a node failed\n");
      return 1;
    }
    for (int next : g.needed_by[it->second]) {
      if (--g.waiting_on[next] == 0) ready.push_back(next);
    }
    running.erase(it);
    ++done;
  }
  return 0;
}
