"""Running minihost: disk full, rate limits, graceful stop, gc/check, the
serve modes (unix socket, TCP, systemd socket), and the shipped configs."""

import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

import fastcgi_client
from conftest import BIN, ROOT, free_port, run_cli, sha256, slow_multipart


def test_rate_limits_answer_429_in_json(make_server):
    server = make_server({"MINIHOST_RATE_LIMIT": "on"})
    statuses = []
    for _ in range(20):
        r = requests.post(server.url("/api/minihost/admin-login"), json={"username": "x", "password": "y"})
        statuses.append(r.status_code)
        if r.status_code == 429:
            assert r.json()["error"] == "Too many requests"
    assert 401 in statuses and 429 in statuses


def test_sigterm_finishes_requests_in_flight_then_exits_0(server):
    credential = server.client()
    data = os.urandom(1_500_000)
    result = {}

    def upload():
        result["r"] = requests.post(server.url("/api/minihost/upload"), data=slow_multipart(data, 100_000, 0.1), timeout=60,
                                    headers={**server.auth(credential), "Content-Type": "multipart/form-data; boundary=b"})

    thread = threading.Thread(target=upload)
    thread.start()
    time.sleep(0.5)
    os.kill(server.process.pid, signal.SIGTERM)
    thread.join(30)
    assert result["r"].status_code == 200 and result["r"].json()["sha256"] == sha256(data)
    assert server.process.wait(timeout=30) == 0
    assert not (server.data / "run" / "workers.sock").exists()


def test_gc_and_check_from_the_cli(server):
    credential = server.client()
    ids = [server.upload(credential, os.urandom(3000)).json()["uploadId"] for _ in range(3)]
    assert run_cli("check", data=server.data).returncode == 0
    # An orphan blob at its real address, as a crash between placing and recording leaves it.
    junk = b"orphan"
    digest = sha256(junk)
    orphan = server.data / "blobs" / digest[:2] / digest[2:4] / digest
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(junk)
    stale = server.data / "tmp" / "upload-stale.part"
    stale.write_bytes(b"x")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    fresh = server.data / "tmp" / "upload-fresh.part"
    fresh.write_bytes(b"y")
    out = run_cli("gc", data=server.data).stdout
    assert "removed 1 temporary file(s)" in out and "1 unreferenced blob(s)" in out, out
    assert not stale.exists() and fresh.exists() and not orphan.exists()
    fresh.unlink()
    assert run_cli("check", data=server.data).returncode == 0
    # Damage one blob: check reports it and exits 1.
    blob = server.db("SELECT blob FROM minihost_uploads WHERE id = ?", ids[0])[0][0]
    path = server.data / "blobs" / blob[:2] / blob[2:4] / blob
    path.write_bytes(b"damaged")
    result = run_cli("check", data=server.data, check=False)
    assert result.returncode == 1 and "hash mismatch" in result.stdout and ids[0] in result.stdout


def test_gc_removes_unreferenced_blobs(server):
    credential = server.client()
    upload_id = server.upload(credential, b"to be orphaned").json()["uploadId"]
    blob = server.db("SELECT blob FROM minihost_uploads WHERE id = ?", upload_id)[0][0]
    # Simulate a crash between placing a blob and committing its row.
    server.db("DELETE FROM minihost_uploads WHERE id = ?", upload_id)
    out = run_cli("gc", data=server.data).stdout
    assert "1 unreferenced blob(s)" in out
    assert not (server.data / "blobs" / blob[:2] / blob[2:4] / blob).exists()


def start_serve(tmp_path, *args, pass_fd=None, env=None):
    data = tmp_path / "serve-data"
    log = open(tmp_path / "serve.log", "w+")
    command = [str(BIN), "serve", "--data", str(data), "--workers", "4", *args]
    kwargs = {}
    if pass_fd is not None:
        # As systemd does: the socket is fd 3. The shell moves it there and
        # execs, so the pid stays the same (Popen's close_fds would undo a dup2
        # made in preexec_fn).
        kwargs["pass_fds"] = (pass_fd,)
        command = ["bash", "-c", f'exec 3<&{pass_fd} {pass_fd}<&-; exec "$@"', "bash", *command]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                               start_new_session=True, **kwargs)
    return process, data, log


def stop_serve(process):
    os.kill(process.pid, signal.SIGTERM)
    assert process.wait(timeout=20) == 0


