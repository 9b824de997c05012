"""Section 4, storage faults through the daemon: the journal locked by another process, a full
disk, a read-only file system, a deleted WAL file and a corrupted index page. Each fault gets a row of its own:
injected, survived (the daemon answered throughout and lost nothing acknowledged), needs
restart (new work was still refused once the fault was gone).

The full disk and the read-only file system are in file_system_faults.py."""

import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import threading
import time

import file_system_faults
from stress_support import (Daemon, HealthProbe, fault_row, integrity, log, processes_of,
                            sleeper, wait_gone)

BUSY_TIMEOUT_S = 10  # api.md: the busy timeout of the journal's write lock


def run(stress, section):
    section.name = "4a journal locked"
    db_locked(stress, section)
    tmpfs = stress.new_section("4b+c disk full, read-only")
    reason = tmpfs_unavailable()
    if reason:
        tmpfs.skip("disk full and read-only file system", reason)
    else:
        file_system_faults.run_worker(stress, tmpfs)
    wal = stress.new_section("4d WAL deleted")
    wal_deleted(stress, wal, crash=False)
    wal_deleted(stress, wal, crash=True)
    corrupted_page(stress, stress.new_section("4e corrupted page"))


def tmpfs_unavailable():
    if os.geteuid() != 0:
        return "not root: mounting a tmpfs needs CAP_SYS_ADMIN"
    if not os.path.ismount("/"):
        return "/ is not a mount point (unshare -m would not isolate the tmpfs)"
    if not shutil.which("unshare"):
        return "unshare (util-linux) is not installed"
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
        # The loop waits for the lock once, at most the writer's lock_bound (100 ms), before
        # it knows the journal is busy; the rest is the margin of a shared CI machine.
        section.check("health answers fast (< 500 ms) while the journal is locked",
                      worst < 0.5 and not probe.failures,
                      f"worst {worst * 1000:.0f} ms; {probe.failures[:2]}")
        section.figure(f"health worst {worst * 1000:.0f} ms while locked")
        reply = created.get("value")
        ok = reply is not None and (reply.status == 201 or (
            reply.status == 503 and any(w in reply.error()[1].lower() for w in ("busy", "lock"))))
        section.check("a create waits or gets 503 naming the busy journal", ok,
                      f"{reply!r} after {created.get('seconds', 0):.1f} s "
                      f"{created.get('error', '')}")
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
        survived = d.running() and status == "running" and worst < 0.5
        fault_row(section, True, survived, restart)
        d.call("POST", f"/api/executions/{keep}/stop", '{"graceMs":0}')
    finally:
        section.check("wardend stops cleanly (exit 0)", d.stop() == 0)


# ---- (d) the WAL file deleted under the running daemon ----

def wal_deleted(stress, section, crash):
    """Deletes warden.db-wal under a daemon with a running execution, goes on working, then
    stops the daemon cleanly or (`crash`) kills it, and looks at what a new daemon knows."""
    how = "crash" if crash else "clean stop"
    d = Daemon(stress, f"wal-{'crash' if crash else 'clean'}").start()
    wal = d.data / "warden.db-wal"
    acknowledged = []
    try:
        running = d.create(sleeper(600)).json()["executionId"]
        acknowledged.append(running)
        pid = d.wait_node_pid(running)
        injected = wal.exists()
        if injected:
            wal.unlink()
        section.check(f"{how}: WAL file deleted while an execution runs", injected, str(wal))
        created = d.create(sleeper(600))
        if created.status == 201:
            acknowledged.append(created.json()["executionId"])
        section.check(f"{how}: create after the deletion answered (201 or 503)",
                      created.status in (201, 503), repr(created))
        stop = d.call("POST", f"/api/executions/{running}/stop", '{"graceMs":0}')
        section.check(f"{how}: the running node is still stoppable", stop.status == 200 and
                      wait_gone(pid, 5) is not None, repr(stop))
        section.check(f"{how}: reads still answered",
                      d.call("GET", "/api/executions?state=all").status == 200)
        health = d.call("GET", "/api/health").json()
        section.figure(f"{how}: journal {health.get('journal')} after the deletion, create "
                       f"{created.status}, WAL file back: {wal.exists()}")
        # The journal fails stickily once it has seen the WAL gone: service needs a restart.
        restart = created.status != 201 or health.get("journal") != "ok"
    finally:
        if crash:
            d.kill()
            code = None
        else:
            code = d.stop()
    if not crash:
        # Exit 1: wardend could not journal its own stop, which is true once the journal
        # has failed.
        section.check(f"{how}: wardend stops cleanly (exit 0, or 1 with a failed journal)",
                      code == 0 or (code == 1 and restart), f"exit {code}")
    again = Daemon(stress, d.name).start()
    try:
        known = {e: again.call("GET", f"/api/executions/{e}").status for e in acknowledged}
        missing = [e for e, s in known.items() if s != 200]
    finally:
        again.stop()
    section.check(f"{how}: after a restart nothing acknowledged is missing", not missing,
                  f"missing {len(missing)} of {len(acknowledged)}")
    left = processes_of(acknowledged)
    for orphan in left:
        os.kill(orphan, 9)
    section.check(f"{how}: no node process left behind after the restart", not left,
                  f"killed {left}")
    verdict = integrity(again.data / "warden.db")
    section.check(f"{how}: PRAGMA integrity_check ok", verdict == "ok", verdict)
    fault_row(section, injected, not missing and not left and verdict == "ok", restart, how)


