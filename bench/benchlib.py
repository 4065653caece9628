"""Pieces the benchmarks share: the servers under test, wrk with full error
accounting, and the statistics every figure is reported with."""

import base64
import hashlib
import json
import os
import re
import signal
import socket
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(os.environ.get("MINIHOST_BIN", ROOT / ".build" / "release" / "minihost"))
OUT = ROOT / "bench" / "out"
WRK_SCRIPT = ROOT / "bench" / "wrk-report.lua"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def summary(values):
    """A figure as it is reported: the median and the spread of the samples."""
    return {"median": median(values), "min": min(values), "max": max(values), "samples": list(values)}


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def refresh(path):
    """New content for the next upload (its first 8 bytes), so no run measures
    the dedup path; returns the new SHA-256."""
    with open(path, "r+b") as f:
        f.write(os.urandom(8))
    return sha256_file(path)


def settle():
    """The same preparation before every timed step: dirty pages written out, a pause."""
    os.sync()
    time.sleep(2)


def timed(command, **kwargs):
    start = time.perf_counter()
    subprocess.run(command, check=True, **kwargs)
    return time.perf_counter() - start


class WrkError(RuntimeError):
    pass


def wrk(url, seconds, headers=(), connections=32, timeout="2s", method=None, body=None, count_statuses=False,
        expect_status=None):
    """Runs wrk and reads everything it reports: requests/s, socket errors
    (connect, read, write, timeout), non-2xx/3xx answers, the latency
    distribution and, with `count_statuses`, each status's count (which makes
    wrk parse every answer, so it is off for throughput runs).

    A run with any socket error, or any answer other than `expect_status`
    (default: 2xx/3xx), raises: "no errors" means none."""
    command = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--timeout", timeout, "-s", str(WRK_SCRIPT)]
    for header in headers:
        command += ["-H", header]
    env = {**os.environ, "WRK_METHOD": method or "", "WRK_BODY": body or "",
           "WRK_COUNT_STATUSES": "1" if count_statuses else ""}
    out = subprocess.run(command + [url], capture_output=True, text=True, check=True, env=env).stdout
    report = json.loads(out[out.index("WRK_REPORT ") + len("WRK_REPORT "):].splitlines()[0])
    report["rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    socket_errors = {name: report["errors"][name] for name in ("connect", "read", "write", "timeout")}
    if any(socket_errors.values()):
        raise WrkError(f"wrk saw socket errors on {url}: {socket_errors}")
    if expect_status is None:
        if report["errors"]["status"]:
            raise WrkError(f"wrk saw {report['errors']['status']} error answers (>= 400) from {url}")
    else:
        statuses = report.get("statuses", {})
        unexpected = {status: count for status, count in statuses.items() if int(status) != expect_status}
        if unexpected or not statuses:
            raise WrkError(f"wrk expected only {expect_status} from {url}, saw {statuses}")
    return report


class Minihost:
    """`minihost up` on a free port, rate limits off."""

    def __init__(self, data: Path, workers: int, env=None, log_name="minihost-up.log"):
        self.port = free_port()
        self.data = data
        self.base = f"http://127.0.0.1:{self.port}"
        full_env = {**os.environ, "MINIHOST_RATE_LIMIT": "off", "MINIHOST_MAX_MB": "500", "MINIHOST_UPLOADER_MAX_MB": "1024",
                    "MINIHOST_LOG_LEVEL": "warning",
                    "MINIHOST_PUBLIC_INDEX_SECONDS": "1",
                    **(env or {})}
        OUT.mkdir(parents=True, exist_ok=True)
        self.log = open(OUT / log_name, "w")
        self.process = subprocess.Popen([str(BIN), "up", "--port", str(self.port), "--data", str(data),
                                         "--workers", str(workers)], stdout=self.log, stderr=subprocess.STDOUT,
                                        env=full_env, start_new_session=True)
        for _ in range(300):
            try:
                if requests.get(self.base + "/api/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        self.credential = self.cli("client", "create", "bench", "--scopes", "upload,download,publish").splitlines()[-1]

    def cli(self, *args, stdin=None):
        return subprocess.run([str(BIN), *args, "--data", str(self.data)], input=stdin, capture_output=True, text=True,
                              check=True).stdout.strip()

    def auth(self):
        return f"Authorization: Bearer {self.credential}"

    def upload(self, path: Path) -> dict:
        out = subprocess.run(["curl", "-sS", "-f", "-H", self.auth(), "-F", f"file=@{path}",
                              self.base + "/api/minihost/upload"], capture_output=True, text=True, check=True).stdout
        return json.loads(out)

    def uploader_upload(self, path: Path) -> dict:
        """An anonymous uploader-dialect upload (`POST /api/upload`)."""
        out = subprocess.run(["curl", "-sS", "-f", "-F", f"file=@{path}", self.base + "/api/upload"],
                             capture_output=True, text=True, check=True).stdout
        return json.loads(out)

    def skysend_upload(self, path: Path) -> dict:
        """A skysend-dialect single-request upload (`POST /api/upload`, raw body),
        with random tokens: the answer, plus the auth token to download it with."""
        token = lambda: base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
        auth = token()
        headers = {"X-Auth-Token": auth, "X-Owner-Token": token(),
                   "X-Salt": base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode(),
                   "X-Max-Downloads": "2", "X-Expire-Sec": "3600", "X-Content-Length": str(path.stat().st_size),
                   "Content-Type": "application/octet-stream"}
        # -T streams the file (--data-binary @file would read it all into memory first).
        command = ["curl", "-sS", "-f", "-X", "POST", "-T", str(path), self.base + "/api/upload"]
        for name, value in headers.items():
            command[1:1] = ["-H", f"{name}: {value}"]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        return {**json.loads(out), "auth_token": auth}

    def s4_login(self):
        """An operator and its s4 token (`POST /api/auth/login`)."""
        if not hasattr(self, "s4_token"):
            self.cli("admin", "create", "bench", "--password-stdin", stdin="bench-password\n")
            answer = requests.post(self.base + "/api/auth/login", json={"username": "bench", "password": "bench-password"})
            answer.raise_for_status()
            self.s4_token = answer.json()["token"]
            requests.post(self.base + "/api/buckets", json={"bucketName": "bench"},
                          headers={"Authorization": f"Bearer {self.s4_token}"})
        return self.s4_token

    def s4_upload(self, path: Path, key=None) -> dict:
        """An s4 object upload (`POST /api/objects/upload/bench/<b64 key>`, multipart) with curl;
        the key is the file's name unless given."""
        token = self.s4_login()
        key = base64.urlsafe_b64encode((key or path.name).encode()).rstrip(b"=").decode()
        out = subprocess.run(["curl", "-sS", "-f", "-H", f"Authorization: Bearer {token}", "-F", f"file=@{path}",
                              f"{self.base}/api/objects/upload/bench/{key}"], capture_output=True, text=True,
                             check=True).stdout
        return {**json.loads(out), "download": f"{self.base}/api/objects/download/bench/{key}"}

    def stored_sha256(self, url, headers=None):
        """SHA-256 of the bytes the server serves at `url` (through nginx)."""
        digest = hashlib.sha256()
        with requests.get(url, stream=True, headers=headers or {}) as response:
            response.raise_for_status()
            for block in response.iter_content(1 << 20):
                digest.update(block)
        return digest.hexdigest()

    def downloaded_sha256(self, upload_id):
        return self.stored_sha256(f"{self.base}/api/minihost/download?id={upload_id}",
                                  {"Authorization": f"Bearer {self.credential}"})

    def worker_pid(self):
        """The worker process `up` supervises (one by default), from its pid file."""
        return int((self.data / "run" / "workers.pid").read_text().split()[0])

    def rss_kb(self):
        for line in Path(f"/proc/{self.worker_pid()}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def wait_served_by_nginx(self, url, timeout=30):
        """Until nginx answers `url` from the public tree by itself (checked
        with the worker frozen a moment: it writes the index nginx reloads)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            pid = self.worker_pid()
            os.kill(pid, signal.SIGSTOP)
            try:
                if requests.get(url, timeout=0.3).status_code == 200:
                    return
            except requests.RequestException:
                pass
            finally:
                os.kill(pid, signal.SIGCONT)
            time.sleep(0.3)
        raise RuntimeError(f"nginx did not serve {url} itself within {timeout} s")

    def stop(self):
        os.kill(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=60)


class ReferenceNginx:
    """A plain nginx on the same disk: WebDAV PUT and static files, the yardsticks."""

    def __init__(self, root: Path):
        self.port = free_port()
        self.root = root
        self.prefix = prefix = root / "nginx"
        (root / "www" / "static").mkdir(parents=True, exist_ok=True)
        prefix.mkdir(parents=True, exist_ok=True)
        self._write_config([])
        self.process = subprocess.Popen(["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e",
                                         str(prefix / "error.log")], start_new_session=True)
        time.sleep(0.5)
        self.base = f"http://127.0.0.1:{self.port}"

    def _write_config(self, headers):
        prefix, root = self.prefix, self.root
        user = "user root root;" if os.geteuid() == 0 else ""
        added = "".join(f"add_header {name} {value} always; " for name, value in headers)
        (prefix / "nginx.conf").write_text(f"""
daemon off; worker_processes 2; pid {prefix}/nginx.pid; error_log {prefix}/error.log; {user}
events {{ worker_connections 4096; }}
http {{
  access_log {prefix}/access.log combined buffer=64k flush=1s;
  client_body_temp_path {root}/www/.tmp; fastcgi_temp_path {prefix}/f; proxy_temp_path {prefix}/p;
  uwsgi_temp_path {prefix}/u; scgi_temp_path {prefix}/s;
  sendfile on; tcp_nopush on;
  server {{
    listen 127.0.0.1:{self.port};
    root {root}/www;
    client_max_body_size 0;
    location /dav/ {{ dav_methods PUT; create_full_put_path on; }}
    location /static/ {{ open_file_cache max=1000 inactive=60s; }}
    location /static-headers/ {{ alias {root}/www/static/; open_file_cache max=1000 inactive=60s; sendfile off; {added}}}
    location /static-no-sendfile/ {{ alias {root}/www/static/; open_file_cache max=1000 inactive=60s; sendfile off; }}
  }}
}}
""")

    def send_headers(self, headers):
        """Makes `/static-headers/` serve the static files with `headers`
        ((name, nginx value) pairs) added, as a public route adds its own
        (and, as it, without sendfile)."""
        self._write_config(headers)
        os.kill(self.process.pid, signal.SIGHUP)
        time.sleep(1)

    def stop(self):
        os.kill(self.process.pid, signal.SIGQUIT)
        self.process.wait(timeout=30)


class RSSSampler:
    """The worker's peak RSS while the `with` block runs, sampled every 10 ms."""

    def __init__(self, server):
        self.server = server
        self.peak_kb = 0

    def __enter__(self):
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)
        self.thread.start()
        return self

    def _run(self):
        while not self.stop.is_set():
            try:
                self.peak_kb = max(self.peak_kb, self.server.rss_kb())
            except (OSError, ValueError):
                pass
            time.sleep(0.01)

    def __exit__(self, *_):
        self.stop.set()
        self.thread.join()

    @property
    def peak_mb(self):
        return self.peak_kb / 1024


class SlowUploader:
    """One upload sent at about 1 KB/s until stopped, counting what it sent."""

    def __init__(self, port, credential):
        self.port = port
        self.credential = credential
        self.sent = 0
        self.connected = False
        self.error = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port)) as s:
                s.sendall((f"POST /api/minihost/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           f"Authorization: Bearer {self.credential}\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                           f"Content-Length: 10000000\r\n\r\n"
                           f"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow\"\r\n\r\n").encode())
                self.connected = True
                while not self.stop.is_set():
                    s.sendall(os.urandom(256))
                    self.sent += 256
                    self.stop.wait(0.25)
        except OSError as error:
            self.error = error
        finally:
            self.connected = False

    def finish(self):
        self.stop.set()
        self.thread.join(10)


