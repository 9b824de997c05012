// fsync_latency: what one durable commit costs the storage under a data directory — append
// 4 KiB to a file there and fdatasync it, COUNT times (the file grows, as a WAL does).
// Prints the median, min and max in milliseconds, then removes the file.
//
//   fsync_latency DIR [COUNT]
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

double NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DIR [COUNT]\n", argv[0]);
    return 64;
  }
  const std::string path = std::string(argv[1]) + "/fsync-latency.tmp";
  const int count = argc > 2 ? std::max(1, std::atoi(argv[2])) : 50;
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::perror(path.c_str());
    return 1;
  }
  std::vector<char> block(4096, 'w');
  std::vector<double> ms;
  for (int i = 0; i < count; ++i) {
    const double start = NowMs();
    if (write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size()) ||
        fdatasync(fd) != 0) {
      std::perror("write+fdatasync");
      close(fd);
      unlink(path.c_str());
      return 1;
    }
    ms.push_back(NowMs() - start);
  }
  close(fd);
  unlink(path.c_str());
  std::sort(ms.begin(), ms.end());
  const size_t mid = ms.size() / 2;
  const double median = ms.size() % 2 ? ms[mid] : (ms[mid - 1] + ms[mid]) / 2;
  std::printf("%.3f %.3f %.3f\n", median, ms.front(), ms.back());
  return 0;
}