def connect_retry(address, family=socket.AF_INET):
    deadline = time.time() + 10
    while True:
        try:
            s = socket.socket(family, socket.SOCK_STREAM)
            s.connect(address)
            return s
        except OSError:
            s.close()
            if time.time() > deadline:
                raise
            time.sleep(0.1)


def test_serve_on_tcp_without_accel_streams_files_itself(tmp_path):
    port = free_port()
    process, data, log = start_serve(tmp_path, "--listen", f"127.0.0.1:{port}", "--no-accel")
    try:
        with connect_retry(("127.0.0.1", port)) as s:
            status, headers, body = fastcgi_client.request(s, "GET", "/api/health")
        assert status == 200 and b'"ok"' in body
        credential = run_cli("client", "create", "app", data=data).stdout.strip().splitlines()[-1]
        payload = os.urandom(300_000)
        multipart = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.bin\"\r\n\r\n" + payload
                     + b"\r\n--b--\r\n")
        with connect_retry(("127.0.0.1", port)) as s:
            status, headers, body = fastcgi_client.request(
                s, "POST", "/api/minihost/upload", body=multipart,
                headers={"Authorization": f"Bearer {credential}", "Content-Type": "multipart/form-data; boundary=b"})
        assert status == 200, body
        import json
        upload_id = json.loads(body)["uploadId"]
        with connect_retry(("127.0.0.1", port)) as s:
            status, headers, body = fastcgi_client.request(s, "GET", f"/api/minihost/download?id={upload_id}",
                                                           headers={"Authorization": f"Bearer {credential}"})
        assert status == 200 and "x-accel-redirect" not in headers
        assert int(headers["content-length"]) == len(payload) and sha256(body) == sha256(payload)
    finally:
        stop_serve(process)


def test_serve_on_a_unix_socket_answers_with_accel_redirect(tmp_path):
    path = str(tmp_path / "w.sock")
    process, data, log = start_serve(tmp_path, "--socket", path, "--socket-mode", "600")
    try:
        with connect_retry(path, socket.AF_UNIX) as s:
            status, _, body = fastcgi_client.request(s, "GET", "/api/health")
        assert status == 200
        assert oct(os.stat(path).st_mode & 0o777) == "0o600"
        credential = run_cli("client", "create", "app", data=data).stdout.strip().splitlines()[-1]
        multipart = b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n\r\nabc\r\n--b--\r\n"
        with connect_retry(path, socket.AF_UNIX) as s:
            _, _, body = fastcgi_client.request(s, "POST", "/api/minihost/upload", body=multipart, headers={
                "Authorization": f"Bearer {credential}", "Content-Type": "multipart/form-data; boundary=b"})
        import json
        upload_id = json.loads(body)["uploadId"]
        with connect_retry(path, socket.AF_UNIX) as s:
            status, headers, body = fastcgi_client.request(s, "GET", f"/api/minihost/download?id={upload_id}",
                                                           headers={"Authorization": f"Bearer {credential}"})
        digest = sha256(b"abc")
        assert status == 200 and body == b""
        assert headers["x-accel-redirect"] == f"/_blobs/{digest[:2]}/{digest[2:4]}/{digest}"
    finally:
        stop_serve(process)
    assert not os.path.exists(path)


def test_a_worker_closes_at_once_once_nginx_sent_everything_and_lingers_over_an_unread_body(tmp_path):
    path = str(tmp_path / "w.sock")
    process, _, _ = start_serve(tmp_path, "--socket", path)
    try:
        # A bodiless request has ended by the time it is answered: the worker
        # closes the connection outright rather than waiting on nginx's close.
        with connect_retry(path, socket.AF_UNIX) as s:
            status, _, _ = fastcgi_client.request(s, "GET", "/api/health")
            assert status == 200
            assert s.recv(1) == b""
            with pytest.raises((BrokenPipeError, ConnectionResetError)):
                s.sendall(b"x" * 8)
        # A body answered before it was read (no credential) may still be on
        # its way: the worker keeps reading and discarding it, so a front end
        # still sending never fails to write and loses the answer.
        declared = 4 * 1024 * 1024
        params = {"REQUEST_METHOD": "POST", "REQUEST_URI": "/api/minihost/upload",
                  "DOCUMENT_URI": "/api/minihost/upload", "QUERY_STRING": "", "REMOTE_ADDR": "127.0.0.1",
                  "CONTENT_LENGTH": str(declared), "CONTENT_TYPE": "multipart/form-data; boundary=b"}
        chunk = b"y" * 65535
        with connect_retry(path, socket.AF_UNIX) as s:
            s.settimeout(30)
            s.sendall(fastcgi_client.begin(params) + fastcgi_client.stdin(chunk * 4))
            status, _, body = fastcgi_client.read_answer(s)
            assert status == 401, body
            sent = len(chunk) * 4
            while sent < declared:
                s.sendall(fastcgi_client.stdin(chunk))
                sent += len(chunk)
            s.sendall(fastcgi_client.stdin(b""))
            assert s.recv(1) == b""
    finally:
        stop_serve(process)


