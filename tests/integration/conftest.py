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


class Secrets:
    """Every secret the tests hand a server or get from one: credentials,
    passwords, tokens, cookies. Each server's logs (the workers', nginx's
    access and error logs) are searched for all of them when it stops: no
    secret may ever reach a log line."""

    # Body fields and JSON keys that carry secrets, in any dialect.
    FIELDS = {"password", "newpassword", "new_password", "oldpassword", "secret", "token", "access_token",
              "refresh_token", "accesstoken", "credential", "key", "apikey", "api_key", "ticket"}
    MIN_LENGTH = 8  # shorter values ("wrong") would match ordinary text
    values = set()

    @classmethod
    def add(cls, value):
        if isinstance(value, str) and len(value) >= cls.MIN_LENGTH:
            cls.values.add(value)

    @classmethod
    def add_fields(cls, fields):
        if isinstance(fields, dict):
            for name, value in fields.items():
                if isinstance(name, str) and name.replace("-", "").lower() in cls.FIELDS:
                    cls.add(value)
                cls.add_fields(value)
        elif isinstance(fields, list):
            for value in fields:
                cls.add_fields(value)

    @classmethod
    def add_request(cls, request):
        authorization = request.headers.get("Authorization", "")
        scheme, _, credential = authorization.partition(" ")
        if credential:
            cls.add(credential)
            cls.add(credential.partition(".")[2])  # a minihost client's secret half
        for cookie in request.headers.get("Cookie", "").split(";"):
            cls.add(cookie.partition("=")[2].strip())
        body = request.body
        if isinstance(body, bytes) and len(body) < 1 << 16:
            body = body.decode("latin-1")
        if isinstance(body, str):
            try:
                cls.add_fields(json.loads(body))
            except ValueError:
                from urllib.parse import parse_qs
                cls.add_fields({name: values[0] for name, values in parse_qs(body).items()})

    @classmethod
    def add_response(cls, response):
        for cookie in response.raw.headers.getlist("Set-Cookie") if response.raw is not None else []:
            cls.add(cookie.partition("=")[2].partition(";")[0])
        if "json" in response.headers.get("Content-Type", "") and len(response.content) < 1 << 16:
            try:
                cls.add_fields(response.json())
            except ValueError:
                pass

    @classmethod
    def found_in(cls, paths):
        """(secret, file) pairs for every secret found in the files."""
        found = []
        for path in paths:
            if not path.exists():
                continue
            text = path.read_text(errors="replace")
            found += [(secret, path.name) for secret in cls.values if secret in text]
        return found


_send = requests.Session.send


def _recording_send(self, request, **kwargs):
    Secrets.add_request(request)
    response = _send(self, request, **kwargs)
    if not kwargs.get("stream"):
        Secrets.add_response(response)
    return response


requests.Session.send = _recording_send


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
    for line in (stdin or "").splitlines():
        Secrets.add(line)
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
        credential = out.strip().splitlines()[-1]
        Secrets.add(credential)
        Secrets.add(credential.partition(".")[2])
        return credential

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
        self.check_logs_hold_no_secret()
        return self.process.returncode

    def log_files(self):
        return [Path(self.log.name), self.data / "nginx" / "access.log", self.data / "nginx" / "error.log"]

    def check_logs_hold_no_secret(self):
        leaked = Secrets.found_in(self.log_files())
        assert not leaked, f"secrets in logs: {[(secret[:4] + '…', file) for secret, file in leaked]}"


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
