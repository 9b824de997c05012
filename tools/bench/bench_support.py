"""What every part of tools/bench/bench uses: progress lines, the error it stops on,
statistics and the cells of the table, /proc readers and the processes it must account for."""

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# The sections, in the order of the table.
SECTIONS = ["dag", "stop", "journal", "http", "footprint", "build", "startup"]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# ---- statistics and formatting ----

def summary(values):
    return statistics.median(values), min(values), max(values)


def number(v):
    """Three significant digits, without exponents."""
    a = abs(v)
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def seconds_cell(values, unit=None):
    """median (min–max) of durations in seconds, in s or ms (`unit`, else by the median)."""
    med, lo, hi = summary(values)
    unit = unit or ("s" if med >= 1 else "ms")
    k = 1 if unit == "s" else 1000
    return f"{number(med * k)} {unit} ({number(lo * k)}–{number(hi * k)})"


def rate_cell(values):
    med, lo, hi = summary(values)

    def k(v):
        return f"{v / 1000:.1f}k" if v >= 1000 else number(v)
    return f"{k(med)}/s ({k(lo)}–{k(hi)})"


def ratio_cell(values):
    med, lo, hi = summary(values)
    return f"{med:.2f}× ({lo:.2f}–{hi:.2f})"


def pairs(n):
    return f"{n} pair{'s' if n != 1 else ''}"


def kib(kb):
    return f"{kb / 1024:.1f} MiB" if kb >= 1024 else f"{kb} kB"


class Table:
    def __init__(self):
        self.rows = []  # (section, what, warden, reference, ratio, runs)

    def add(self, section, what, warden, reference, ratio="", runs=""):
        self.rows.append((section, what, warden, reference, ratio, str(runs)))

    def markdown(self):
        lines = ["| what | Warden | reference | Warden ÷ reference | runs |",
                 "|---|---|---|---|---|"]
        order = {s: i for i, s in enumerate(SECTIONS)}
        for row in sorted(self.rows, key=lambda r: order[r[0]]):
            lines.append("| " + " | ".join(row[1:]) + " |")
        return "\n".join(lines)


# ---- processes ----

def proc_start_time(pid):
    """Start time (clock ticks since boot) of a live, non-zombie process, else None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    return None if fields[0] == "Z" else int(fields[19])


def proc_comm(pid):
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def proc_status_kb(pid, field):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def process_cpu_s(pid):
    """utime + stime of the whole process (every thread), in seconds."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def thread_activity(pid):
    """{tid: (comm, CPU ticks, context switches)} for every thread of `pid`."""
    threads = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
            fields = stat[stat.rfind(")") + 2:].split()
            switches = 0
            for line in (task / "status").read_text().splitlines():
                if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                    switches += int(line.split()[1])
            comm = stat[stat.find("(") + 1:stat.rfind(")")]
            threads[int(task.name)] = (comm, int(fields[11]) + int(fields[12]), switches)
        except OSError:  # a thread that ended meanwhile
            pass
    return threads


def activity_since(before, after):
    """(ticks, switches) over the threads of `after` since `before` (a new thread counts
    from zero)."""
    ticks = switches = 0
    for tid, (_, t, s) in after.items():
        _, t0, s0 = before.get(tid, ("", 0, 0))
        ticks += t - t0
        switches += s - s0
    return ticks, switches


def children(pid):
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


class Processes:
    """Every process the bench started or saw running for it, by (pid, start time), so that
    the end can check each one is gone without mistaking a recycled pid for it."""

    def __init__(self):
        self.seen = {}  # pid -> (start time, what)

    def note(self, pid, what):
        start = proc_start_time(pid)
        if start is not None:
            self.seen[pid] = (start, what)

    def alive(self):
        return [(pid, what) for pid, (start, what) in self.seen.items()
                if proc_start_time(pid) == start]


def run_timed(argv, cwd=None, check=True):
    """Runs argv with stdout and stderr discarded; returns its wall time in seconds."""
    start = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if check and result.returncode != 0:
        raise BenchError(f"{' '.join(map(str, argv[:4]))} … exited {result.returncode}: "
                         f"{result.stderr.decode(errors='replace')[-500:]}")
    return elapsed