# ---- (e) a corrupted page of one of the journal's indexes ----

INDEX = "journal_by_execution"  # every row is in it: big enough to have leaf pages


def first_leaf_of(db_path, index):
    """The page number of the first child of `index`'s root (a leaf under an interior root),
    or None when the index still fits in its root page."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (index,)).fetchone()[0]
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
    finally:
        db.close()
    with open(db_path, "rb") as f:
        f.seek((root - 1) * page_size)
        page = f.read(page_size)
    if page[0] != 0x02:  # not an interior index page
        return None, page_size
    cell = struct.unpack(">H", page[12:14])[0]
    return struct.unpack(">I", page[cell:cell + 4])[0], page_size


def corrupted_page(stress, section):
    """Overwrites part of a leaf page of an index while the daemon is stopped (as a bad disk
    sector would), starts it again, and removes the fault the way an operator would: the
    daemon stopped, `REINDEX` rebuilds every index from the table, nothing is lost."""
    d = Daemon(stress, "corrupt").start()
    acknowledged = []
    try:
        for _ in range(300):
            r = d.create({"name": "stress", "nodes": [{"id": "a", "argv": ["true"]}]})
            if r.status == 201:
                acknowledged.append(r.json()["executionId"])
    finally:
        d.stop()
    db_path = d.data / "warden.db"
    leaf, page_size = first_leaf_of(db_path, INDEX)
    injected = leaf is not None
    section.check(f"a leaf page of {INDEX} to corrupt", injected, f"page {leaf}")
    if not injected:
        fault_row(section, False, None, None, "corrupted page")
        return
    with open(db_path, "r+b") as f:
        f.seek((leaf - 1) * page_size + 20)
        f.write(b"\x7f" * 200)
    verdict = integrity(db_path)
    section.check("PRAGMA integrity_check names the damaged page", f"page {leaf}" in verdict,
                  verdict[:120])
    section.figure(f"page {leaf} of index {INDEX} ({page_size} bytes) overwritten in part")

    again = Daemon(stress, "corrupt").start()
    try:
        health = again.call("GET", "/api/health")
        section.check("wardend starts and answers health", health.status == 200, repr(health))
        reads = [again.call("GET", f"/api/executions/{e}").status for e in acknowledged[:50]]
        errors = [s for s in reads if s != 200]
        # SQLite finds the damage only where it reads the page: until then, a lookup through
        # the damaged index can miss rows (404 for an execution that exists). Reported as a
        # figure: no check of the daemon's can tell a hidden row from a missing one.
        section.check("reads answered, no hang and no crash", again.running(),
                      f"statuses {sorted(set(reads))}")
        created = again.create({"name": "stress", "nodes": [{"id": "a", "argv": ["true"]}]})
        section.check("a create is acknowledged or refused with 503 naming the damage",
                      created.status == 201 or (created.status == 503 and
                                                "malformed" in created.error()[1]),
                      repr(created))
        if created.status == 201:
            acknowledged.append(created.json()["executionId"])
        section.figure(f"with the damage: {len(errors)} of {len(reads)} reads not 200 "
                       f"({', '.join(str(s) for s in sorted(set(errors))) or '-'}), "
                       f"create {created.status}")
    finally:
        again.stop()

    db = sqlite3.connect(str(db_path))
    try:
        db.execute("REINDEX")
        db.commit()
    finally:
        db.close()
    verdict = integrity(db_path)
    section.check("after REINDEX (daemon stopped): PRAGMA integrity_check ok", verdict == "ok",
                  verdict[:120])
    fixed = Daemon(stress, "corrupt").start()
    try:
        known = [fixed.call("GET", f"/api/executions/{e}").status for e in acknowledged]
        missing = sum(1 for s in known if s != 200)
        section.check("after REINDEX nothing acknowledged is missing", missing == 0,
                      f"missing {missing} of {len(known)}")
        created = fixed.create({"name": "stress", "nodes": [{"id": "a", "argv": ["true"]}]})
        section.check("after REINDEX new work is accepted", created.status == 201, repr(created))
    finally:
        fixed.stop()
    fault_row(section, injected, missing == 0 and verdict == "ok", True, "corrupted page")
