#!/usr/bin/env python3
"""Prints how many test cases were skipped, and why, from the GoogleTest XML reports in a
directory (GTEST_OUTPUT=xml:DIR/): a host that silently skips half the suite is visible.

  tools/test_skips.py DIR
"""
import glob
import sys
import xml.etree.ElementTree as ET


def main():
    skipped = []
    for path in sorted(glob.glob(sys.argv[1] + "/*.xml")):
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as e:
            print(f"   (unreadable report {path}: {e})")
            continue
        for case in root.iter("testcase"):
            mark = case.find("skipped")
            if mark is None:
                continue
            lines = [l for l in (mark.get("message") or "").splitlines() if l.strip()]
            # GoogleTest's message is "FILE:LINE\nSkipped\nREASON": the reason is the last line.
            reason = lines[-1] if lines and lines[-1] != "Skipped" else "(no reason given)"
            skipped.append(f"{case.get('classname')}.{case.get('name')}: {reason}")
    print(f"== {len(skipped)} test case(s) skipped" + (":" if skipped else ""))
    for line in skipped:
        print("   " + line)


if __name__ == "__main__":
    main()
