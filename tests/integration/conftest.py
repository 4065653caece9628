"""Integration fixtures: the real minihost binary and real nginx (the shipped
template, rendered by `minihost up`) on free loopback ports, with temporary
data folders. Every process a test starts is stopped by its own pid."""

import hashlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("MINIHOST_BIN", ROOT / ".build" / "debug" / "minihost"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def slow_multipart(data: bytes, step: int, pause: float, name="slow"):
    """A multipart body with one file part, sent `step` bytes at a time with
    `pause` seconds between: a slow client, for requests/Session(data=...).
    Its content type is `multipart/form-data; boundary=b`."""
    yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + name.encode() + b"\"\r\n\r\n"
    for i in range(0, len(data), step):
        yield data[i:i + step]
        time.sleep(pause)
    yield b"\r\n--b--\r\n"


def start_strace(pid: int, output: Path, *options):
    """strace attached to every thread of `pid`, writing to `output`; returns
    once it has attached to all of them (a busy machine takes a while)."""
    threads = len(list(Path(f"/proc/{pid}/task").iterdir()))
    tracer = subprocess.Popen(["strace", "-f", *options, "-p", str(pid), "-o", str(output)],
                              stderr=subprocess.PIPE, text=True)
    # strace says "Process N attached with T threads" (or one line per thread).
    attached = 0
    while attached < threads:
        line = tracer.stderr.readline()
        if not line:
            break
        if "attached with" in line:
            attached += int(line.split("attached with")[1].split()[0])
        elif "attached" in line:
            attached += 1
    assert attached >= threads, f"strace attached to {attached} of {threads} threads"
    threading.Thread(target=tracer.stderr.read, daemon=True).start()  # keep its stderr drained
    return tracer


def stop_strace(tracer):
    tracer.send_signal(signal.SIGINT)
    tracer.wait(timeout=10)


def run_cli(*args, data, stdin=None, check=True):
    result = subprocess.run([str(BIN), *args, "--data", str(data)], input=stdin, capture_output=True, text=True,
                            timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"minihost {' '.join(args)} failed: {result.stdout}\n{result.stderr}")
    return result


class Server:
    """`minihost up` with its own nginx, data folder and port."""

    def __init__(self, data: Path, env: dict, workers: int = 48, extra_args=()):
        self.data = data
        self.env = env
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(data.parent / f"up-{self.port}.log", "w+")
        full_env = {**os.environ, "MINIHOST_RATE_LIMIT": "off", **env}
        self.process = subprocess.Popen(
            [str(BIN), "up", "--port", str(self.port), "--data", str(data), "--workers", str(workers), *extra_args],
            stdout=self.log, stderr=subprocess.STDOUT, env=full_env, start_new_session=True)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"minihost up exited early:\n{self.output()}")
            try:
                if requests.get(self.base + "/api/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"minihost up did not answer:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()

    def url(self, path: str) -> str:
        return self.base + path

    def client(self, name="app", scopes="upload,download,publish") -> str:
        out = run_cli("client", "create", name, "--scopes", scopes, data=self.data).stdout
        return out.strip().splitlines()[-1]

    def auth(self, credential: str) -> dict:
        return {"Authorization": f"Bearer {credential}"}

    def upload(self, credential: str, data: bytes, name="file.bin", content_type="application/octet-stream"):
        return requests.post(self.url("/api/minihost/upload"), headers=self.auth(credential),
                             files={"file": (name, data, content_type)}, timeout=120)

    def db(self, sql: str, *args):
        import sqlite3
        with sqlite3.connect(self.data / "minihost.sqlite", timeout=10) as conn:
            return conn.execute(sql, args).fetchall()

    def blob_files(self):
        return [p for p in (self.data / "blobs").rglob("*") if p.is_file()]

    def temp_files(self):
        return list((self.data / "tmp").iterdir())

    def worker_pids(self):
        """The worker processes `up` supervises, from the pid file it keeps."""
        path = self.data / "run" / "workers.pid"
        return [int(line) for line in path.read_text().split()] if path.exists() else []

    def nginx_pid(self):
        path = self.data / "nginx" / "nginx.pid"
        return int(path.read_text().strip()) if path.exists() else None

    def wait_healthy(self, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if requests.get(self.base + "/api/health", timeout=1).status_code == 200:
                    return time.time()
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise AssertionError(f"server did not answer within {timeout} s:\n{self.output()}")

    def stop(self, timeout=20) -> int:
        if self.log.closed:
            # Stopped already; the data folder's pid files may be a newer server's now.
            return self.process.returncode
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        # nginx and the workers are up's children; if up died hard, stop
        # them by their own pids.
        pid_file = self.data / "nginx" / "nginx.pid"
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text().strip()), signal.SIGQUIT)
            except (ProcessLookupError, ValueError):
                pass
        for pid in self.worker_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.log.close()
        return self.process.returncode


@pytest.fixture
def make_server(tmp_path):
    servers = []

    def start(env=None, data=None, workers=48, extra_args=()):
        folder = data or (tmp_path / f"data{len(servers)}")
        server = Server(folder, env or {}, workers=workers, extra_args=extra_args)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(make_server):
    return make_server()
