"""Sections 5 and 6 of the battery: the libFuzzer targets (tools/fuzz) and the power-loss
test (tests/journal/power_loss_test), run from here so that one command prints every figure.

Neither needs a daemon. In --short (CI) runs they are skipped unless named with --only:
tools/test runs both on its own (power_loss_test in every ctest suite, tools/fuzz last).
"""

import os
import re
import subprocess

from stress_support import log

FUZZ_SECONDS_FULL = 60
POWER_CUTS_FULL = 1000


def fuzz(stress, section):
    if stress.short and not stress.args.only:
        section.skip("fuzz targets", "tools/test runs tools/fuzz on its own")
        return
    seconds = 5 if stress.short else FUZZ_SECONDS_FULL
    log(f"tools/fuzz --seconds {seconds} (builds build-fuzz with clang first)")
    run = subprocess.run([str(stress.root / "tools/fuzz"), "--seconds", str(seconds)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rows = re.findall(r"^(\w+_fuzz)\s+(\d+|\?)\s+(\d+)\s+(\d+)\s*$", run.stdout, re.M)
    section.check("tools/fuzz built and ran every target", run.returncode == 0 or bool(rows),
                  run.stdout[-400:] if not rows else "")
    for target, execs, crashes, corpus in rows:
        section.check(f"{target}: 0 crashes in {seconds} s", crashes == "0",
                      f"{crashes} crashes; see build-fuzz/runs/{target}")
        section.figure(f"{target} {execs} execs, {crashes} crashes, corpus {corpus}")
    if run.returncode != 0 and rows:
        section.check("tools/fuzz exit status", False, f"exit {run.returncode}")


def power_loss(stress, section):
    if stress.short and not stress.args.only:
        section.skip("power cuts", "tools/test runs power_loss_test in every ctest suite")
        return
    binary = stress.build / "tests/journal/power_loss_test"
    if not binary.exists():
        section.check("power_loss_test is built", False, str(binary))
        return
    cuts = 200 if stress.short else POWER_CUTS_FULL
    env = dict(os.environ, WARDEN_POWER_CUTS=str(cuts))
    log(f"{binary.name} with {cuts} cuts")
    run = subprocess.run([str(binary)], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    found = re.search(r"cuts simulated (\d+) .*acknowledgements lost (\d+) of (\d+)", run.stdout)
    section.check("power_loss_test passed (every negative control included)",
                  run.returncode == 0, run.stdout[-400:])
    if found:
        simulated, lost, acknowledged = found.groups()
        section.check("0 acknowledgements lost", lost == "0", f"{lost} of {acknowledged}")
        section.figure(f"{simulated} power cuts, {lost} of {acknowledged} acknowledgements lost")
    else:
        section.check("power_loss_test printed its figures", False, run.stdout[-400:])