def requests_chunked_upload(base, user, password, path, chunk=8 << 20, parallel=4):
    """The plain dialect's resumable flow as an app written with requests
    does it: check, init, chunks on keep-alive connections, finish. Returns
    the Raw link."""
    credentials = {"username": user, "password": password}
    with requests.Session() as session:
        assert session.post(base + "/api/cliCheckCredentials", data=credentials).text.strip() == "VALID"
        size = path.stat().st_size
        upload_id = session.post(base + "/api/initChunkedUploadPlain",
                                 data={**credentials, "filename": path.name, "size": size}).text.strip()
        lanes = threading.local()

        def send(index):
            if not hasattr(lanes, "session"):
                lanes.session = requests.Session()
            with open(path, "rb") as f:
                f.seek(index * chunk)
                body = f.read(chunk)
            response = lanes.session.post(f"{base}/api/uploadChunkPlain?id={upload_id}&chunk={index}",
                                          files={"file": (f"chunk-{index}", body)})
            assert response.status_code == 200, response.text

        with ThreadPoolExecutor(parallel) as pool:
            list(pool.map(send, range((size + chunk - 1) // chunk)))
        while True:
            response = session.post(base + "/api/finishChunkedUploadPlain", data={**credentials, "id": upload_id})
            if response.status_code != 202:
                break
            time.sleep(1)
        assert response.status_code == 200, response.text
        return next(line.split(": ", 1)[1] for line in response.text.splitlines() if line.startswith("Raw: "))


def split_file(path, folder, chunk=8 << 20):
    """`path` cut into files of `chunk` bytes in `folder` (emptied first), in order."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    parts = []
    with open(path, "rb") as f:
        while block := f.read(chunk):
            parts.append(folder / f"{len(parts):05d}")
            parts[-1].write_bytes(block)
    return parts


def curl_tus_upload(base, credential, parts):
    """tus from one curl process: create, then one PATCH per file in `parts`
    on one keep-alive connection (`--next`), each read from its file as it
    is sent. Returns the upload id."""
    auth = ["-H", "Tus-Resumable: 1.0.0", "-H", f"Authorization: Bearer {credential}"]
    size = sum(p.stat().st_size for p in parts)
    created = subprocess.run(["curl", "-sS", "-f", "-o", "/dev/null", "-D", "-", "-X", "POST", *auth,
                              "-H", f"Upload-Length: {size}", base + "/api/tus"], capture_output=True, text=True,
                             check=True).stdout
    url = next(line.split(":", 1)[1].strip() for line in created.splitlines() if line.lower().startswith("location:"))
    command, offset = ["curl"], 0
    for part in parts:
        if offset:
            command.append("--next")
        # No Expect: 100-continue, as tus clients send it.
        command += ["-sS", "-f", "-o", "/dev/null", "-X", "PATCH", "-T", str(part), *auth, "-H", "Expect:",
                    "-H", f"Upload-Offset: {offset}", "-H", "Content-Type: application/offset+octet-stream", url]
        offset += part.stat().st_size
    subprocess.run(command, check=True)
    return url.rsplit("/", 1)[1]


def tus_upload(base, credential, path, chunk=8 << 20):
    """tus as a client library does it: create, then one PATCH per `chunk`
    bytes in order on a keep-alive connection. Returns the upload id."""
    headers = {"Tus-Resumable": "1.0.0", "Authorization": f"Bearer {credential}"}
    size = path.stat().st_size
    with requests.Session() as session, open(path, "rb") as f:
        created = session.post(base + "/api/tus", headers={**headers, "Upload-Length": str(size),
                                                           "Upload-Metadata": "filename " + base64.b64encode(path.name.encode()).decode()})
        assert created.status_code == 201, created.text
        url = created.headers["Location"]
        offset = 0
        while offset < size:
            body = f.read(chunk)
            response = session.patch(url, data=body, headers={**headers, "Upload-Offset": str(offset),
                                                              "Content-Type": "application/offset+octet-stream"})
            assert response.status_code == 204, response.text
            offset = int(response.headers["Upload-Offset"])
        return url.rsplit("/", 1)[1]
