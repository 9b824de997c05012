"""The real-build row: Warden's own small libraries, their Ninja graph run as a Warden
DAG beside ninja on the same tree."""

import json
import re
import subprocess
import time
from pathlib import Path

from bench_support import BenchError, log, pairs, ratio_cell, run_timed, seconds_cell


class BuildRows:
    """Bench.section_build and the graph it runs."""

    def real_build_targets(self):
        return ["warden_base"] if self.quick else ["warden_base", "warden_dag"]

    def real_build_graph(self, targets):
        """The Ninja graph of `targets` in the real-build tree: one step per edge (its
        command) with the edges it needs, phony edges resolved to what they stand for."""
        rb = self.real_build
        outputs = {}
        for line in subprocess.run(["ninja", "-C", rb, "-t", "targets", "all"], check=True,
                                   capture_output=True, text=True).stdout.splitlines():
            name, _, rule = line.rpartition(": ")
            outputs[name] = rule
        queried = {}

        def query(name):
            if name not in queried:
                text = subprocess.run(["ninja", "-C", rb, "-t", "query", name], check=True,
                                      capture_output=True, text=True).stdout
                inputs, in_inputs = [], False
                for line in text.splitlines()[1:]:
                    if line.startswith("  input:"):
                        in_inputs = True
                    elif line.startswith("  outputs:"):
                        in_inputs = False
                    elif in_inputs:
                        inputs.append(line.strip().lstrip("|").strip())
                queried[name] = inputs
            return queried[name]

        steps = {}  # command -> {"outputs": [...], "needs": set of commands}

        def real_edges(name, seen):
            """Commands of the real edges `name` stands for (itself, or through phony)."""
            if name in seen or name not in outputs:
                return set()
            seen.add(name)
            if outputs[name] == "phony":
                found = set()
                for i in query(name):
                    found |= real_edges(i, seen)
                return found
            command = subprocess.run(["ninja", "-C", rb, "-t", "commands", "-s", name],
                                     check=True, capture_output=True, text=True).stdout.strip()
            if command not in steps:
                steps[command] = {"outputs": [name], "needs": set()}
                for i in query(name):
                    steps[command]["needs"] |= real_edges(i, set())
            elif name not in steps[command]["outputs"]:
                steps[command]["outputs"].append(name)
            return {command}

        for t in targets:
            real_edges(t, set())
        return steps

    def section_build(self):
        targets = self.real_build_targets()
        runs = 1 if self.quick else self.runs
        rb = self.real_build
        steps = self.real_build_graph(targets)
        ids = {}
        for command, step in steps.items():
            base = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(step["outputs"][0]).name)
            ids[command] = f"s{len(ids):02d}-{base}"[:128]
        spec = {"name": "bench-real-build", "maxParallel": 2, "nodes": []}
        for command, step in steps.items():
            node = {"id": ids[command], "argv": ["/bin/sh", "-c", command], "cwd": str(rb)}
            if step["needs"]:
                node["needs"] = sorted(ids[c] for c in step["needs"])
            spec["nodes"].append(node)
        spec_path = self.tmp / "real-build.json"
        spec_path.write_text(json.dumps(spec, indent=1))
        edges = sum(len(s["needs"]) for s in steps.values())
        log(f"real build: {' '.join(targets)} of Warden (Debug), {len(steps)} steps, {edges} "
            f"dependencies, {runs} runs")
        clean = ["ninja", "-C", rb, "-t", "clean"] + targets
        ninja = ["ninja", "-C", rb, "-j2"] + targets
        warden_times, ninja_times = [], []
        for run in range(runs):
            subprocess.run(clean, check=True, stdout=subprocess.DEVNULL)
            warden_times.append(run_timed([self.warden, "--socket", self.cg.socket, "run",
                                           spec_path]))
            self.cg.last_used = time.monotonic()
            missing = [o for s in steps.values() for o in s["outputs"] if not (rb / o).exists()]
            if missing:
                raise BenchError(f"the Warden build did not make {missing[:3]}")
            subprocess.run(clean, check=True, stdout=subprocess.DEVNULL)
            ninja_times.append(run_timed(ninja))
            log(f"  run {run}: warden {warden_times[-1]:.1f} s, ninja {ninja_times[-1]:.1f} s")
        ratios = [w / n for w, n in zip(warden_times, ninja_times)]
        self.table.add("build", f"real build: Warden's own {' + '.join(targets)} (Debug), its "
                       f"Ninja graph as a Warden DAG ({len(steps)} steps, {edges} dependencies, "
                       f"`sh -c` per step), after a clean, {self.mode_name['cgroup']}",
                       seconds_cell(warden_times, "s"),
                       f"`ninja -j2` on the same tree: {seconds_cell(ninja_times, 's')}",
                       ratio_cell(ratios), pairs(runs))
