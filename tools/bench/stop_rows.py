"""The stop rows: 100 cooperative nodes and 10 that ignore SIGTERM, stopped through the
API, beside kill + waitpid floors and the fsync latency of the data directory."""

import json
import statistics
import subprocess

from bench_daemon import durable_commits, sleep_spec, timed_stop, wait_all_running
from bench_support import BenchError, log, pairs, ratio_cell, seconds_cell


class StopRows:
    """Bench.section_stop."""

    def section_stop(self):
        n_coop = 20 if self.quick else 100
        n_deaf = 5 if self.quick else 10
        grace_ms = 500
        log(f"stop: {n_coop} cooperative nodes, {n_deaf} TERM-ignoring, {self.runs} runs")
        coop = sleep_spec("bench-stop", n_coop, ["sleep", "60"])
        deaf = sleep_spec("bench-stop-deaf", n_deaf,
                          ["sh", "-c", "trap '' TERM; exec sleep 60"])
        stop = {"cgroup": [], "pgroup": []}
        beyond = {"cgroup": [], "pgroup": []}
        floor, kill_floor, fsync = [], [], []
        commits_before = {m: durable_commits(d) for m, d in [("cgroup", self.cg),
                                                             ("pgroup", self.pg)]}
        for run in range(self.runs):
            for mode, daemon in [("cgroup", self.cg), ("pgroup", self.pg)]:
                created = daemon.conn().json("POST", "/api/executions", coop)
                wait_all_running(self, daemon, created["executionId"], n_coop)
                elapsed, response = timed_stop(daemon, created["executionId"], "{}")
                if response["status"] != "stopped":
                    raise BenchError(f"stop answered {response}")
                stop[mode].append(elapsed)
                floor.append(float(subprocess.run(
                    [self.tools / "kill_floor", str(n_coop), "TERM", "sleep", "60"], check=True,
                    capture_output=True, text=True).stdout) / 1000)
            for mode, daemon in [("cgroup", self.cg), ("pgroup", self.pg)]:
                created = daemon.conn().json("POST", "/api/executions", deaf)
                wait_all_running(self, daemon, created["executionId"], n_deaf)
                elapsed, response = timed_stop(daemon, created["executionId"],
                                               json.dumps({"graceMs": grace_ms}))
                if response["nodesKilled"] != n_deaf:
                    raise BenchError(f"the TERM-ignoring stop answered {response}")
                beyond[mode].append(elapsed - grace_ms / 1000)
                kill_floor.append(float(subprocess.run(
                    [self.tools / "kill_floor", str(n_deaf), "KILL", "sleep", "60"], check=True,
                    capture_output=True, text=True).stdout) / 1000)
            fsync.append(float(subprocess.run(
                [self.tools / "fsync_latency", self.cg.data, "20"], check=True,
                capture_output=True, text=True).stdout.split()[0]) / 1000)
            log(f"  run {run}: stop cgroup {stop['cgroup'][-1] * 1000:.1f} ms, pgroup "
                f"{stop['pgroup'][-1] * 1000:.1f} ms, floor {floor[-1] * 1000:.1f} ms, fsync "
                f"{fsync[-1] * 1000:.2f} ms")
        floors = {"cgroup": floor[0::2], "pgroup": floor[1::2]}
        kill_floors = {"cgroup": kill_floor[0::2], "pgroup": kill_floor[1::2]}
        fsync_med = statistics.median(fsync)
        for mode in ["cgroup", "pgroup"]:
            ratios = [s / f for s, f in zip(stop[mode], floors[mode])]
            self.table.add("stop", f"stop {n_coop} running `sleep 60` nodes, "
                           f"{self.mode_name[mode]}: POST …/stop → StopResponse",
                           seconds_cell(stop[mode], "ms"),
                           f"kill + waitpid of {n_coop} `sleep 60`: "
                           f"{seconds_cell(floors[mode], 'ms')}", ratio_cell(ratios),
                           pairs(self.runs))
            with_fsync = [f + 2 * s for f, s in zip(floors[mode], fsync)]
            ratios = [s / f for s, f in zip(stop[mode], with_fsync)]
            self.table.add("stop", f"stop {n_coop} running `sleep 60` nodes, "
                           f"{self.mode_name[mode]}",
                           seconds_cell(stop[mode], "ms"),
                           f"that floor + 2 fsyncs: {seconds_cell(with_fsync, 'ms')}",
                           ratio_cell(ratios), pairs(self.runs))
        self.table.add("stop", "fsync latency: 4 KiB write + fdatasync in the data directory "
                       "(a stop commits durably twice)", "—", seconds_cell(fsync, "ms"), "",
                       f"{self.runs} × 20")
        for mode in ["cgroup", "pgroup"]:
            total, count = durable_commits(self.cg if mode == "cgroup" else self.pg)
            t0, c0 = commits_before[mode]
            if count > c0:
                mean = (total - t0) / (count - c0)
                self.table.add("stop", f"wardend durable journal commits during the stop rows "
                               f"(creates, starts, stop requests, ends), "
                               f"{self.mode_name[mode]}: mean, from /metrics",
                               f"{mean * 1000:.2f} ms",
                               f"fsync latency: {fsync_med * 1000:.2f} ms",
                               f"{mean / fsync_med:.2f}×", f"{count - c0} commits")
        for mode in ["cgroup", "pgroup"]:
            ratios = [b / f for b, f in zip(beyond[mode], kill_floors[mode])]
            self.table.add("stop", f"stop {n_deaf} TERM-ignoring nodes, graceMs {grace_ms}, "
                           f"{self.mode_name[mode]}: time beyond the grace",
                           seconds_cell(beyond[mode], "ms"),
                           f"SIGKILL + waitpid of {n_deaf} processes: "
                           f"{seconds_cell(kill_floors[mode], 'ms')}", ratio_cell(ratios),
                           pairs(self.runs))
