"""The rows that come from Warden's own perftests: journal appends beside raw SQLite
(journal_perftest) and start-up time (recovery_perftest)."""

import json
import statistics
import subprocess

from bench_support import BenchError, log, rate_cell


class PerftestRows:
    """Bench.section_journal and Bench.section_startup."""

    def section_journal(self):
        repetitions = 1 if self.quick else self.runs
        out = self.tmp / "journal_perftest.json"
        log(f"journal_perftest, {repetitions} repetitions")
        subprocess.run([self.build / "tests/journal/journal_perftest",
                        f"--benchmark_repetitions={repetitions}",
                        "--benchmark_enable_random_interleaving=true",
                        f"--benchmark_out={out}", "--benchmark_out_format=json"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rates = {}
        for b in json.loads(out.read_text())["benchmarks"]:
            if b["run_type"] == "iteration":
                family, arg = b["name"].split("/")[:2]
                rates.setdefault((family, arg), []).append(b["items_per_second"])
        for arg, label in [("1", "one event per commit"), ("100", "batches of 100 events")]:
            journal = rates[("BM_JournalAppend", arg)]
            raw = rates[("BM_RawSqliteInsert", arg)]
            self.table.add("journal", f"journal appends, {label} (crash-safe: WAL, "
                           "synchronous=NORMAL), rows/s; higher is better", rate_cell(journal),
                           f"raw SQLite inserts, same table and settings: {rate_cell(raw)}",
                           f"{statistics.median(journal) / statistics.median(raw):.2f}× "
                           "(of medians)", repetitions)

    def section_startup(self):
        runs = 2 if self.quick else self.runs
        argv = [self.build / "tests/recovery/recovery_perftest", "--runs", str(runs)]
        if self.quick:
            argv += ["--big-events", "100000"]
        log(f"recovery_perftest {' '.join(map(str, argv[1:]))}")
        result = subprocess.run(argv, check=True, capture_output=True, text=True)
        rows = {}
        for line in result.stdout.splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) >= 3:
                rows[cells[0]] = cells
        (self.tmp / "recovery_perftest.md").write_text(result.stdout)

        def figure(key):
            cells = rows.get(key)
            if not cells:
                raise BenchError(f"recovery_perftest printed no row {key!r}")
            value, unit = cells[1].split()
            lo, hi = cells[2].replace(unit, "").strip().split("–")
            return float(value), unit, f"{cells[1]} ({lo}–{hi})"

        empty_key = "exec → accepting, journal empty (reference)"
        empty, _, empty_cell = figure(empty_key)
        big_label = "100000 events" if self.quick else "1M events"
        shown = {"100000 events": "100k events"}
        for label in ["10k events", big_label]:
            value, _, cell = figure(f"exec → accepting, journal {label}")
            self.table.add("startup", f"wardend start-up, exec → socket accepts, journal of "
                           f"{shown.get(label, label)} (mostly ended executions)", cell,
                           f"empty journal: {empty_cell}", f"{value / empty:.2f}× (of medians)",
                           runs)
        value, _, cell = figure(f"RssAnon after accept, journal {big_label}")
        empty_rss, _, empty_rss_cell = figure("RssAnon after accept, journal empty (reference)")
        self.table.add("startup", f"wardend RssAnon when the socket accepts, journal of "
                       f"{shown.get(big_label, big_label)}", cell,
                       f"empty journal: {empty_rss_cell}",
                       f"{value / empty_rss:.2f}× (of medians)", runs)
        for mode in ["cgroup", "pgroup"]:
            key = f"100 orphans, {mode}: exec → accepting"
            if key in rows:
                value, _, cell = figure(key)
                self.table.add("startup", f"wardend start-up with crash recovery of 100 live "
                               f"orphans (`sleep 60`), {mode}", cell, f"empty journal: "
                               f"{empty_cell}", f"{value / empty:.2f}× (of medians)", runs)
