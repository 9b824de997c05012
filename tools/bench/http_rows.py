"""The HTTP rows: GET /api/health and GET /api/executions/{id} at 32 keep-alive clients,
beside a minimal Beast server answering the same bytes, under the same load generator."""

import json
import os
import statistics
import subprocess
import time

from bench_daemon import UnixHTTPConnection, sleep_spec
from bench_support import BenchError, log, pairs, proc_status_kb, rate_cell, ratio_cell


class HttpRows:
    """Bench.start_beast and Bench.section_http."""

    def start_beast(self, bodies):
        argv = [str(self.tools / "beast_server"), str(self.tmp / "beast.sock")]
        for target, path in bodies.items():
            argv.append(f"{target}={path}")
        self.beast = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      preexec_fn=os.setpgrp)
        self.processes.note(self.beast.pid, "beast_server")
        deadline = time.monotonic() + 10
        while True:
            try:
                UnixHTTPConnection(self.tmp / "beast.sock").call("GET", "/api/health")
                return
            except OSError:
                if time.monotonic() > deadline or self.beast.poll() is not None:
                    raise BenchError("beast_server did not start")
                time.sleep(0.02)

    def section_http(self):
        seconds = 0.5 if self.quick else 1.5
        clients = 32
        daemon = self.cg
        # The execution a GET reads: 10 nodes, ended.
        spec = sleep_spec("bench-get", 10, ["/bin/true"])
        created = daemon.conn().json("POST", "/api/executions", spec)
        execution_id = created["executionId"]
        conn = daemon.conn()
        conn.call("GET", f"/api/executions/{execution_id}/events?follow=true")
        targets = {"health": "/api/health", "execution": f"/api/executions/{execution_id}"}
        bodies = {}
        for name, target in targets.items():
            status, body = conn.call("GET", target)
            path = self.tmp / f"body-{name}.json"
            path.write_bytes(body)
            bodies[target] = path
        self.start_beast(bodies)
        self.beast_idle_rss = proc_status_kb(self.beast.pid, "VmRSS")
        log(f"HTTP: {clients} keep-alive clients, {seconds} s per measurement, {self.runs} runs")
        results = {(n, s): [] for n in targets for s in ("warden", "beast")}
        for run in range(self.runs):
            for name, target in targets.items():
                for server, sock in [("warden", daemon.socket), ("beast", self.tmp / "beast.sock")]:
                    out = subprocess.run([self.tools / "load_generator", sock, target,
                                          str(clients), str(seconds), "0.3"], check=True,
                                         capture_output=True, text=True).stdout
                    result = json.loads(out)
                    daemon.last_used = self.beast_last_used = time.monotonic()
                    if result["errors"]:
                        raise BenchError(f"{server} {target}: {result['errors']} errors")
                    results[(name, server)].append(result)
            log(f"  run {run}: " + ", ".join(f"{n}/{s} {v[-1]['rps']:.0f}/s"
                                             for (n, s), v in results.items()))
        for name, target in targets.items():
            warden = results[(name, "warden")]
            beast = results[(name, "beast")]
            ratios = [w["rps"] / b["rps"] for w, b in zip(warden, beast)]
            p99 = statistics.median(r["p99_us"] for r in warden) / 1000
            p99_beast = statistics.median(r["p99_us"] for r in beast) / 1000
            shown = "GET /api/executions/{id} (10 nodes)" if name == "execution" else \
                f"GET {target}"
            self.table.add("http", f"{shown}, {clients} keep-alive clients, requests/s; higher is "
                           f"better ({len(bodies[target].read_bytes())}-byte body)",
                           f"{rate_cell([r['rps'] for r in warden])}, p99 {p99:.2f} ms",
                           f"minimal Beast server, same body: "
                           f"{rate_cell([r['rps'] for r in beast])}, p99 {p99_beast:.2f} ms",
                           ratio_cell(ratios), f"{pairs(self.runs)} × {seconds} s")
