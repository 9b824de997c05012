// load_generator: HTTP/1.1 GET load over a Unix socket — CONNECTIONS keep-alive
// connections, one request in flight on each, driven by one thread with epoll, so that the
// same client measures any server. Counts responses during SECONDS after WARMUP seconds
// and prints one JSON line: requests, seconds, rps, p50_us, p99_us, errors (a status other
// than 200, a closed connection, a chunked or malformed response).
//
//   load_generator SOCKET TARGET CONNECTIONS SECONDS [WARMUP]
#include <errno.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

double NowS() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

int Connect(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

struct Connection {
  int fd = -1;
  std::string in;
  double sent_at = 0;
};

// Length of one whole response at the start of `in`, 0 if incomplete, -1 if unusable.
// Sets *ok to whether its status is 200.
long ResponseLength(const std::string& in, bool* ok) {
  size_t end = in.find("\r\n\r\n");
  if (end == std::string::npos) return 0;
  *ok = in.compare(0, 12, "HTTP/1.1 200") == 0;
  long length = -1;
  size_t line = in.find("\r\n") + 2;
  while (line < end) {
    size_t next = in.find("\r\n", line);
    const char* text = in.c_str() + line;
    if (strncasecmp(text, "content-length:", 15) == 0) length = std::atol(text + 15);
    if (strncasecmp(text, "transfer-encoding:", 18) == 0) return -1;
    line = next + 2;
  }
  if (length < 0) return -1;
  size_t total = end + 4 + static_cast<size_t>(length);
  return in.size() >= total ? static_cast<long>(total) : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s SOCKET TARGET CONNECTIONS SECONDS [WARMUP]\n", argv[0]);
    return 64;
  }
  const std::string socket_path = argv[1];
  const std::string request =
      std::string("GET ") + argv[2] + " HTTP/1.1\r\nHost: bench\r\nAccept: */*\r\n\r\n";
  const int count = std::atoi(argv[3]);
  const double seconds = std::atof(argv[4]);
  const double warmup = argc > 5 ? std::atof(argv[5]) : 0.5;

  int epoll = epoll_create1(EPOLL_CLOEXEC);
  std::vector<Connection> connections(count);
  auto send_request = [&](Connection& c) {
    c.sent_at = NowS();
    // A request this small goes out whole on a fresh or drained Unix socket.
    return send(c.fd, request.data(), request.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(request.size());
  };
  for (int i = 0; i < count; ++i) {
    Connection& c = connections[i];
    c.fd = Connect(socket_path);
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u32 = static_cast<uint32_t>(i);
    if (c.fd < 0 || epoll_ctl(epoll, EPOLL_CTL_ADD, c.fd, &event) != 0 || !send_request(c)) {
      std::fprintf(stderr, "load_generator: cannot connect to %s\n", socket_path.c_str());
      return 1;
    }
  }

  const double begin = NowS() + warmup, finish = begin + seconds;
  long requests = 0, errors = 0;
  std::vector<float> latency_us;
  latency_us.reserve(1 << 20);
  std::vector<epoll_event> events(count);
  char buffer[65536];
  for (;;) {
    double now = NowS();
    if (now >= finish) break;
    int n = epoll_wait(epoll, events.data(), count, 100);
    if (n < 0 && errno != EINTR) return 1;
    for (int e = 0; e < n; ++e) {
      Connection& c = connections[events[e].data.u32];
      ssize_t got = recv(c.fd, buffer, sizeof buffer, 0);
      if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (got <= 0) {  // the server closed it: count, reconnect, go on
        ++errors;
        epoll_ctl(epoll, EPOLL_CTL_DEL, c.fd, nullptr);
        close(c.fd);
        c.in.clear();
        c.fd = Connect(socket_path);
        epoll_event event{};
        event.events = EPOLLIN;
        event.data.u32 = events[e].data.u32;
        if (c.fd < 0 || epoll_ctl(epoll, EPOLL_CTL_ADD, c.fd, &event) != 0) return 1;
        send_request(c);
        continue;
      }
      c.in.append(buffer, static_cast<size_t>(got));
      bool ok = false;
      long length = ResponseLength(c.in, &ok);
      if (length == 0) continue;
      if (length < 0) {
        std::fprintf(stderr, "load_generator: unusable response: %.200s\n", c.in.c_str());
        return 1;
      }
      c.in.erase(0, static_cast<size_t>(length));
      double done = NowS();
      if (done >= begin && done < finish) {
        ++requests;
        if (!ok) ++errors;
        latency_us.push_back(static_cast<float>((done - c.sent_at) * 1e6));
      }
      if (!send_request(c)) ++errors;
    }
  }
  for (Connection& c : connections) close(c.fd);
  close(epoll);
  std::sort(latency_us.begin(), latency_us.end());
  auto percentile = [&](double p) {
    return latency_us.empty() ? 0.0
                              : latency_us[std::min(latency_us.size() - 1,
                                                    static_cast<size_t>(p * latency_us.size()))];
  };
  std::printf(
      "{\"requests\":%ld,\"seconds\":%.3f,\"rps\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
      "\"errors\":%ld}\n",
      requests, seconds, static_cast<double>(requests) / seconds, percentile(0.5), percentile(0.99),
      errors);
  return 0;
}
