"""What operators watch: Prometheus metrics and nginx's stub_status (loopback
only), request ids from nginx through the workers' logs to the answer, and
logs that never hold a secret."""

import os
import re
import socket
import sqlite3
import subprocess
import threading
import time

import pytest
import requests

import fastcgi_client
from conftest import BIN, ROOT, Secrets, run_cli
from test_hardening import PRIMARY, basic_upload, make_user

SAMPLE = re.compile(r'^([a-z_:]+)(?:\{(.*)\})? (\S+)$')


def scrape(server):
    """{(name, frozenset(labels)): value} from the metrics endpoint."""
    r = requests.get(server.url("/_minihost/metrics"), timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for line in r.text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, line
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        samples[(match.group(1), labels)] = float(match.group(3))
    return samples


def value(samples, name, **labels):
    wanted = set(labels.items())
    return sum(v for (n, l), v in samples.items() if n == name and wanted <= set(l))


def test_metrics_move_with_requests_uploads_downloads_and_maintenance(make_server):
    server = make_server(env={"MINIHOST_PASSWORD_CHECKS": "1"})
    credential = server.client()
    before = scrape(server)
    for _ in range(3):
        assert requests.get(server.url("/api/health")).status_code == 200
    payload = os.urandom(300_000)
    upload_id = server.upload(credential, payload).json()["uploadId"]
    download = requests.get(server.url(f"/api/minihost/download?id={upload_id}"), headers=server.auth(credential))
    assert download.content == payload
    assert requests.get(server.url(f"/api/minihost/download?id={upload_id}")).status_code == 401
    run_cli("gc", data=server.data)
    # A resumable session left open.
    make_user(server)
    r = requests.post(server.url("/api/initChunkedUploadPlain"),
                      data={"username": "alice", "password": PRIMARY, "filename": "big.bin", "size": "1000"})
    assert r.status_code == 200, r.text
    # Password checks queue behind the one scrypt allowed at a time.
    wrong = [threading.Thread(target=basic_upload, args=(server, b"x"), kwargs={"password": f"wrong password {i}"})
             for i in range(4)]
    for thread in wrong:
        thread.start()
    for thread in wrong:
        thread.join()
    # A commit that finds the database locked by another connection waits and retries.
    with sqlite3.connect(server.data / "minihost.sqlite", timeout=10, isolation_level=None) as locker:
        locker.execute("BEGIN IMMEDIATE")
        result = {}
        uploader = threading.Thread(target=lambda: result.update(r=server.upload(credential, b"after the lock")))
        uploader.start()
        time.sleep(1)
        locker.execute("COMMIT")
        uploader.join()
    assert result["r"].status_code == 200

    after = scrape(server)

    def grew(name, by=1, **labels):
        return value(after, name, **labels) - value(before, name, **labels) >= by

    assert grew("minihost_http_requests_total", 3, route="/api/health", dialect="health", method="GET", status="200")
    assert grew("minihost_http_requests_total", 1, route="/api/minihost/download", dialect="minihost", status="401")
    assert grew("minihost_http_requests_total", 1, route="/api/minihost/download", dialect="minihost", status="200")
    assert grew("minihost_http_request_duration_seconds_count", 3, route="/api/health")
    assert grew("minihost_http_received_bytes_total", len(payload), dialect="minihost")
    assert grew("minihost_http_sent_bytes_total", len(payload), dialect="minihost")
    assert grew("minihost_uploads", 2) and grew("minihost_blob_objects", 2) and grew("minihost_blob_bytes", len(payload))
    assert grew("minihost_upload_sessions_open", 1)
    assert grew("minihost_maintenance_runs_total", 1, task="gc")
    assert value(after, "minihost_maintenance_last_run_timestamp_seconds", task="gc") > time.time() - 60
    assert value(after, "minihost_maintenance_runs_total", task="sweeper") >= 1  # at start
    assert grew("minihost_password_checks_waited_total", 1)
    assert grew("minihost_sqlite_busy_retries_total", 1)
    assert value(after, "minihost_worker_threads") == 48
    assert value(after, "minihost_worker_threads_busy") >= 1  # the scrape itself
    # nginx's own counters, next to the workers'.
    status = requests.get(server.url("/_minihost/nginx_status"))
    assert status.status_code == 200 and "Active connections" in status.text
    # The shipped dashboard asks only for metrics that exist.
    import json
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "minihost-dashboard.json").read_text())
    queried = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"\bminihost_[a-z_]+", target["expr"])}
    exposed = {name for name, _ in after}
    assert queried and queried <= exposed, queried - exposed
    # Label values come from the route table only: an unknown path mints no series.
    requests.get(server.url("/api/minihost/does-not-exist-" + "x" * 40))
    assert not any("does-not-exist" in str(labels) for _, labels in scrape(server))


