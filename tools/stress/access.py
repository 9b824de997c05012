"""Section 2, access: who may talk to wardend (socket mode and group, TCP tokens, the listen
address), what cross-site requests get, and what a node can see of the daemon and of
other nodes."""

import os
import shutil
import socket
import subprocess
import sys
import time

from stress_support import Daemon, raw_exchange

# Connects to the socket given as argv[1] as whoever runs it; prints the status, or the error.
CLIENT = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
    s.sendall(b"GET /api/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    print(s.recv(100).split(b"\r\n")[0].decode())
except OSError as e:
    print(type(e).__name__)
"""

# A node listing its own descriptors: "FD TARGET" lines (the listing's own is gone by then).
LIST_FDS = r"""
import os
for fd in sorted(os.listdir('/proc/self/fd'), key=int):
    try:
        print(fd, os.readlink('/proc/self/fd/' + fd))
    except OSError:
        pass
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Accounts:
    """A throwaway group and two system users (one of them in the group), removed at the
    end of the battery."""

    def __init__(self, stress):
        tag = f"wst{os.getpid()}"
        self.group = f"{tag}g"
        self.outsider = f"{tag}a"
        self.member = f"{tag}b"
        subprocess.run(["groupadd", "--system", self.group], check=True)
        stress.cleanups.append(lambda: subprocess.run(["groupdel", self.group], check=False))
        for user, extra in ((self.outsider, []), (self.member, ["-G", self.group])):
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                            "/usr/sbin/nologin"] + extra + [user], check=True)
            stress.cleanups.append(
                lambda u=user: subprocess.run(["userdel", u], check=False))

    def run_client(self, user, socket_path):
        result = subprocess.run(
            ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", sys.executable,
             "-c", CLIENT, str(socket_path)], capture_output=True, text=True, timeout=30)
        return (result.stdout.strip() or result.stderr.strip())[:120]


def run(stress, section):
    plain = Daemon(stress, "access-plain").start()
    try:
        cross_site(plain, section)
        node_isolation(plain, section, None)
        if os.geteuid() != 0 or not shutil.which("setpriv") or not shutil.which("useradd"):
            reason = "not root" if os.geteuid() != 0 else "setpriv or useradd missing"
            section.skip("another uid and --socket-group", reason)
            section.skip("a node as another user", reason)
            accounts = None
        else:
            accounts = Accounts(stress)
            got = accounts.run_client(accounts.outsider, plain.socket)
            section.check("0600 socket refuses another uid", got == "PermissionError", got)
            node_isolation(plain, section, accounts.outsider)
    finally:
        section.check("wardend (plain) stops cleanly (exit 0)", plain.stop() == 0)

    tokens = stress.tmp / "tokens"
    tokens.write_text("ci:s3cret-token\n")
    os.chmod(tokens, 0o600)
    port = free_port()
    extra = ["--listen", f"127.0.0.1:{port}", "--token-file", str(tokens)]
    if accounts:
        extra += ["--socket-group", accounts.group]
    shared = Daemon(stress, "access-shared", extra=extra).start()
    try:
        if accounts:
            mode = os.stat(shared.socket).st_mode & 0o777
            section.check("--socket-group socket is 0660", mode == 0o660, oct(mode))
            got = accounts.run_client(accounts.member, shared.socket)
            section.check("--socket-group lets a member in", got.startswith("HTTP/1.1 200"), got)
            got = accounts.run_client(accounts.outsider, shared.socket)
            section.check("--socket-group keeps a non-member out", got == "PermissionError", got)
            section.figure(f"socket {oct(mode)} group {accounts.group}")
        tcp(shared, port, section)
    finally:
        section.check("wardend (shared) stops cleanly (exit 0)", shared.stop() == 0)
    remote_refused(stress, tokens, section)


def tcp(d, port, section):
    host = f"127.0.0.1:{port}"
    address = ("127.0.0.1", port)

    def get(headers):
        request = f"GET /api/health HTTP/1.1\r\nConnection: close\r\n{headers}\r\n".encode()
        return raw_exchange(None, request, family=socket.AF_INET, address=address)

    r = get(f"Host: {host}\r\n")
    section.check("TCP without a token is 401 with WWW-Authenticate: Bearer",
                  r.status == 401 and r.headers.get("WWW-Authenticate") == "Bearer", repr(r))
    r = get(f"Host: {host}\r\nAuthorization: Bearer wrong\r\n")
    section.check("TCP with a wrong token is 401", r.status == 401, repr(r))
    r = get(f"Host: {host}\r\nAuthorization: Basic czNjcmV0LXRva2Vu\r\n")
    section.check("TCP with another scheme is 401", r.status == 401, repr(r))
    r = get(f"Host: {host}\r\nAuthorization: Bearer s3cret-token\r\n")
    section.check("TCP with the token is 200", r.status == 200, repr(r))
    for name in (f"localhost:{port}", f"[::1]:{port}"):
        r = get(f"Host: {name}\r\nAuthorization: Bearer s3cret-token\r\n")
        section.check(f"TCP Host {name} is served", r.status == 200, repr(r))
    r = get(f"Host: rebound.example:{port}\r\nAuthorization: Bearer s3cret-token\r\n")
    section.check("TCP with a foreign Host (DNS rebinding) is 421", r.status == 421, repr(r))
    r = get(f"Host: {host}\r\nAuthorization: Bearer s3cret-token\r\nSec-Fetch-Site: cross-site\r\n")
    section.check("TCP GET with Sec-Fetch-Site: cross-site is 403", r.status == 403, repr(r))


