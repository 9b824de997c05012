"""Section 4, storage faults through the daemon: the journal locked by another process, a full
disk, a read-only file system and a deleted WAL file. Each fault gets a row of its own:
injected, survived (the daemon answered throughout and lost nothing acknowledged), needs
restart (new work was still refused once the fault was gone).

The full disk and the read-only file system are a 2 MiB tmpfs mounted over the data
directory inside a private mount namespace: the battery re-runs itself there
(`unshare -m ... stress --fault-worker tmpfs`), and the mount vanishes with the namespace."""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from stress_support import (Daemon, HealthProbe, Section, StressError, alive, log,
                            proc_start_time, sleeper)

BUSY_TIMEOUT_S = 10  # api.md: the busy timeout of the journal's write lock


def fault_row(section, injected, survived, restart, label=""):
    yes = {True: "yes", False: "no", None: "n/a"}
    section.figure(f"{label + ': ' if label else ''}injected {yes[injected]}, survived "
                   f"{yes[survived]}, needs restart {yes[restart]}")


def run(stress, section):
    section.name = "4a journal locked"
    db_locked(stress, section)
    tmpfs = stress.new_section("4b+c disk full, read-only")
    reason = tmpfs_unavailable()
    if reason:
        tmpfs.skip("disk full and read-only file system", reason)
    else:
        run_worker(stress, tmpfs)
    wal_deleted(stress, stress.new_section("4d WAL deleted"))


def tmpfs_unavailable():
    if os.geteuid() != 0:
        return "not root: mounting a tmpfs needs CAP_SYS_ADMIN"
    if not os.path.ismount("/"):
        return "/ is not a mount point (unshare -m would not isolate the tmpfs)"
    if not shutil.which("unshare"):
        return "unshare (util-linux) is not installed"
    return None


def integrity(db_path):
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
        try:
            return db.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error as e:
        return f"error: {e}"


def journal_ids(db_path):
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        return {row[0]: row[1] for row in db.execute("SELECT id, status FROM executions")}
    finally:
        db.close()


def wait_gone(pid, timeout):
    start = time.monotonic()
    started = proc_start_time(pid)
    while time.monotonic() - start < timeout:
        if proc_start_time(pid) != started or not alive(pid):
            return time.monotonic() - start
        time.sleep(0.002)
    return None


def in_thread(fn):
    result = {}

    def body():
        begun = time.monotonic()
        try:
            result["value"] = fn()
        except Exception as e:  # noqa: BLE001 - recorded and reported as the check's detail
            result["error"] = repr(e)
        result["seconds"] = time.monotonic() - begun

    t = threading.Thread(target=body, daemon=True)
    t.start()
    return t, result


# ---- (a) another process holds the write lock past the busy timeout ----

LOCKER = r"""
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=0)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("ROLLBACK")
"""


def db_locked(stress, section):
    d = Daemon(stress, "locked").start()
    try:
        keep = d.create(sleeper(600)).json()["executionId"]
        victim = d.create(sleeper(600)).json()["executionId"]
        victim_pid = d.wait_node_pid(victim)
        d.wait_node_pid(keep)
        hold = BUSY_TIMEOUT_S + 3
        locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(d.data / "warden.db"),
                                   str(hold)], stdout=subprocess.PIPE, text=True)
        stress.started.append(locker)
        locker.stdout.readline()
        locked_at = time.monotonic()
        log(f"4a: journal locked for {hold} s by pid {locker.pid}")
        with HealthProbe(d.socket, interval=0.05, timeout=hold + 10) as probe:
            time.sleep(1)
            creating, created = in_thread(lambda: d.create(sleeper(1), timeout=hold + 20))
            time.sleep(1)
            stopping, stopped = in_thread(lambda: d.call(
                "POST", f"/api/executions/{victim}/stop", '{"graceMs":5000}', timeout=hold + 20))
            signalled = wait_gone(victim_pid, hold + 5)
            locker.wait(hold + 10)
            released_at = time.monotonic()
            creating.join(30)
            stopping.join(30)
            time.sleep(1)
        during = [lat for at, lat in probe.samples if locked_at <= at < released_at]
        worst = max(during, default=0)
        section.check("health answers fast (< 200 ms) while the journal is locked",
                      worst < 0.2 and not probe.failures,
                      f"worst {worst * 1000:.0f} ms; {probe.failures[:2]}")
        section.figure(f"health worst {worst * 1000:.0f} ms while locked")
        reply = created.get("value")
        ok = reply is not None and (reply.status == 201 or (
            reply.status == 503 and any(w in reply.error()[1].lower() for w in ("busy", "lock"))))
        section.check("a create waits or gets 503 naming the busy journal", ok,
                      f"{reply!r} after {created.get('seconds', 0):.1f} s {created.get('error', '')}")
        section.check("a stop signals within ~100 ms while the journal is locked",
                      signalled is not None and signalled <= 0.15,
                      f"node gone {signalled and round(signalled * 1000)} ms after the stop")
        if signalled is not None:
            section.figure(f"stop signalled after {signalled * 1000:.0f} ms")
        reply = stopped.get("value")
        section.check("the stop is answered", reply is not None and reply.status == 200,
                      f"{reply!r} {stopped.get('error', '')}")
        status = d.execution(keep).get("status")
        section.check("the running execution does not fail", status == "running", status)
        health = d.call("GET", "/api/health").json()
        after = d.create(sleeper(1))
        restart = after.status != 201
        section.check("new work accepted once the lock is gone", not restart, repr(after))
        section.check("journal healthy once the lock is gone", health.get("journal") == "ok",
                      str(health))
        survived = d.running() and status == "running" and worst < 0.2
        fault_row(section, True, survived, restart)
        d.call("POST", f"/api/executions/{keep}/stop", '{"graceMs":0}')
    finally:
        section.check("wardend stops cleanly (exit 0)", d.stop() == 0)


