"""Storage faults (b) and (c) of section 4, a full disk and a read-only file system, run by
a worker: the battery re-runs itself in a private mount namespace
(`unshare -m ... stress --fault-worker tmpfs`), mounts a 2 MiB tmpfs there for the data
directories, and reports each check to the parent battery as a JSON line. The mounts vanish
with the namespace; the parent kills, by pid and start time, whatever daemon the worker
could not stop."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from stress_support import (Daemon, Section, StressError, fault_row, integrity, log,
                            proc_start_time, sleeper, wait_gone)


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
