"""Headless Chromium driven over the DevTools protocol, for tests that must
see a page the way a person's browser does (scripts, cookies, sandboxing)."""

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import websocket


def chromium_path():
    path = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not path:
        raise AssertionError("chromium is not installed: scripts/install-deps.sh installs it")
    return path


class Browser:
    """One headless Chromium with its own profile, stopped by its own pid."""

    def __init__(self):
        self.profile = Path(tempfile.mkdtemp(prefix="minihost-chromium-"))
        self.process = subprocess.Popen(
            [chromium_path(), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--no-default-browser-check", "--disable-extensions", "--remote-debugging-port=0",
             f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.time() + 30
        while not port_file.exists() or len(port_file.read_text().splitlines()) < 2:
            if time.time() > deadline or self.process.poll() is not None:
                self.close()
                raise AssertionError("chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        port, path = port_file.read_text().splitlines()[:2]
        self.socket = websocket.create_connection(f"ws://127.0.0.1:{port}{path}", timeout=30)
        self.next_id = 0
        self.events = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.enable", session=True)
        self.call("Network.enable", session=True)
        self.call("Browser.setDownloadBehavior", behavior="deny")

    def call(self, method, session=False, **params):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        self.socket.send(json.dumps(message))
        while True:
            reply = json.loads(self.socket.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def set_cookie(self, url, name, value):
        assert self.call("Network.setCookie", session=True, url=url, name=name, value=value, httpOnly=True)["success"]

    def open(self, url, settle=2.0):
        """Navigates and waits for the load (or a download or error) plus `settle` seconds."""
        self.events.clear()
        self.call("Page.navigate", session=True, url=url)
        deadline = time.time() + 15
        self.socket.settimeout(0.2)
        try:
            while time.time() < deadline:
                try:
                    event = json.loads(self.socket.recv())
                except websocket.WebSocketTimeoutException:
                    continue
                self.events.append(event)
                if event.get("method") in ("Page.loadEventFired", "Page.downloadWillBegin", "Page.frameStoppedLoading"):
                    break
            end = time.time() + settle
            while time.time() < end:
                try:
                    self.events.append(json.loads(self.socket.recv()))
                except websocket.WebSocketTimeoutException:
                    continue
        finally:
            self.socket.settimeout(30)

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def close(self):
        try:
            self.socket.close()
        except Exception:
            pass
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)
