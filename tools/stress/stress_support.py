"""What every section of tools/stress shares: a wardend of the battery's own, HTTP over its
Unix socket (through http.client and byte for byte), the health probe, /proc readers, and
the section records that become the table."""

import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path


def log(message):
    print(f"[stress] {message}", file=sys.stderr, flush=True)


class StressError(Exception):
    """The battery itself could not go on (a daemon that did not start, say)."""


# ---- the table ----

class Section:
    """One row of the table: the checks tried and passed, key figures, skipped cases with
    their reasons, and what failed (printed under the table)."""

    def __init__(self, name):
        self.name = name
        self.tried = 0
        self.passed = 0
        self.figures = []
        self.skipped = []
        self.failures = []
        self.lock = threading.Lock()

    def check(self, what, ok, detail=""):
        with self.lock:
            self.tried += 1
            if ok:
                self.passed += 1
            else:
                self.failures.append(f"{what}" + (f": {detail}" if detail else ""))
        log(f"{self.name}: {'ok  ' if ok else 'FAIL'} {what}" + (f" ({detail})" if detail else ""))
        return ok

    def skip(self, what, reason):
        with self.lock:
            self.skipped.append(f"{what} ({reason})")
        log(f"{self.name}: skip {what}: {reason}")

    def figure(self, text):
        with self.lock:
            self.figures.append(text)


def render_table(sections):
    lines = ["| section | tried | passed | key figures | skipped |", "|---|---|---|---|---|"]
    for s in sections:
        lines.append(f"| {s.name} | {s.tried} | {s.passed} | {'; '.join(s.figures) or '-'} | "
                     f"{'; '.join(s.skipped) or '-'} |")
    failures = [f"- {s.name}: {f}" for s in sections for f in s.failures]
    if failures:
        lines += ["", "Failures:"] + failures
    return "\n".join(lines)


# ---- /proc ----

