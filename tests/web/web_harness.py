"""A wardend on TCP and a headless Chromium, for the web view's browser test and its render
benchmark (tools/bench/ui_render). Every process started here is stopped by its pid."""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

TOKEN_NAME = "webtest"
TOKEN = "web-view-test-token-0123456789"


class Missing(Exception):
    """Chromium, chromedriver or selenium is not installed."""


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Wardend:
    """A wardend of its own (temporary data directory and socket) listening on 127.0.0.1."""

    def __init__(self, binary, grace_ms=1000):
        self.dir = tempfile.mkdtemp(prefix="warden-web-")
        self.port = free_port()
        tokens = os.path.join(self.dir, "tokens")
        with open(os.open(tokens, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(f"{TOKEN_NAME}:{TOKEN}\n")
        self.socket = os.path.join(self.dir, "wardend.sock")
        self.stderr = open(os.path.join(self.dir, "wardend.stderr"), "w")
        self.proc = subprocess.Popen(
            [binary, "--data-dir", os.path.join(self.dir, "data"), "--socket", self.socket,
             "--listen", f"127.0.0.1:{self.port}", "--token-file", tokens,
             "--grace-ms", str(grace_ms), "--log-level", "warn"],
            stdout=subprocess.DEVNULL, stderr=self.stderr, start_new_session=True)
        deadline = time.monotonic() + 20
        while True:
            try:
                if self.call("GET", "/api/health")[0] == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("wardend did not come up; see " + self.stderr.name)
            time.sleep(0.05)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def call(self, method, target, body=None, headers=None, token=TOKEN):
        """One request over TCP; returns (status, body bytes)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            sent = {"Content-Type": "application/json"} if method == "POST" else {}
            if token:
                sent["Authorization"] = "Bearer " + token
            sent.update(headers or {})
            data = None if body is None else (body if isinstance(body, (bytes, str))
                                              else json.dumps(body))
            connection.request(method, target, body=data, headers=sent)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def json(self, method, target, body=None):
        status, data = self.call(method, target, body)
        if status not in (200, 201, 202):
            raise RuntimeError(f"{method} {target}: {status} {data[:300]!r}")
        return json.loads(data)

    def wait_status(self, execution_id, statuses, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            execution = self.json("GET", "/api/executions/" + execution_id)
            if execution["status"] in statuses:
                return execution
            if time.monotonic() > deadline:
                raise AssertionError(f"execution still {execution['status']}, not {statuses}")
            time.sleep(0.1)

    def stop(self):
        """SIGTERM (wardend stops what runs), then checks that it is gone."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
                raise AssertionError("wardend did not exit within 20 s of SIGTERM")
        self.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def chromium(width=1400, height=900):
    """A headless Chromium under chromedriver; Missing when one of them is not installed."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as e:
        raise Missing(f"python3-selenium is not installed ({e})")
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not binary or not driver:
        raise Missing("chromium or chromedriver is not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-extensions", "--no-first-run", f"--window-size={width},{height}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console, for tests
    browser = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    browser.set_page_load_timeout(30)
    browser.set_script_timeout(30)
    return browser


def quit_chromium(browser):
    """Ends the browser and its chromedriver, and makes sure the driver's pid is gone."""
    pid = browser.service.process.pid if browser.service.process else None
    try:
        browser.quit()
    finally:
        if pid is not None:
            try:
                os.kill(pid, 0)
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
