"""Section 1, bad input: what clients may throw at wardend's Unix socket, byte for byte,
while /api/health keeps answering and the daemon's memory stays bounded."""

import json
import socket
import sys
import threading
import time

from stress_support import (Daemon, HealthProbe, post_request, raw_exchange, rss_kib, fd_count,
                            sleeper)

READ_TIMEOUT_S = 60  # api.md: a connection gets 60 s to send each request


def nodes_spec(n):
    return {"name": "wide", "nodes": [{"id": f"n{i}", "argv": ["true"]} for i in range(n)]}


class SlowClient(threading.Thread):
    """Sends a request header one byte a second and never finishes it; notes when the
    daemon cuts it."""

    def __init__(self, socket_path):
        super().__init__(daemon=True)
        self.socket_path = socket_path
        self.cut_after = None
        self.sent = 0
        self.halt = threading.Event()

    def run(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(self.socket_path))
        s.setblocking(False)
        start = time.monotonic()
        data = b"GET /api/health HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 100000
        try:
            while not self.halt.is_set():
                try:
                    if s.recv(1) == b"":
                        break  # closed by the daemon
                except BlockingIOError:
                    pass
                try:
                    s.send(data[self.sent:self.sent + 1])
                    self.sent += 1
                except OSError:
                    break
                self.halt.wait(1.0)
            else:
                return
            self.cut_after = time.monotonic() - start
        finally:
            s.close()


class Follower(threading.Thread):
    """Follows an execution's event stream; notes each line and when (and how) it ended."""

    def __init__(self, socket_path, execution_id):
        super().__init__(daemon=True)
        self.socket_path = socket_path
        self.execution_id = execution_id
        self.lines = []
        self.ended_at = None
        self.clean_end = False

    def run(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(self.socket_path))
        s.sendall(f"GET /api/executions/{self.execution_id}/events?follow=true HTTP/1.1\r\n"
                  "Host: localhost\r\n\r\n".encode())
        data = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
                self.lines = [l for l in data.split(b"\n") if l.startswith(b"{")]
                if data.endswith(b"0\r\n\r\n"):
                    self.clean_end = True
                    break
        except OSError:
            pass
        self.ended_at = time.monotonic()
        s.close()


def run(stress, section):
    d = Daemon(stress, "bad-input").start()
    sock = d.socket
    baseline_rss = rss_kib(d.pid)
    peak_rss = [baseline_rss]
    halt = threading.Event()

    def watch_rss():
        while not halt.is_set():
            peak_rss[0] = max(peak_rss[0], rss_kib(d.pid))
            halt.wait(0.2)

    rss_thread = threading.Thread(target=watch_rss, daemon=True)
    rss_thread.start()

    # The slow client and a long event stream run beside every other case.
    long_run = d.create(sleeper(600)).json()["executionId"]
    follower = Follower(sock, long_run)
    follower.start()
    slow = SlowClient(sock)
    slow.start()
    started = time.monotonic()

    with HealthProbe(sock) as probe:
        malformed(d, section)
        limits(d, section)
        argv_bytes(d, section)
        shell_metacharacters(stress, d, section)
        routes(d, section)
        idle_connections(d, section)
        mid_stream_disconnects(d, section)
        # Until the slow client is cut (60 s by api.md, plus slack).
        slow.join(READ_TIMEOUT_S + 15 - (time.monotonic() - started))
        slow.halt.set()
        section.check("slowloris (1 byte/s) cut within the read timeout",
                      slow.cut_after is not None and slow.cut_after <= READ_TIMEOUT_S + 5,
                      f"cut after {slow.cut_after and round(slow.cut_after, 1)} s, "
                      f"{slow.sent} bytes sent")
        if slow.cut_after:
            section.figure(f"slowloris cut after {slow.cut_after:.0f} s")
        open_for = time.monotonic() - started
        section.check(f"follow stream of a running execution open after {open_for:.0f} s",
                      follower.ended_at is None and follower.is_alive(),
                      f"ended after {follower.ended_at and follower.ended_at - started} s")
        d.call("POST", f"/api/executions/{long_run}/stop", "{}")
        follower.join(10)
        last = follower.lines[-1] if follower.lines else b""
        section.check("follow stream ends after the execution's terminal event",
                      follower.clean_end and b'"execution.stopped"' in last,
                      last[:120].decode(errors="replace") or "no lines")
    halt.set()
    rss_thread.join()
    section.check("/api/health answered every probe", not probe.failures,
                  "; ".join(probe.failures[:3]))
    section.check("/api/health worst latency under 1 s", probe.worst < 1.0,
                  f"{probe.worst * 1000:.0f} ms")
    section.figure(f"health worst {probe.worst * 1000:.0f} ms over {probe.count} probes")
    growth = peak_rss[0] - baseline_rss
    section.check("RSS bounded (peak under baseline + 64 MiB)", growth < 64 * 1024,
                  f"{baseline_rss} KiB -> peak {peak_rss[0]} KiB")
    section.figure(f"RSS {baseline_rss // 1024}->{peak_rss[0] // 1024} MiB peak")
    section.check("wardend alive at the end", d.running())
    section.check("wardend stops cleanly (exit 0)", d.stop() == 0)