def test_serve_takes_the_socket_systemd_passes_and_leaves_it_working(tmp_path):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path = str(tmp_path / "activated.sock")
    listener.bind(path)
    listener.listen(16)
    try:
        # systemd keeps the socket across restarts of the service: a stopped
        # worker must leave it listening for the next one.
        for _ in range(2):
            process, _, _ = start_serve(tmp_path, pass_fd=listener.fileno(), env={"LISTEN_FDS": "1"})
            try:
                with connect_retry(path, socket.AF_UNIX) as s:
                    status, _, body = fastcgi_client.request(s, "GET", "/api/health")
                assert status == 200 and b'"ok"' in body
            finally:
                stop_serve(process)
        assert os.path.exists(path)
    finally:
        listener.close()


def test_shipped_nginx_config_is_the_rendered_template(tmp_path):
    rendered = subprocess.run([str(BIN), "nginx-config"], capture_output=True, text=True, check=True).stdout
    assert rendered == (ROOT / "deploy" / "nginx" / "minihost.conf").read_text(), \
        "deploy/nginx/minihost.conf is stale: run `make nginx-config`"
    assert "limit_req_status 429" in rendered and "return 301 https://" in rendered and "internal;" in rendered


def test_production_nginx_config_passes_nginx_t(tmp_path):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    site = subprocess.run([str(BIN), "nginx-config", "--ssl-certificate", str(cert), "--ssl-certificate-key", str(key),
                           "--http-listen", f"127.0.0.1:{free_port()}", "--https-listen", f"127.0.0.1:{free_port()}",
                           "--socket", str(tmp_path / "w.sock"), "--blob-root", str(tmp_path / "blobs")],
                          capture_output=True, text=True, check=True).stdout
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(f"""
pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;
events {{}}
http {{
  client_body_temp_path {tmp_path}/cb; fastcgi_temp_path {tmp_path}/fc; proxy_temp_path {tmp_path}/pr;
  uwsgi_temp_path {tmp_path}/uw; scgi_temp_path {tmp_path}/sc; access_log off;
  include {tmp_path}/site.conf;
}}
""")
    result = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-e",
                             str(tmp_path / "error.log")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_systemd_units_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: scripts/install-deps.sh --test installs it"
    units = ROOT / "deploy" / "systemd"
    for unit in units.iterdir():
        # Point ExecStart at the built binary so verify can check it exists.
        (tmp_path / unit.name).write_text(unit.read_text().replace("/usr/local/bin/minihost", str(BIN)))
    result = subprocess.run([analyze, "verify", *[str(p) for p in sorted(tmp_path.iterdir())]],
                            capture_output=True, text=True)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if line.strip() and "Failed to" not in line and "ignoring" not in line.lower()]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr
    service = (units / "minihost.service").read_text()
    for setting in ["NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/minihost", "PrivateTmp=yes",
                    "User=minihost"]:
        assert setting in service