def test_metrics_and_nginx_status_are_for_this_machine_only(make_server, tmp_path):
    server = make_server()
    # The worker refuses a scrape from elsewhere even if a front let it through.
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(server.data / "run" / "workers.sock"))
        status, _, body = fastcgi_client.request(s, "GET", "/_minihost/metrics",
                                                 params_extra={"REMOTE_ADDR": "203.0.113.9"})
    assert status == 403, body
    # nginx lets only loopback addresses reach either, in the production config too.
    config = subprocess.run([str(BIN), "nginx-config"], capture_output=True, text=True, check=True).stdout
    for path in ["location = /_minihost/metrics", "location = /_minihost/nginx_status"]:
        block = config[config.index(path):]
        block = block[:block.index("\n    }")]
        assert "allow 127.0.0.0/8;" in block and "allow ::1;" in block and "deny all;" in block, block


def test_every_answer_names_its_request_and_the_logs_agree(make_server):
    server = make_server(env={"MINIHOST_LOG_LEVEL": "debug"})
    credential = server.client()
    upload = server.upload(credential, b"named bytes")
    upload_id = upload.json()["uploadId"]
    answers = {
        "upload (worker)": upload,
        "health (worker)": requests.get(server.url("/api/health")),
        "download (accel, nginx sends the file)": requests.get(server.url(f"/api/minihost/download?id={upload_id}"),
                                                               headers=server.auth(credential)),
        "401 (worker)": requests.get(server.url(f"/api/minihost/download?id={upload_id}")),
        "404 (nginx, no route)": requests.get(server.url("/no/such/path")),
        "413 (nginx)": requests.post(server.url("/api/minihost/publishing_upload"), data=b"x" * (2 << 20),
                                     headers={**server.auth(credential), "Content-Type": "application/json"}),
        "spoofed id ignored": requests.get(server.url("/api/health"), headers={"X-Request-Id": "spoofed-by-client"}),
    }
    ids = {}
    for name, r in answers.items():
        request_id = r.headers.get("X-Request-Id", "")
        assert re.fullmatch(r"[0-9a-f]{32}", request_id), (name, r.status_code, r.headers)
        ids[name] = request_id
    assert len(set(ids.values())) == len(ids)
    assert answers["413 (nginx)"].status_code == 413
    worker_log = server.output()
    assert "spoofed-by-client" not in worker_log
    for name in ["upload (worker)", "health (worker)", "download (accel, nginx sends the file)", "401 (worker)"]:
        lines = [line for line in worker_log.splitlines() if f"request_id={ids[name]}" in line]
        request_lines = [line for line in lines if line.endswith(" request")]
        assert len(request_lines) == 1, (name, lines)
        for field in ["method=", "route=", "status=", "bytes_in=", "bytes_out=", "duration_ms=", "client=127.0.0.1"]:
            assert field in request_lines[0], (field, request_lines[0])
    # A line written while the upload was handled names it too.
    stored = [line for line in worker_log.splitlines() if "upload stored" in line]
    assert stored and f"request_id={ids['upload (worker)']}" in stored[0], stored
    assert "status=401" in next(line for line in worker_log.splitlines()
                                if f"request_id={ids['401 (worker)']}" in line and line.endswith(" request"))
    # nginx's access log has every one of them (it flushes each second).
    access = server.data / "nginx" / "access.log"
    deadline = time.time() + 5
    while time.time() < deadline and not all(f"id={i}" in access.read_text() for i in ids.values()):
        time.sleep(0.2)
    text = access.read_text()
    assert all(f"id={i}" in text for i in ids.values()), text[-2000:]