def expect_error(section, what, reply, status, code=None, mentions=()):
    got_code, message = reply.error()
    ok = reply.status == status and (code is None or got_code == code) and all(
        m in message for m in mentions)
    return section.check(what, ok, f"{reply.status} {got_code}: {message[:160]}")


def malformed(d, section):
    r = d.call("POST", "/api/executions", '{"nodes": [ {"id": "a", "argv": ["true"] ')
    expect_error(section, "malformed JSON is 400 with line and column", r, 400,
                 "invalid_argument", ("line", "column"))
    r = d.call("POST", "/api/executions", '{"nodes":[{"id":"a","argv":"true"}]}')
    expect_error(section, "argv as a string is 400 naming it", r, 400, "invalid_argument",
                 ("nodes[0].argv",))
    r = d.call("POST", "/api/executions", '{"nodes":[{"id":"a","argv":["true"],"retries":"1"}]}')
    expect_error(section, "retries as a string is 400 naming it", r, 400, "invalid_argument",
                 ("retries",))
    r = d.call("POST", "/api/executions", '{"nodes":[{"id":"a","argv":["true"]}],"maxParallel":-1}')
    expect_error(section, "negative maxParallel is 400", r, 400, "invalid_argument",
                 ("maxParallel",))
    r = d.call("POST", "/api/executions", "[" * 100_000)
    expect_error(section, "100k '[' nesting is 400", r, 400, "invalid_argument")
    r = d.call("POST", "/api/executions", '{"a":' * 50_000)
    expect_error(section, "50k '{' nesting is 400", r, 400, "invalid_argument")
    for bad_id in ("../x", "..", "a/b", ".hidden", "a b"):
        r = d.create({"nodes": [{"id": bad_id, "argv": ["true"]}]})
        expect_error(section, f"node id {bad_id!r} is 400 naming the id", r, 400,
                     "invalid_argument", ("id",))


def limits(d, section):
    body = json.dumps(nodes_spec(10_000))
    r = d.call("POST", "/api/executions?start=false", body, timeout=120)
    ok = section.check("10,000-node spec accepted (201)", r.status == 201, repr(r)[:200])
    if ok:
        stop = d.call("POST", f"/api/executions/{r.json()['executionId']}/stop", "")
        section.check("the 10,000-node execution stops (idle -> stopped)", stop.status == 200,
                      repr(stop)[:200])
    r = d.call("POST", "/api/executions?start=false", json.dumps(nodes_spec(10_001)), timeout=120)
    expect_error(section, "10,001-node spec refused (400)", r, 400, "invalid_argument",
                 ("10000",))
    # Over 4 MiB: refused from its Content-Length, before the body is read.
    big = b'{"name":"' + b"x" * (4 << 20) + b'","nodes":[]}'
    r = raw_exchange(d.socket, post_request("/api/executions", big), timeout=30)
    expect_error(section, "4 MiB + body is 413", r, 413, "too_large")
    chunked = (b"POST /api/executions HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
               b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * (1 << 20)
    chunked += b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(5)) + b"0\r\n\r\n"
    r = raw_exchange(d.socket, chunked, timeout=30)
    expect_error(section, "5 MiB chunked body is 413", r, 413, "too_large")


def argv_bytes(d, section):
    invalid_utf8 = (b'{"nodes":[{"id":"a","argv":["echo","\xff\xfe"]}]}')
    r = d.call("POST", "/api/executions", invalid_utf8)
    expect_error(section, "invalid UTF-8 in argv is 400 naming nodes[0].argv[1]", r, 400,
                 "invalid_argument", ("nodes[0].argv[1]", "UTF-8"))
    r = d.call("POST", "/api/executions", '{"nodes":[{"id":"a","argv":["echo","a\\u0000b"]}]}')
    expect_error(section, "NUL in argv is 400 naming nodes[0].argv", r, 400, "invalid_argument",
                 ("nodes[0].argv",))
    r = d.call("POST", "/api/executions", b'{"nodes":[{"id":"a","argv":["ec\x00ho"]}]}')
    expect_error(section, "a raw NUL byte in the body is 400", r, 400, "invalid_argument")