# ---- (d) the WAL file deleted under the running daemon ----

def wal_deleted(stress, section):
    d = Daemon(stress, "wal").start()
    wal = d.data / "warden.db-wal"
    acknowledged = []
    try:
        running = d.create(sleeper(600)).json()["executionId"]
        acknowledged.append(running)
        pid = d.wait_node_pid(running)
        injected = wal.exists()
        if injected:
            wal.unlink()
        section.check("WAL file deleted while an execution runs", injected, str(wal))
        created = d.create(sleeper(0.1))
        if created.status == 201:
            acknowledged.append(created.json()["executionId"])
        section.check("create after the deletion answered (201 or 503)",
                      created.status in (201, 503), repr(created))
        stop = d.call("POST", f"/api/executions/{running}/stop", '{"graceMs":0}')
        section.check("the running node is still stoppable", stop.status == 200 and
                      wait_gone(pid, 5) is not None, repr(stop))
        section.check("reads still answered", d.call("GET", "/api/executions?state=all").status
                      == 200)
        health = d.call("GET", "/api/health").json()
        section.figure(f"after deletion: journal {health.get('journal')}, "
                       f"create {created.status}, WAL file back: {wal.exists()}")
        restart = created.status != 201
    finally:
        code = d.stop()
    section.check("wardend stops cleanly (exit 0)", code == 0, f"exit {code}")
    again = Daemon(stress, "wal").start()
    try:
        known = {e: again.call("GET", f"/api/executions/{e}").status for e in acknowledged}
        missing = [e for e, s in known.items() if s != 200]
    finally:
        again.stop()
    section.check("after a restart nothing acknowledged is missing", not missing,
                  f"missing {missing} of {len(acknowledged)}")
    verdict = integrity(again.data / "warden.db")
    section.check("PRAGMA integrity_check ok", verdict == "ok", verdict)
    fault_row(section, injected, not missing and verdict == "ok", restart)


# ---- (b) and (c): the worker, inside its own mount namespace ----

def run_worker(stress, section):
    pids = stress.tmp / "worker-pids"
    env = dict(os.environ, WARDEN_STRESS_TMP=str(stress.tmp), WARDEN_STRESS_PIDS=str(pids))
    argv = ["unshare", "--mount", "--propagation", "private", "--", sys.executable,
            str(Path(__file__).resolve().parent / "stress"), "--fault-worker", "tmpfs",
            "--build-dir", str(stress.build)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
    stress.started.append(proc)
    try:
        for line in proc.stdout:
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if "check" in item:
                section.check(item["check"], item["ok"], item.get("detail", ""))
            elif "figure" in item:
                section.figure(item["figure"])
            elif "skip" in item:
                section.skip(item["skip"], item["reason"])
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        # Whatever the worker started and could not stop (it died), by pid and start time.
        if pids.exists():
            for line in pids.read_text().split():
                pid, start = map(int, line.split(":"))
                if proc_start_time(pid) == start:
                    log(f"killing pid {pid} the fault worker left")
                    os.kill(pid, 9)
    section.check("fault worker finished", proc.returncode == 0, f"exit {proc.returncode}")


class WorkerStress:
    """The little of Stress a Daemon needs, inside the worker."""

    def __init__(self, args):
        self.tmp = Path(os.environ["WARDEN_STRESS_TMP"])
        self.build = Path(args.build_dir)
        self.wardend = self.build / "src/daemon/wardend"
        self.started = []


class EmitSection(Section):
    """A Section whose results go to the parent battery as JSON lines."""

    def check(self, what, ok, detail=""):
        print(json.dumps({"check": what, "ok": bool(ok), "detail": str(detail)}), flush=True)
        return ok

    def figure(self, text):
        print(json.dumps({"figure": text}), flush=True)

    def skip(self, what, reason):
        print(json.dumps({"skip": what, "reason": reason}), flush=True)


def worker_main(args):
    stress = WorkerStress(args)
    section = EmitSection("tmpfs")
    mount_point = stress.tmp / "tmpfs"
    mount_point.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs",
                    str(mount_point)], check=True)
    pid_file = Path(os.environ["WARDEN_STRESS_PIDS"])
    try:
        disk_full(stress, section, mount_point, pid_file)
        read_only(stress, section, mount_point, pid_file)
    except StressError as e:
        section.check("fault worker ran to its end", False, str(e))
    finally:
        for proc in stress.started:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        subprocess.run(["umount", "--lazy", str(mount_point)], check=False)
    return 0