def test_public_hits_nginx_answers_itself_are_named_by_connection_and_logged(make_server):
    from test_public_files import FAST_INDEX, publish, wait_static, workers_stopped
    server = make_server(env=FAST_INDEX)
    credential = server.client()
    upload_id = publish(server, credential, b"public bytes", "p.txt", "text/plain")
    url = server.url(f"/minihost/cache/{upload_id}")
    wait_static(server, [url])
    session = requests.Session()  # two requests on one connection, and one on another
    with workers_stopped(server):
        answers = [session.get(url, timeout=5), session.get(url, timeout=5), requests.get(url, timeout=5)]
    ids = [r.headers.get("X-Request-Id", "") for r in answers]
    assert all(r.status_code == 200 and r.content == b"public bytes" for r in answers)
    # <nginx worker pid>-<connection serial>-<request on it>: no random bytes per hit.
    parts = [re.fullmatch(r"(\d+)-(\d+)-(\d+)", i) for i in ids]
    assert all(parts), ids
    assert len(set(ids)) == 3
    assert parts[0].group(2) == parts[1].group(2) != parts[2].group(2)
    assert (parts[0].group(3), parts[1].group(3)) == ("1", "2")
    # A request that reaches a worker from the same location keeps nginx's $request_id.
    missing = requests.get(server.url(f"/minihost/cache/{'0' * 32}"))
    assert missing.status_code == 404 and re.fullmatch(r"[0-9a-f]{32}", missing.headers["X-Request-Id"])
    access = server.data / "nginx" / "access.log"
    wanted = [f"id={i}" for i in ids + [missing.headers["X-Request-Id"]]]
    deadline = time.time() + 5
    while time.time() < deadline and not all(w in access.read_text() for w in wanted):
        time.sleep(0.2)
    assert all(w in access.read_text() for w in wanted), access.read_text()[-2000:]


def test_a_secret_in_any_log_fails_the_server_check(make_server):
    """The check every server runs when it stops (conftest) can fail."""
    server = make_server()
    credential = server.client()
    assert requests.get(server.url("/api/health")).status_code == 200
    server.stop()
    with open(server.data / "nginx" / "access.log", "a") as log:
        log.write(f"leaked {credential.partition('.')[2]}\n")
    with pytest.raises(AssertionError, match="secrets in logs"):
        server.check_logs_hold_no_secret()
    Secrets.values.discard(credential.partition(".")[2])
    Secrets.values.discard(credential)


def test_status_summarises_a_data_folder(make_server, tmp_path):
    server = make_server()
    credential = server.client()
    payload = os.urandom(2_000_000)
    server.upload(credential, payload)
    server.upload(credential, payload, name="same-bytes.bin")  # stored once
    out = run_cli("status", data=server.data).stdout
    assert re.search(r"uploads\s+2 ready, 4\.0 MB", out), out
    assert re.search(r"stored blobs\s+1, 2\.0 MB", out), out
    assert re.search(r"sessions\s+0 resumable", out), out
    assert re.search(r"gc\s+never run", out), out
    assert re.search(r"disk free\s+\d", out), out
    run_cli("gc", data=server.data)
    assert re.search(r"gc\s+last \d+ s ago, 1 run", run_cli("status", data=server.data).stdout)
    missing = run_cli("status", data=tmp_path / "nothing-here", check=False)
    assert missing.returncode != 0 and "no minihost data folder" in missing.stderr
    assert not (tmp_path / "nothing-here").exists()