def test_sigterm_lets_a_chunk_and_a_finish_in_flight_complete(make_server, tmp_path):
    server = make_server()
    run_cli("user", "create", "alice", "--password-stdin", data=server.data, stdin="alice primary password\n")
    credentials = {"username": "alice", "password": "alice primary password"}

    def init(size):
        r = requests.post(server.url("/api/initChunkedUploadPlain"), data={**credentials, "filename": "f.bin", "size": size})
        return r.text.strip()

    # A large session whose finish copies (chunks of uneven size), and one with a slow chunk.
    big = os.urandom(48 << 20)
    big_id = init(len(big))
    for index, start in enumerate([0, 5_000_000, 7_000_000, 30_000_000]):
        end = [5_000_000, 7_000_000, 30_000_000, len(big)][index]
        assert requests.post(server.url(f"/api/uploadChunkPlain?id={big_id}&chunk={index}"),
                             files={"file": ("c", big[start:end])}).status_code == 200
    small = os.urandom(600_000)
    small_id = init(len(small))
    assert requests.post(server.url(f"/api/uploadChunkPlain?id={small_id}&chunk=0"),
                         files={"file": ("c", small[:300_000])}).status_code == 200
    results = {}

    def slow_chunk():
        results["chunk"] = requests.post(server.url(f"/api/uploadChunkPlain?id={small_id}&chunk=1"), timeout=60,
                                         data=slow_multipart(small[300_000:], 50_000, 0.15),
                                         headers={"Content-Type": "multipart/form-data; boundary=b"})

    def finish():
        results["finish"] = requests.post(server.url("/api/finishChunkedUploadPlain"), data={**credentials, "id": big_id},
                                          timeout=60)

    threads = [threading.Thread(target=slow_chunk), threading.Thread(target=finish)]
    for thread in threads:
        thread.start()
    time.sleep(0.4)
    os.kill(server.process.pid, signal.SIGTERM)
    for thread in threads:
        thread.join(60)
    assert server.process.wait(timeout=60) == 0, server.output()
    assert results["chunk"].status_code == 200, results["chunk"].text
    assert results["finish"].status_code == 200, results["finish"].text
    raw = dict(line.split(": ", 1) for line in results["finish"].text.splitlines())["Raw"]
    # Started again on the same data: the finished file and the acknowledged chunk are there.
    again = make_server(data=server.data)
    raw = raw.replace(server.base, again.base)
    assert sha256(requests.get(raw).content) == sha256(big)
    done = requests.post(again.url("/api/finishChunkedUploadPlain"), data={**credentials, "id": small_id})
    assert done.status_code == 200, done.text
    small_raw = dict(line.split(": ", 1) for line in done.text.splitlines())["Raw"]
    assert sha256(requests.get(small_raw).content) == sha256(small)


def stalled_fastcgi_request(path):
    """A FastCGI request to serve whose body never ends: a worker thread waits on it."""
    s = connect_retry(path, socket.AF_UNIX)
    params = {"REQUEST_METHOD": "POST", "REQUEST_URI": "/api/minihost/upload", "DOCUMENT_URI": "/api/minihost/upload",
              "QUERY_STRING": "", "REMOTE_ADDR": "127.0.0.1", "CONTENT_LENGTH": "1000000",
              "CONTENT_TYPE": "multipart/form-data; boundary=b"}
    encoded = b"".join(fastcgi_client._pair(k.encode(), v.encode()) for k, v in params.items())
    s.sendall(fastcgi_client._record(fastcgi_client.BEGIN_REQUEST, 1, b"\x00\x01\x00\x00\x00\x00\x00\x00")
              + fastcgi_client._record(fastcgi_client.PARAMS, 1, encoded) + fastcgi_client._record(fastcgi_client.PARAMS, 1, b"")
              + fastcgi_client._record(fastcgi_client.STDIN, 1, b"--b\r\n"))
    return s


def test_serve_exits_3_when_a_request_outlasts_the_grace_period(tmp_path):
    path = str(tmp_path / "w.sock")
    process, data, log = start_serve(tmp_path, "--socket", path, "--grace-period", "1")
    stalled = stalled_fastcgi_request(path)
    try:
        time.sleep(0.5)
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(timeout=20) == 3
    finally:
        stalled.close()
    log.seek(0)
    assert "still in flight after the grace period" in log.read()


def test_up_exits_3_when_a_request_outlasts_the_grace_period(make_server):
    server = make_server(extra_args=["--grace-period", "1"])
    credential = server.client()
    thread = threading.Thread(target=lambda: requests.post(
        server.url("/api/minihost/upload"), data=slow_multipart(os.urandom(1_000_000), 10_000, 0.2), timeout=60,
        headers={**server.auth(credential), "Content-Type": "multipart/form-data; boundary=b"}))
    thread.daemon = True
    thread.start()
    time.sleep(0.5)
    os.kill(server.process.pid, signal.SIGTERM)
    assert server.process.wait(timeout=30) == 3
    assert "stopped uncleanly" in server.output()


