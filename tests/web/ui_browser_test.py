#!/usr/bin/python3
"""The web view against a real wardend in headless Chromium (api.md, "Web view").

A DAG with succeeded, failed, skipped, running and (once the page stops it) stopped nodes:
the page asks for the token, draws the nodes in their states, updates live when a node
exits, stops the execution from its Stop button and shows the stop record; a graph over the
drawing limit is listed instead. A cross-site form
POST is refused. Usage: ui_browser_test.py WARDEND ARTIFACT_DIR. Exit 77 (skipped) when
Chromium, chromedriver or selenium is missing."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import web_harness  # noqa: E402

SKIP = 77
SPEC = {
    "name": "web-view-test",
    "onFailure": "continue",
    "maxParallel": 10,
    "nodes": [
        {"id": "fetch", "argv": ["sh", "-c", "echo fetched"]},
        {"id": "broken", "argv": ["sh", "-c", "echo oops >&2; exit 3"]},
        {"id": "after-broken", "argv": ["true"], "needs": ["broken"]},
        {"id": "slow", "argv": ["sleep", "4"], "needs": ["fetch"]},
        {"id": "sleeper-1", "argv": ["sleep", "300"]},
        {"id": "sleeper-2", "argv": ["sleep", "300"], "needs": ["fetch"]},
        {"id": "report", "argv": ["true"], "needs": ["sleeper-1", "slow"]},
    ],
}


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 64
    wardend_binary, artifacts = sys.argv[1], sys.argv[2]
    os.makedirs(artifacts, exist_ok=True)
    try:
        browser = web_harness.chromium()
    except web_harness.Missing as e:
        print("SKIP:", e)
        return SKIP
    daemon = None
    try:
        daemon = web_harness.Wardend(wardend_binary)
        run(daemon, browser, artifacts)
    finally:
        web_harness.quit_chromium(browser)
        if daemon:
            daemon.stop()
    print("ok")
    return 0


def run(daemon, browser, artifacts):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def wait(predicate, what, timeout=20):
        try:
            return WebDriverWait(browser, timeout, poll_frequency=0.1).until(lambda _: predicate())
        except Exception:
            browser.save_screenshot(os.path.join(artifacts, "ui_browser_test_failure.png"))
            raise AssertionError("timed out waiting for " + what)

    def state(node):
        found = browser.find_elements(By.CSS_SELECTOR, f'svg.dag g.node[data-node="{node}"]')
        return found[0].get_attribute("data-state") if found else None

    execution = daemon.json("POST", "/api/executions", SPEC)
    eid = execution["executionId"]
    assert [n["needs"] for n in execution["nodes"]][6] == ["sleeper-1", "slow"]
    daemon.wait_status(eid, ["running"])
    # Let the quick nodes end first, so that "slow" is the next exit.
    deadline = time.monotonic() + 20
    while True:
        nodes = {n["id"]: n["status"] for n in daemon.json("GET", "/api/executions/" + eid)["nodes"]}
        if (nodes["fetch"], nodes["broken"], nodes["after-broken"]) == ("succeeded", "failed", "skipped") \
                and nodes["slow"] == "running":
            break
        assert time.monotonic() < deadline, f"nodes did not settle: {nodes}"
        time.sleep(0.05)

    # The page asks for the token (TCP), then draws the graph.
    browser.get(f"{daemon.url}/#/executions/{eid}")
    wait(lambda: browser.find_element(By.ID, "token-form").is_displayed(), "the token form")
    browser.find_element(By.ID, "token-input").send_keys(web_harness.TOKEN)
    browser.find_element(By.ID, "token-submit").click()
    wait(lambda: state("slow") is not None, "the graph")
    svg = browser.find_element(By.CSS_SELECTOR, "svg.dag")
    assert svg.get_attribute("data-node-count") == "7", svg.get_attribute("data-node-count")
    assert browser.execute_script("return document.body.dataset.rendered") is not None
    expected = {"fetch": "succeeded", "broken": "failed", "after-broken": "skipped",
                "slow": "running", "sleeper-1": "running", "sleeper-2": "running",
                "report": "pending"}
    for node, want in expected.items():
        assert state(node) == want, f"{node}: {state(node)}, expected {want}"

    # Live: "slow" exits by itself; the page shows it without being reloaded.
    browser.execute_script("window.__notReloaded = true")
    wait(lambda: state("slow") == "succeeded", "the live update of slow's exit", timeout=20)
    assert browser.execute_script("return window.__notReloaded === true"), "the page reloaded"
    # A node's details and captured output.
    browser.find_element(By.CSS_SELECTOR, 'svg.dag g.node[data-node="broken"] rect').click()
    wait(lambda: browser.find_elements(By.CSS_SELECTOR, '.node-panel[data-node="broken"]'),
         "the node panel")
    browser.find_element(By.CSS_SELECTOR, '.node-panel button[data-stream="stderr"]').click()
    wait(lambda: "oops" in browser.find_element(By.CSS_SELECTOR, ".node-panel pre").text,
         "broken's stderr in the panel")
    exit_field = browser.find_element(By.CSS_SELECTOR, '.node-panel dd[data-field="exit"]').text
    assert exit_field == "exit 3", exit_field

    # Pause and resume from the page.
    def page_status():
        return browser.find_element(By.ID, "execution-status").get_attribute("data-state")
    browser.find_element(By.ID, "action-pause").click()
    daemon.wait_status(eid, ["paused"], timeout=20)
    wait(lambda: page_status() == "paused" and state("sleeper-1") == "paused", "the pause")
    assert browser.find_element(By.ID, "action-pause").get_attribute("disabled") is not None
    browser.find_element(By.ID, "action-resume").click()
    daemon.wait_status(eid, ["running"], timeout=20)
    wait(lambda: page_status() == "running" and state("sleeper-1") == "running", "the resume")

    # Stop from the page: the button asks first; the API then reports the execution stopped.
    browser.find_element(By.ID, "action-stop").click()
    browser.find_element(By.ID, "confirm-stop").click()
    stopped = daemon.wait_status(eid, ["stopped", "failed"], timeout=30)
    assert stopped["status"] == "stopped", stopped["status"]
    wait(lambda: state("sleeper-1") == "stopped" and state("report") == "stopped",
         "the stopped nodes in the page")
    assert state("sleeper-2") == "stopped"
    wait(lambda: browser.find_elements(By.ID, "stop-record") and
         browser.find_element(By.CSS_SELECTOR, '#stop-record dd[data-field="outcome"]').text
         == "stopped", "the stop record")
    record = {dd.get_attribute("data-field"): dd.text
              for dd in browser.find_elements(By.CSS_SELECTOR, "#stop-record dd")}
    assert record["requested by"] == "token:" + web_harness.TOKEN_NAME, record
    assert record["reason"] == "user_abort", record
    assert record["note"] == "stopped from the web view", record
    assert page_status() == "stopped", page_status()
    browser.save_screenshot(os.path.join(artifacts, "ui_browser_test.png"))
    # Nothing the page does is blocked by its own Content-Security-Policy, and no script
    # failed.
    console = [entry["message"] for entry in browser.get_log("browser")]
    assert not [m for m in console if "Content Security Policy" in m or "Uncaught" in m], console

    # A cross-site form POST is refused, even with a valid token.
    form = "reason=user_abort"
    code, body = daemon.call("POST", f"/api/executions/{eid}/stop", form, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Origin": "http://evil.example",
        "Sec-Fetch-Site": "cross-site"})
    assert code in (403, 415), (code, body)
    code, body = daemon.call("POST", "/api/executions", form, headers={
        "Content-Type": "application/x-www-form-urlencoded"})
    assert code == 415, (code, body)
    # Over the drawing limit (5,000 nodes) the page says so and lists the nodes instead. The
    # execution is created idle: nothing needs to run for the page to show it.
    big = {"name": "too-big-to-draw", "nodes": [{"id": f"n{i}", "argv": ["true"]}
                                                for i in range(5001)]}
    code, body = daemon.call("POST", "/api/executions?start=false", json.dumps(big))
    assert code == 201, (code, body[:200])
    big_id = json.loads(body)["executionId"]
    browser.get(f"{daemon.url}/#/executions/{big_id}")
    wait(lambda: browser.find_elements(By.CSS_SELECTOR, '#graph tr[data-node="n5000"]'),
         "the list instead of the graph", timeout=30)
    assert not browser.find_elements(By.CSS_SELECTOR, "svg.dag")
    assert "over the drawing limit" in browser.find_element(By.ID, "graph").text
    daemon.json("POST", f"/api/executions/{big_id}/stop", {})
    # The list shows it among all executions.
    browser.get(f"{daemon.url}/#/?state=all")
    wait(lambda: browser.find_elements(By.CSS_SELECTOR, f'tr[data-execution="{eid}"]'), "the list")
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-execution="{eid}"]').text
    assert "web-view-test" in row and "2/7" in row, row


if __name__ == "__main__":
    sys.exit(main())