def proc_start_time(pid):
    """Start time (clock ticks since boot) of a live, non-zombie process, else None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    return None if fields[0] == "Z" else int(fields[19])


def alive(pid):
    return proc_start_time(pid) is not None


def rss_kib(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def children(pid):
    found = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                found += [int(p) for p in (task / "children").read_text().split()]
            except OSError:
                pass
    except OSError:
        pass
    return found


def processes_of(execution_ids=None, cgroup_marker=None):
    """Pids of live processes whose environment names one of `execution_ids`
    (WARDEN_EXECUTION_ID) or whose cgroup path contains `cgroup_marker`."""
    found = []
    wanted = {f"WARDEN_EXECUTION_ID={e}".encode() for e in (execution_ids or ())}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            if wanted:
                env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                if any(v in wanted for v in env):
                    found.append(pid)
                    continue
            if cgroup_marker and cgroup_marker in Path(f"/proc/{pid}/cgroup").read_text():
                found.append(pid)
        except OSError:
            pass
    return [p for p in found if alive(p)]


# ---- HTTP ----

class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = str(path)

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Reply:
    def __init__(self, status, body, headers=None):
        self.status = status
        self.body = body
        self.headers = headers or {}

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return {}

    def error(self):
        """(code, message) of an error body, or ("", body text)."""
        error = self.json().get("error", {}) if isinstance(self.json(), dict) else {}
        return error.get("code", ""), error.get("message", self.body[:300].decode(errors="replace"))

    def __repr__(self):
        return f"{self.status} {self.body[:200]!r}"


def call(socket_path, method, target, body=None, headers=None, timeout=30):
    """One request on a fresh connection. POSTs declare JSON unless `headers` say otherwise."""
    conn = UnixHTTPConnection(socket_path, timeout)
    try:
        all_headers = {"Content-Type": "application/json"} if method == "POST" else {}
        all_headers.update(headers or {})
        if isinstance(body, str):
            body = body.encode()
        conn.request(method, target, body=body, headers=all_headers)
        response = conn.getresponse()
        return Reply(response.status, response.read(), dict(response.getheaders()))
    finally:
        conn.close()


def raw_exchange(socket_path, data, timeout=30, family=socket.AF_UNIX, address=None):
    """Sends `data` as it is and reads one answer; Reply(0, b"") when none came."""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(address if address is not None else str(socket_path))
        sender = threading.Thread(target=_send_quietly, args=(s, data), daemon=True)
        sender.start()
        response = http.client.HTTPResponse(s)
        response.begin()
        reply = Reply(response.status, response.read(), dict(response.getheaders()))
        sender.join(timeout)
        return reply
    except (OSError, http.client.HTTPException):
        return Reply(0, b"")
    finally:
        s.close()


def _send_quietly(s, data):
    try:
        s.sendall(data)
    except OSError:
        pass


def post_request(target, body, host="localhost", extra=""):
    """A POST as bytes, JSON declared, Content-Length set."""
    if isinstance(body, str):
        body = body.encode()
    return (f"POST {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
            ).encode() + body


# ---- the daemon ----

class Daemon:
    """A wardend of the battery's own, on a data directory and socket under `base`."""

    def __init__(self, stress, name, extra=(), data_dir=None, wrapper=()):
        self.stress = stress
        self.name = name
        self.dir = stress.tmp / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.data = Path(data_dir) if data_dir else self.dir / "data"
        self.socket = self.dir / "wardend.sock"
        self.extra = list(extra)
        self.wrapper = list(wrapper)
        self.proc = None
        self.keeper = None

    def argv(self):
        return self.wrapper + [str(self.stress.wardend), "--data-dir", str(self.data),
                               "--socket", str(self.socket)] + self.extra

    def start(self, timeout=30):
        self.stderr_path = self.dir / "wardend.stderr"
        self.stderr = open(self.stderr_path, "a")
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.stderr,
                                     preexec_fn=os.setpgrp)
        self.stress.started.append(self.proc)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise StressError(f"wardend ({self.name}) exited {self.proc.returncode}: "
                                  f"{self.stderr_tail()}")
            try:
                if self.call("GET", "/api/health", timeout=2).status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise StressError(f"wardend ({self.name}) did not answer within {timeout} s")
            time.sleep(0.02)
        for child in children(self.proc.pid):
            try:
                if Path(f"/proc/{child}/comm").read_text().strip() == "warden-keeper":
                    self.keeper = child
            except OSError:
                pass
        log(f"wardend ({self.name}) pid {self.pid}, keeper {self.keeper}")
        return self

    def stderr_tail(self, n=600):
        try:
            return self.stderr_path.read_text()[-n:]
        except OSError:
            return ""

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def call(self, method, target, body=None, headers=None, timeout=30):
        return call(self.socket, method, target, body, headers, timeout)

    def create(self, spec, query="", timeout=30):
        return self.call("POST", "/api/executions" + query, json.dumps(spec), timeout=timeout)

    def execution(self, execution_id):
        return self.call("GET", f"/api/executions/{execution_id}").json()

    def wait_node_pid(self, execution_id, node="a", timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for n in self.execution(execution_id).get("nodes", []):
                if n["id"] == node and n["status"] == "running" and n["pid"]:
                    return n["pid"]
            time.sleep(0.02)
        return None

    def stop(self, timeout=60):
        """SIGTERM (a clean shutdown), SIGKILL after `timeout`; returns the exit status."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()
        if self.keeper:
            deadline = time.monotonic() + 10
            while alive(self.keeper) and time.monotonic() < deadline:
                time.sleep(0.05)
        return self.proc.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class HealthProbe:
    """Asks /api/health every `interval` on a fresh connection while it runs; keeps the worst
    latency and every failure (no answer, or not 200)."""

    def __init__(self, socket_path, interval=0.05, timeout=30):
        self.socket_path = socket_path
        self.interval = interval
        self.timeout = timeout
        self.worst = 0.0
        self.count = 0
        self.failures = []
        self.samples = []  # (monotonic start, latency)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        while not self._stop.is_set():
            start = time.monotonic()
            try:
                status = call(self.socket_path, "GET", "/api/health", timeout=self.timeout).status
                if status != 200:
                    self.failures.append(f"health answered {status}")
            except OSError as e:
                self.failures.append(f"health: {e}")
            latency = time.monotonic() - start
            self.samples.append((start, latency))
            self.worst = max(self.worst, latency)
            self.count += 1
            self._stop.wait(self.interval)


def fault_row(section, injected, survived, restart, label=""):
    yes = {True: "yes", False: "no", None: "n/a"}
    section.figure(f"{label + ': ' if label else ''}injected {yes[injected]}, survived "
                   f"{yes[survived]}, needs restart {yes[restart]}")


def integrity(db_path):
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
        try:
            return db.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error as e:
        return f"error: {e}"


def wait_gone(pid, timeout):
    start = time.monotonic()
    started = proc_start_time(pid)
    while time.monotonic() - start < timeout:
        if proc_start_time(pid) != started or not alive(pid):
            return time.monotonic() - start
        time.sleep(0.002)
    return None


def sleeper(seconds=600, node="a", **extra):
    spec = {"name": "stress", "nodes": [{"id": node, "argv": ["sleep", str(seconds)]}]}
    spec.update(extra)
    return spec