def test_gc_racing_uploads_purges_and_finishes_loses_nothing_acknowledged(server, tmp_path):
    """gc (even sweeping temporary files of any age) runs in a loop while
    clients upload duplicate bytes, purge, and finish chunked uploads.
    Requests whose temporary file gc swept may fail; nothing acknowledged may."""
    credential = server.client()
    run_cli("user", "create", "alice", "--password-stdin", data=server.data, stdin="alice primary password\n")
    stop = threading.Event()
    lock = threading.Lock()
    acked, purged, finished, failures = {}, set(), {}, []
    contents = [os.urandom(200_000) for _ in range(4)]

    def uploader(seed):
        rng = random.Random(seed)
        while not stop.is_set():
            data = rng.choice(contents) if rng.random() < 0.5 else os.urandom(rng.choice([1000, 300_000]))
            r = server.upload(credential, data)
            if r.status_code == 200:
                with lock:
                    acked[r.json()["uploadId"]] = sha256(data)
            else:
                failures.append(r.status_code)

    def purger():
        rng = random.Random(7)
        while not stop.is_set():
            time.sleep(0.05)
            with lock:
                candidates = [u for u in acked if u not in purged]
            if len(candidates) < 3:
                continue
            victim = rng.choice(candidates)
            r = requests.post(server.url("/api/minihost/upload_follow_up"), headers=server.auth(credential),
                              json={"uploadId": victim, "app_payload": {"_PURGE": True}})
            if r.status_code == 200:
                with lock:
                    purged.add(victim)

    def chunker():
        form = {"username": "alice", "password": "alice primary password"}
        while not stop.is_set():
            data = os.urandom(4 * 65536)
            session = requests.post(server.url("/api/initChunkedUploadPlain"),
                                    data={**form, "filename": "c.bin", "size": len(data)}).text.strip()
            ok = all(requests.post(server.url(f"/api/uploadChunkPlain?id={session}&chunk={i}"),
                                   files={"file": ("c", data[i * 65536:(i + 1) * 65536])}).status_code == 200
                     for i in range(4))
            r = requests.post(server.url("/api/finishChunkedUploadPlain"), data={**form, "id": session}) if ok else None
            if r is not None and r.status_code == 200:
                finished[session] = (dict(line.split(": ", 1) for line in r.text.splitlines())["Raw"], sha256(data))

    def collector():
        while not stop.is_set():
            run_cli("gc", "--temporary-age", "0", data=server.data)

    threads = [threading.Thread(target=uploader, args=(i,)) for i in range(2)]
    threads += [threading.Thread(target=f) for f in (purger, chunker, collector)]
    for thread in threads:
        thread.start()
    time.sleep(8)
    stop.set()
    for thread in threads:
        thread.join(60)
    assert len(acked) > 20 and purged and finished, (len(acked), len(purged), len(finished))
    assert set(failures) <= {500}, failures
    for upload_id, digest in acked.items():
        r = requests.get(server.url(f"/api/minihost/download?id={upload_id}"), headers=server.auth(credential))
        if upload_id in purged:
            assert r.status_code == 404
        else:
            assert r.status_code == 200 and sha256(r.content) == digest, upload_id
    for raw, digest in finished.values():
        assert sha256(requests.get(raw).content) == digest
    assert run_cli("check", data=server.data).returncode == 0
    run_cli("gc", "--temporary-age", "0", data=server.data)
    referenced = {row[0] for row in server.db("SELECT DISTINCT blob FROM minihost_uploads WHERE blob IS NOT NULL")}
    assert {p.name for p in server.blob_files()} == referenced


def test_serve_marks_the_operator_cookie_secure(tmp_path):
    path = str(tmp_path / "w.sock")
    process, data, log = start_serve(tmp_path, "--socket", path)
    try:
        run_cli("admin", "create", "operator", "--password-stdin", data=data, stdin="an operator password\n")
        with connect_retry(path, socket.AF_UNIX) as s:
            status, headers, _ = fastcgi_client.request(
                s, "POST", "/api/minihost/admin-login", headers={"Content-Type": "application/json"},
                body=b'{"username":"operator","password":"an operator password"}')
        assert status == 200
        cookie = headers["set-cookie"]
        assert "; Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    finally:
        stop_serve(process)