def cross_site(d, section):
    """A body-less stop, as a browser form or fetch() of another site could send it."""
    execution_id = d.create({"nodes": [{"id": "a", "argv": ["sleep", "600"]}]}).json()[
        "executionId"]
    target = f"/api/executions/{execution_id}/stop"
    statuses = []
    for content_type in (None, "text/plain", "application/x-www-form-urlencoded",
                         "multipart/form-data; boundary=x"):
        request = (f"POST {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                   + (f"Content-Type: {content_type}\r\n" if content_type else "")
                   + "Content-Length: 0\r\n\r\n").encode()
        r = raw_exchange(d.socket, request)
        statuses.append(r.status)
        section.check(f"body-less stop with {content_type or 'no'} Content-Type is 415",
                      r.status == 415, repr(r))
    for what, extra in (("Origin of another site", "Origin: http://evil.example\r\n"),
                        ("Origin null", "Origin: null\r\n"),
                        ("Sec-Fetch-Site: cross-site", "Sec-Fetch-Site: cross-site\r\n"),
                        ("Sec-Fetch-Site: same-site", "Sec-Fetch-Site: same-site\r\n")):
        request = (f"POST {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra}"
                   "Content-Type: application/json\r\nContent-Length: 0\r\n\r\n").encode()
        r = raw_exchange(d.socket, request)
        statuses.append(r.status)
        section.check(f"stop with {what} is 403", r.status == 403 and
                      "cross-site" in r.error()[1], repr(r))
    status = d.execution(execution_id).get("status")
    section.check("no refused request stopped the execution", status == "running", status)
    section.figure(f"cross-site stops: {statuses.count(415)} x 415, {statuses.count(403)} x 403 "
                   f"of {len(statuses)}")
    request = (f"POST {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
               "Origin: http://localhost\r\nSec-Fetch-Site: same-origin\r\n"
               "Content-Type: application/json\r\nContent-Length: 0\r\n\r\n").encode()
    r = raw_exchange(d.socket, request)
    section.check("same-origin body-less stop with the header is 200", r.status == 200, repr(r))


def node_isolation(d, section, other_user):
    if other_user is None:
        spec = {"nodes": [{"id": "fds", "argv": [sys.executable, "-c", LIST_FDS]}]}
        r = d.create(spec)
        execution_id = r.json()["executionId"]
        wait_ended(d, execution_id)
        listing = d.call("GET", f"/api/executions/{execution_id}/nodes/fds/log").body.decode()
        fds = dict(line.split(" ", 1) for line in listing.splitlines() if " " in line)
        extra = {fd: target for fd, target in fds.items() if fd not in ("0", "1", "2")}
        # One more is expected: WARDEN_NOTIFY_FD (a pipe).
        pipes = [fd for fd, target in extra.items() if target.startswith("pipe:")]
        leaked = {fd: t for fd, t in extra.items() if fd not in pipes[:1]}
        section.check("no daemon descriptor leaks into a node (0-2 and the notify pipe)",
                      bool(fds) and not leaked, f"{fds}")
        section.figure(f"node fds {','.join(sorted(fds, key=int))}")
        return
    secret = "stress-secret-output"
    reader = ("cat \"$0/output/$WARDEN_EXECUTION_ID/a.1.stdout\" >/dev/null 2>&1; echo out=$?; "
              "cat \"$0/warden.db\" >/dev/null 2>&1; echo db=$?; "
              "cat \"$0/wardend.log\" >/dev/null 2>&1; echo log=$?")
    spec = {"nodes": [{"id": "a", "argv": ["echo", secret]},
                      {"id": "b", "needs": ["a"], "user": other_user,
                       "argv": ["sh", "-c", reader, str(d.data)]}]}
    r = d.create(spec)
    execution_id = r.json()["executionId"]
    wait_ended(d, execution_id)
    log_b = d.call("GET", f"/api/executions/{execution_id}/nodes/b/log").body.decode()
    results = dict(line.split("=", 1) for line in log_b.split() if "=" in line)
    section.check("a node as another user cannot read another node's output",
                  results.get("out") not in (None, "0"), log_b.strip())
    section.check("a node as another user cannot read the journal",
                  results.get("db") not in (None, "0") and results.get("log") not in (None, "0"),
                  log_b.strip())


def wait_ended(d, execution_id, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if d.execution(execution_id).get("status") in ("completed", "failed", "stopped"):
            return
        time.sleep(0.05)


def remote_refused(stress, tokens, section):
    argv = [str(stress.wardend), "--data-dir", str(stress.tmp / "remote-data"), "--socket",
            str(stress.tmp / "remote.sock"), "--listen", f"0.0.0.0:{free_port()}",
            "--token-file", str(tokens)]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    stress.started.append(proc)
    try:
        _, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    section.check("a non-loopback --listen without --allow-remote exits 64",
                  proc.returncode == 64 and "allow-remote" in err,
                  f"exit {proc.returncode}: {err.strip()[-160:]}")