def start_noted(daemon, pid_file):
    daemon.start()
    with open(pid_file, "a") as f:
        for pid in (daemon.pid, daemon.keeper):
            if pid:
                f.write(f"{pid}:{proc_start_time(pid)}\n")
    return daemon


def fill(path):
    """Writes `path` until the file system is full."""
    block = b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(block)
        except OSError:
            pass
        try:
            while True:
                f.write(b"\0" * 512)
        except OSError:
            pass


def disk_full(stress, section, mount_point, pid_file):
    name = "disk full"
    data = mount_point / "full"
    d = start_noted(Daemon(stress, "full", data_dir=data), pid_file)
    acknowledged = []
    restart = None
    try:
        running = d.create(sleeper(600)).json()["executionId"]
        acknowledged.append(running)
        pid = d.wait_node_pid(running)
        filler = mount_point / "filler"
        fill(filler)
        # The WAL may reuse its space for a while: creates go on until one is refused.
        refused = None
        for _ in range(500):
            r = d.create(sleeper(1), query="?start=false")
            if r.status != 201:
                refused = r
                break
            acknowledged.append(r.json()["executionId"])
        section.figure(f"{name}: {len(acknowledged) - 1} creates still fit")
        message = refused.error()[1] if refused else ""
        section.check(f"{name}: changes refused with 503 naming the cause",
                      refused is not None and refused.status == 503 and any(
                          w in message.lower() for w in ("full", "space", "disk")),
                      f"{refused!r}")
        health = d.call("GET", "/api/health")
        section.check(f"{name}: health answered and reports the journal",
                      health.status == 200 and health.json().get("journal") == "failed",
                      repr(health))
        listed = d.call("GET", "/api/executions?state=all")
        section.check(f"{name}: reads still answered", listed.status == 200 and
                      d.call("GET", f"/api/executions/{running}").status == 200, repr(listed))
        stop = d.call("POST", f"/api/executions/{running}/stop", '{"graceMs":0}')
        gone = wait_gone(pid, 5)
        section.check(f"{name}: a running node is still stoppable",
                      stop.status == 200 and gone is not None, repr(stop))
        filler.unlink()
        after = d.create(sleeper(1), query="?start=false")
        if after.status == 201:
            acknowledged.append(after.json()["executionId"])
        restart = after.status != 201
        section.figure(f"{name}: after freeing space create {after.status}")
        survived = d.running()
    finally:
        code = d.stop()
    section.check(f"{name}: wardend shuts down (exit 0, or 1: shutdown not journaled)",
                  code in (0, 1), f"exit {code}")
    again = start_noted(Daemon(stress, "full", data_dir=data), pid_file)
    try:
        missing = [e for e in acknowledged
                   if again.call("GET", f"/api/executions/{e}").status != 200]
        works = again.create(sleeper(1), query="?start=false").status == 201
    finally:
        again.stop()
    section.check(f"{name}: nothing acknowledged is missing after a restart", not missing,
                  f"missing {len(missing)} of {len(acknowledged)}: {missing[:3]}")
    section.check(f"{name}: new work accepted after a restart", works)
    verdict = integrity(data / "warden.db")
    section.check(f"{name}: PRAGMA integrity_check ok", verdict == "ok", verdict)
    fault_row(section, True, survived and not missing and verdict == "ok", restart, name)


