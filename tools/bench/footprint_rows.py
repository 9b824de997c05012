"""The footprint rows: RSS idle and with 10,000 ended executions, and an idle window in
which every thread of every daemon should sleep."""

import json
import threading
import time

from bench_support import BenchError, activity_since, kib, log, proc_status_kb, thread_activity


class FootprintRows:
    """Bench.section_footprint and Bench.idle_window."""

    def section_footprint(self):
        daemon = self.fp
        count = 300 if self.quick else 10000
        threads = 4
        spec = json.dumps({"name": "bench-footprint", "nodes": [{"id": "t", "argv": ["true"]}]})
        log(f"footprint: {count} executions of `true` through the API, {threads} clients")
        errors = []

        def create(k):
            conn = daemon.conn()
            try:
                for _ in range(k):
                    created = conn.json("POST", "/api/executions", spec)
                    status, _ = conn.call(
                        "GET", f"/api/executions/{created['executionId']}/events?follow=true")
                    if status != 200:
                        raise BenchError(f"events answered {status}")
            except Exception as e:  # reported by the main thread
                errors.append(e)

        start = time.perf_counter()
        workers = [threading.Thread(target=create, args=(count // threads,))
                   for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        elapsed = time.perf_counter() - start
        if errors:
            raise errors[0]
        time.sleep(2)
        rss = proc_status_kb(daemon.pid, "VmRSS")
        anon = proc_status_kb(daemon.pid, "RssAnon")
        # Checked after the RSS is read: listing them all reads them back from the journal.
        listed = daemon.conn().json("GET", "/api/executions?state=all")["executions"]
        ended = sum(e["status"] == "completed" for e in listed)
        if ended < count:
            raise BenchError(f"only {ended} of {count} executions completed")
        per_execution = (anon - self.fp_idle[1]) / count
        self.table.add("footprint", f"wardend RSS with {count:,} ended executions on record "
                       "(VmRSS, RssAnon)", f"{kib(rss)} ({kib(anon)} anon, "
                       f"{per_execution:.1f} kB more per execution)",
                       f"the same daemon idle before them: {kib(self.fp_idle[0])} "
                       f"({kib(self.fp_idle[1])} anon)", f"{rss / self.fp_idle[0]:.2f}×", 1)
        self.table.add("footprint", f"{count:,} executions of `true` created through the API, "
                       f"each followed to its end, {threads} clients", f"{elapsed:.1f} s, "
                       f"{count / elapsed:.0f} executions/s", "—", "", 1)

    def idle_window(self, seconds, meanwhile):
        """Samples every daemon's threads (and its keeper's) over `seconds`, running
        `meanwhile` (which starts daemons of its own, never these) in the window. A thread
        samples every half second, so that each wake-up can be told when and where."""
        time.sleep(3)  # node groups are removed about a second after their node ends
        watched = [(d, d.pid) for d in self.daemons] + \
            [(d, d.keeper) for d in self.daemons if d.keeper]
        # The reference: the minimal Beast server, idle since its load ended, on the same
        # Asio (whose reactor never sleeps longer than 5 minutes) with the same read deadline.
        beast = self.beast.pid if self.beast and self.beast.poll() is None else None
        if beast:
            watched.append((None, beast))
        before = {pid: thread_activity(pid) for _, pid in watched}
        start = time.monotonic()
        wakes = {pid: [] for _, pid in watched}  # (seconds into the window, thread, switches)
        done = threading.Event()

        def sample():
            last = dict(before)
            while not done.wait(0.5):
                for _, pid in watched:
                    now = thread_activity(pid)
                    for tid, (comm, _, switches) in now.items():
                        delta = switches - last[pid].get(tid, ("", 0, 0))[2]
                        if delta:
                            wakes[pid].append((time.monotonic() - start, f"{comm} {tid}", delta))
                    last[pid] = now
        sampler = threading.Thread(target=sample)
        sampler.start()
        log(f"idle window: {seconds} s over {len(self.daemons)} daemons")
        try:
            meanwhile()
            remaining = seconds - (time.monotonic() - start)
            if remaining < 0:
                self.notes.append("The idle window ran past its length while the perftests "
                                  "ran; it was sampled when they ended.")
            time.sleep(max(0, remaining))
        finally:
            done.set()
            sampler.join()
        after = {pid: thread_activity(pid) for _, pid in watched}
        window = time.monotonic() - start

        def cell(ticks, switches):
            return f"{ticks} tick{'s' if ticks != 1 else ''}, {switches} switch" + \
                ("es" if switches != 1 else "")
        reference = "target: 0, 0"
        if beast:
            reference += "; minimal Beast server: " + \
                cell(*activity_since(before[beast], after[beast]))
            if wakes[beast]:
                self.notes.append("Idle window, minimal Beast server (its load ended "
                                  f"{start - self.beast_last_used:.0f} s before the window): " +
                                  "; ".join(f"{n} switch{'es' if n != 1 else ''} at {at:.1f} s"
                                            for at, _, n in wakes[beast]) + ".")
        for d in self.daemons:
            t, s = activity_since(before[d.pid], after[d.pid])
            kt = ks = 0
            if d.keeper:
                kt, ks = activity_since(before[d.keeper], after[d.keeper])
            self.table.add("footprint", f"idle {window:.0f} s, wardend {d.describe}: CPU ticks "
                           "and context switches over every thread (warden-keeper apart)",
                           f"{cell(t, s)} (keeper: {kt}, {ks})", reference, "",
                           f"1 × {window:.0f} s")
            seen = wakes[d.pid] + (wakes[d.keeper] if d.keeper else [])
            if seen:
                self.notes.append(
                    f"Idle window, wardend {d.describe} (the bench's last request to it "
                    f"{start - d.last_used:.0f} s before the window): " + "; ".join(
                        f"{n} switch{'es' if n != 1 else ''} of thread {thread} at {at:.1f} s"
                        for at, thread, n in seen) + ".")
