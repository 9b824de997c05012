"""A wardend of the bench's own and HTTP over its Unix socket."""

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import time

from bench_support import BenchError, children, log, proc_comm


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=120):
        super().__init__("wardend", timeout=timeout)
        self.unix_path = str(path)

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s

    def call(self, method, target, body=None):
        """One request; returns (status, body bytes)."""
        headers = {"Content-Type": "application/json"} if body is not None or method == "POST" \
            else {}
        self.request(method, target, body=body, headers=headers)
        response = self.getresponse()
        return response.status, response.read()

    def json(self, method, target, body=None, expect=(200, 201)):
        status, data = self.call(method, target, body)
        if status not in expect:
            raise BenchError(f"{method} {target} answered {status}: {data[:300]!r}")
        return json.loads(data)


class Daemon:
    """A wardend of the bench's own: its defaults but for --data-dir and --socket."""

    def __init__(self, bench, name, extra=()):
        self.bench = bench
        self.dir = bench.tmp / name
        self.data = self.dir / "data"
        self.socket = self.dir / "wardend.sock"
        self.extra = list(extra)
        self.name = name
        self.proc = None
        self.keeper = None
        self.last_used = time.monotonic()  # the bench's last request to it, about

    def start(self):
        self.dir.mkdir(parents=True)
        self.stderr = open(self.dir / "wardend.stderr", "w")
        argv = [str(self.bench.wardend), "--data-dir", str(self.data),
                "--socket", str(self.socket)] + self.extra
        # A session of its own, as a systemd service has (and so a process group of its
        # own: a Ctrl-C of the bench reaches the bench alone, which then stops the daemon by
        # its pid). Where the kernel shares CPU time out by session (sched_autogroup) this
        # decides only how the daemon, its nodes and the CLI share the CPU among themselves:
        # ninja, make and the floors never run beside them.
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.stderr, start_new_session=True)
        self.bench.daemons.append(self)
        self.bench.processes.note(self.proc.pid, f"wardend ({self.name})")
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"wardend ({self.name}) exited {self.proc.returncode}; "
                                 f"see {self.dir / 'wardend.stderr'}")
            try:
                health = self.conn().json("GET", "/api/health")
                break
            except (OSError, http.client.HTTPException):
                if time.monotonic() > deadline:
                    raise BenchError(f"wardend ({self.name}) did not answer within 30 s")
                time.sleep(0.02)
        self.containment = health["containment"]
        for child in children(self.proc.pid):
            if proc_comm(child) == "warden-keeper":
                self.keeper = child
                self.bench.processes.note(child, f"warden-keeper ({self.name})")
        log(f"wardend ({self.name}) pid {self.proc.pid}, containment {self.containment}, "
            f"keeper pid {self.keeper}")
        return self

    @property
    def pid(self):
        return self.proc.pid

    def conn(self, timeout=120):
        self.last_used = time.monotonic()
        return UnixHTTPConnection(self.socket, timeout)

    def metrics(self):
        status, data = self.conn().call("GET", "/metrics")
        return data.decode()

    def stop(self):
        """SIGTERM (a clean shutdown), SIGKILL after 60 s; returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.stderr.close()
        return code


def durable_commits(daemon):
    """(sum seconds, count) of the daemon's durable journal commits, from /metrics."""
    text = daemon.metrics()
    total = re.search(r'^warden_journal_commit_seconds_sum\{durability="durable"\} (\S+)$',
                      text, re.M)
    count = re.search(r'^warden_journal_commit_seconds_count\{durability="durable"\} (\S+)$',
                      text, re.M)
    return (float(total.group(1)), int(float(count.group(1)))) if total and count else (0, 0)


def sleep_spec(name, n, argv):
    return json.dumps({"name": name, "maxParallel": n,
                       "nodes": [{"id": f"s{i}", "argv": argv} for i in range(n)]})


def wait_all_running(bench, daemon, execution_id, n, comm="sleep", timeout=60):
    """Polls (the bench, not the daemon) until every node runs `comm`: past exec, and
    past any trap its shell had to set first."""
    conn = daemon.conn()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        execution = conn.json("GET", f"/api/executions/{execution_id}")
        pids = [node["pid"] for node in execution["nodes"]
                if node["status"] == "running" and node["pid"]]
        if len(pids) == n and all(proc_comm(p) == comm for p in pids):
            for p in pids:
                bench.processes.note(p, f"node of {execution_id} ({daemon.name})")
            return pids
        time.sleep(0.02)
    raise BenchError(f"{execution_id}: not every node ran within {timeout} s")


def timed_stop(daemon, execution_id, body):
    """Wall time from sending POST .../stop to the whole StopResponse, on a connection
    opened beforehand."""
    conn = daemon.conn()
    conn.connect()
    start = time.perf_counter()
    status, data = conn.call("POST", f"/api/executions/{execution_id}/stop", body)
    elapsed = time.perf_counter() - start
    conn.close()
    if status != 200:
        raise BenchError(f"stop of {execution_id} answered {status}: {data[:300]!r}")
    return elapsed, json.loads(data)
