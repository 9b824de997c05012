"""The DAG rows: three 1000-node shapes of /bin/true through `warden run`, beside ninja,
make and a posix_spawn floor on the same graphs."""

import json
import statistics
import time

from bench_support import log, pairs, process_cpu_s, ratio_cell, run_timed, seconds_cell


def graph_edges(shape, n):
    """needs per node id, for the three shapes of the DAG rows."""
    needs = {i: [] for i in range(n)}
    if shape == "chain":
        for i in range(1, n):
            needs[i] = [i - 1]
    elif shape == "layers":
        width = n // 10
        for i in range(width, n):
            first = (i // width - 1) * width
            needs[i] = list(range(first, first + width))
    return needs


def write_graphs(directory, shape, n):
    """The same graph three ways: a Warden spec, a build.ninja and a Makefile, each node
    running /bin/true (never creating its output, so every run runs every node)."""
    needs = graph_edges(shape, n)
    directory.mkdir(parents=True, exist_ok=True)
    spec = {"name": f"bench-{shape}", "maxParallel": 2, "nodes": []}
    for i in range(n):
        node = {"id": f"n{i}", "argv": ["/bin/true"]}
        if needs[i]:
            node["needs"] = [f"n{j}" for j in needs[i]]
        spec["nodes"].append(node)
    (directory / "spec.json").write_text(json.dumps(spec))
    ninja = ["rule true", "  command = /bin/true", ""]
    ninja += [f"build n{i}: true" + "".join(f" n{j}" for j in needs[i]) for i in range(n)]
    (directory / "ninja").mkdir(exist_ok=True)
    (directory / "ninja" / "build.ninja").write_text("\n".join(ninja) + "\n")
    has_dependents = {j for i in range(n) for j in needs[i]}
    make = ["MAKEFLAGS += --no-builtin-rules", ".SUFFIXES:",
            ".PHONY: all " + " ".join(f"n{i}" for i in range(n)),
            "all: " + " ".join(f"n{i}" for i in range(n) if i not in has_dependents)]
    for i in range(n):
        make += [f"n{i}:" + "".join(f" n{j}" for j in needs[i]), "\t/bin/true"]
    (directory / "make").mkdir(exist_ok=True)
    (directory / "make" / "Makefile").write_text("\n".join(make) + "\n")


class DagRows:
    """Bench.section_dag."""

    def section_dag(self):
        n = 50 if self.quick else 1000
        cg, pg = self.cg, self.pg
        log(f"DAG shapes: {n} nodes of /bin/true, maxParallel 2 / -j2, {self.runs} runs")
        daemon_of = {"cgroup": cg, "pgroup": pg}

        def commands_for(shape, size, directory):
            write_graphs(directory, shape, size)
            spec = directory / "spec.json"
            return {
                "ninja": ["ninja", "-C", directory / "ninja", "-j2"],
                "cgroup": [self.warden, "--socket", cg.socket, "run", spec],
                "make": ["make", "-C", directory / "make", "-j2"],
                "pgroup": [self.warden, "--socket", pg.socket, "run", spec],
                "floor": [self.tools / "spawn_floor", shape, str(size), "2"],
            }
        # One untimed round first, on a small graph: the first run of each command pays for
        # what later runs find ready (page cache, a new journal's first pages, .ninja_log).
        for argv in commands_for("independent", 100, self.tmp / "graphs" / "warm-up").values():
            run_timed(argv)
        for shape in ["independent", "chain", "layers"]:
            commands = commands_for(shape, n, self.tmp / "graphs" / shape)
            times = {k: [] for k in commands}
            # The daemon's CPU time at the start of each of its runs: a run's CPU is the
            # difference to the next one, so that what outlives the CLI (node groups are
            # removed about a second after their node ends) counts too.
            cpu_marks = {"cgroup": [], "pgroup": []}
            for run in range(1, self.runs + 1):
                for what, argv in commands.items():
                    if what in daemon_of:
                        cpu_marks[what].append(process_cpu_s(daemon_of[what].pid))
                    times[what].append(run_timed(argv))
                    if what in daemon_of:
                        daemon_of[what].last_used = time.monotonic()
                log(f"  {shape} run {run}: " +
                    ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()))
            time.sleep(1.5)
            cpu = {}
            for mode, daemon in daemon_of.items():
                marks = cpu_marks[mode] + [process_cpu_s(daemon.pid)]
                cpu[mode] = [b - a for a, b in zip(marks, marks[1:])]
            label = {"independent": f"{n} independent", "chain": f"chain of {n}",
                     "layers": f"10 layers × {n // 10}, each node needing the layer before"}[shape]
            ninja = times["ninja"]
            for mode in ["cgroup", "pgroup"]:
                ratios = [w / r for w, r in zip(times[mode], ninja)]
                self.table.add("dag", f"{label}: `warden run`, {self.mode_name[mode]}",
                               seconds_cell(times[mode]),
                               f"`ninja -j2`: {seconds_cell(ninja)}", ratio_cell(ratios),
                               pairs(self.runs))
            for peer, name in [("make", "`make -j2`"), ("floor", "posix_spawn floor")]:
                ratios = [w / r for w, r in zip(times["cgroup"], times[peer])]
                vs_ninja = statistics.median(p / r for p, r in zip(times[peer], ninja))
                self.table.add("dag", f"{label}: `warden run`, {self.mode_name['cgroup']}",
                               seconds_cell(times["cgroup"]),
                               f"{name}: {seconds_cell(times[peer])}; {vs_ninja:.2f}× ninja",
                               ratio_cell(ratios), pairs(self.runs))
            self.table.add("dag", f"{label}: wardend CPU time per run",
                           f"{self.mode_name['cgroup']} {seconds_cell(cpu['cgroup'], 's')}, pgroup "
                           f"{seconds_cell(cpu['pgroup'], 's')}", "—", "", self.runs)