def read_only(stress, section, mount_point, pid_file):
    """The tmpfs remounted read-only under the daemon; where the kernel refuses that (it does
    while a file is open for writing), an ext4 file system on a loop device that an error
    turns read-only (errors=remount-ro), as a failing disk would."""
    name = "read-only"
    d = start_noted(Daemon(stress, "ro", data_dir=mount_point / "ro"), pid_file)
    try:
        remount = subprocess.run(["mount", "-o", "remount,ro", str(mount_point)],
                                 capture_output=True, text=True)
        if remount.returncode == 0:
            subprocess.run(["mount", "-o", "remount,rw", str(mount_point)], check=True)
    finally:
        d.stop()
    if remount.returncode == 0:
        section.skip(f"{name}: the ext4 case", "the tmpfs went read-only: see the tmpfs rows")
        return read_only_checks(stress, section, name, mount_point, mount_point / "ro",
                                pid_file, lambda: subprocess.run(
                                    ["mount", "-o", "remount,ro", str(mount_point)], check=True))
    why = (remount.stderr.strip().splitlines() or ["refused"])[0].split(": ")[-1]
    section.skip(f"{name}: tmpfs remount,ro", f"the kernel refuses while wardend holds the "
                 f"journal open for writing ({why})")
    if not shutil.which("mkfs.ext4") or not os.path.exists("/dev/loop-control"):
        section.skip(f"{name}: ext4 errors=remount-ro", "no mkfs.ext4 or no loop devices")
        return
    image = stress.tmp / "ro.img"
    with open(image, "wb") as f:
        f.truncate(8 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
    ext4 = stress.tmp / "ext4"
    ext4.mkdir(exist_ok=True)
    subprocess.run(["mount", "-o", "loop,errors=remount-ro", str(image), str(ext4)], check=True)
    try:
        device = subprocess.run(["findmnt", "-n", "-o", "SOURCE", str(ext4)], capture_output=True,
                                text=True).stdout.strip()
        trigger = Path(f"/sys/fs/ext4/{os.path.basename(device)}/trigger_fs_error")

        def inject():
            trigger.write_text("stress: read-only injection\n")

        read_only_checks(stress, section, f"{name} (ext4)", ext4, ext4 / "data", pid_file,
                         inject, image)
    finally:
        subprocess.run(["umount", str(ext4)], check=False)


def wait_read_only(mount_point, timeout=5):
    """True once a new file cannot be made on `mount_point` for want of write access (ext4
    handles an error in the background)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            probe = mount_point / ".stress-probe"
            probe.write_text("")
            probe.unlink()
        except OSError as e:
            if e.errno == 30:  # EROFS
                return True
        time.sleep(0.05)
    return False


def read_only_checks(stress, section, name, mount_point, data, pid_file, inject, image=None):
    d = start_noted(Daemon(stress, "ro", data_dir=data), pid_file)
    acknowledged = []
    restart = None
    survived = False
    injected = False
    try:
        running = d.create(sleeper(600)).json()["executionId"]
        acknowledged.append(running)
        pid = d.wait_node_pid(running)
        inject()
        injected = wait_read_only(mount_point)
        section.check(f"{name}: the file system went read-only under wardend", injected)
        r = d.create(sleeper(1), query="?start=false")
        if r.status == 201:
            acknowledged.append(r.json()["executionId"])
        message = r.error()[1]
        section.check(f"{name}: changes refused with 503 naming the cause",
                      r.status == 503 and any(w in message.lower() for w in (
                          "read-only", "readonly", "i/o")), repr(r))
        health = d.call("GET", "/api/health")
        section.check(f"{name}: reads still answered", health.status == 200 and
                      d.call("GET", f"/api/executions/{running}").status == 200, repr(health))
        stop = d.call("POST", f"/api/executions/{running}/stop", '{"graceMs":0}')
        section.check(f"{name}: a running node is still stoppable",
                      stop.status == 200 and wait_gone(pid, 5) is not None, repr(stop))
        survived = d.running()
    finally:
        code = d.stop()
    section.check(f"{name}: wardend shuts down (exit 0, or 1: shutdown not journaled)",
                  code in (0, 1), f"exit {code}")
    if image is not None:
        # The error stays recorded in the superblock: repair it as an operator would.
        subprocess.run(["umount", str(mount_point)], check=True)
        subprocess.run(["e2fsck", "-fy", str(image)], capture_output=True)
        subprocess.run(["mount", "-o", "loop", str(image), str(mount_point)], check=True)
    else:
        subprocess.run(["mount", "-o", "remount,rw", str(mount_point)], check=True)
    again = start_noted(Daemon(stress, "ro", data_dir=data), pid_file)
    try:
        missing = [e for e in acknowledged
                   if again.call("GET", f"/api/executions/{e}").status != 200]
        works = again.create(sleeper(1), query="?start=false").status == 201
    finally:
        again.stop()
    # An ext4 that an error made read-only comes back only unmounted and repaired, so the
    # daemon on it has to stop and start again whatever it does itself.
    restart = True if image is not None else None
    section.check(f"{name}: nothing acknowledged is missing after a restart", not missing,
                  str(missing))
    section.check(f"{name}: new work accepted after a restart", works)
    verdict = integrity(data / "warden.db")
    section.check(f"{name}: PRAGMA integrity_check ok", verdict == "ok", verdict)
    fault_row(section, injected, survived and not missing and verdict == "ok", restart, name)