def shell_metacharacters(stress, d, section):
    canary = stress.tmp / "canary"
    c = str(canary)
    argv = [sys.executable, "-c", "import time; time.sleep(30)",
            f"; touch {c}", f"$(touch {c})", f"`touch {c}`", f"| touch {c}", f"&& touch {c}",
            f"> {c}", "*", "~", "$HOME", "'\"\\", "\u00e9\u4e2d\U0001F600"]
    r = d.create({"name": "meta", "nodes": [{"id": "a", "argv": argv}]})
    if not section.check("argv with shell metacharacters accepted", r.status == 201, repr(r)):
        return
    execution_id = r.json()["executionId"]
    pid = d.wait_node_pid(execution_id)
    expected = b"".join(a.encode() + b"\0" for a in argv)
    # The node is "running" from its fork on; its cmdline is its own once it has exec'd.
    cmdline = b""
    deadline = time.monotonic() + 5
    while pid and cmdline != expected and time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            break
        time.sleep(0.01)
    section.check("/proc/PID/cmdline of the node equals the request byte for byte",
                  cmdline == expected, f"pid {pid}: {cmdline[:120]!r}")
    d.call("POST", f"/api/executions/{execution_id}/stop", '{"graceMs":0}')
    section.check("no shell ran: the canary file was never created", not canary.exists())


def routes(d, section):
    r = d.call("GET", "/api/nowhere")
    expect_error(section, "unknown route is 404", r, 404, "not_found")
    r = d.call("GET", "/api/executions/..%2F..%2Fetc/nodes/..%2Fpasswd/log")
    section.check("percent-encoded ../ in ids is 404", r.status == 404, repr(r))
    r = d.call("BREW", "/api/health")
    expect_error(section, "unknown method BREW is 501", r, 501, "not_implemented")
    r = d.call("DELETE", "/api/executions")
    section.check("DELETE on a known route is 405 with Allow",
                  r.status == 405 and r.headers.get("Allow") == "GET, HEAD, POST", repr(r))
    r = raw_exchange(d.socket, b"GARBAGE\r\n\r\n")
    section.check("a garbage request line is 400", r.status == 400, repr(r))
    r = raw_exchange(d.socket, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    section.check("a 9 KB target is 414", r.status == 414, repr(r))
    r = raw_exchange(d.socket, b"GET /api/health HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 20000 +
                     b"\r\n\r\n")
    section.check("a 20 KB header is refused (4xx)", 400 <= r.status < 500, repr(r))


def idle_connections(d, section, count=500):
    before = fd_count(d.pid)
    conns = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(str(d.socket))
            conns.append(s)
        start = time.monotonic()
        r = d.call("GET", "/api/health", timeout=10)
        latency = time.monotonic() - start
        section.check(f"{count} idle connections: health still answers", r.status == 200,
                      f"{latency * 1000:.0f} ms")
        section.figure(f"{count} idle conns: health {latency * 1000:.0f} ms")
    finally:
        for s in conns:
            s.close()
    deadline = time.monotonic() + 10
    while fd_count(d.pid) > before + 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    section.check("descriptors back after the idle connections close",
                  fd_count(d.pid) <= before + 2, f"{before} -> {fd_count(d.pid)}")


def mid_stream_disconnects(d, section, rounds=50):
    before = fd_count(d.pid)
    r = d.create(sleeper(600))
    execution_id = r.json()["executionId"]
    for i in range(rounds):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(d.socket))
        s.sendall(f"GET /api/executions/{execution_id}/events?follow=true HTTP/1.1\r\n"
                  "Host: localhost\r\n\r\n".encode())
        s.recv(100)  # part of the header
        s.close()
        # Half a request body, then gone.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(d.socket))
        s.sendall(post_request("/api/executions", b'{"nodes":[' + b" " * 100)[:-60])
        s.close()
    d.call("POST", f"/api/executions/{execution_id}/stop", '{"graceMs":0}')
    deadline = time.monotonic() + 10
    while fd_count(d.pid) > before + 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    section.check(f"{rounds} clients gone mid-stream and mid-body: descriptors back",
                  fd_count(d.pid) <= before + 2, f"{before} -> {fd_count(d.pid)}")
    active = d.call("GET", "/api/executions").json().get("executions", [])
    section.check("nothing half-sent was created", all(e["executionId"] != "" for e in active)
                  and len(active) == 1, f"{len(active)} active")
