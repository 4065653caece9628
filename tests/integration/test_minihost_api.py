"""The minihost dialect end to end through real nginx."""

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor

import requests

from conftest import run_cli, sha256, start_strace, stop_strace


def database_syscalls(server, request):
    """System calls the worker makes on the database's files while `request()` runs, traced with strace."""
    [pid] = server.worker_pids()
    trace = server.data.parent / f"strace-{pid}-{time.time_ns()}.log"
    tracer = start_strace(pid, trace)
    try:
        request()
        time.sleep(0.3)
    finally:
        stop_strace(tracer)
    database_fds = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if "minihost.sqlite" in os.readlink(fd):
                database_fds.add(fd.name)
        except OSError:
            pass
    calls = []
    for line in trace.read_text().splitlines():
        call = line.split(None, 1)[1] if " " in line else line
        name, _, args = call.partition("(")
        first = args.split(",", 1)[0].split(")", 1)[0].strip()
        if "minihost.sqlite" in call or (first in database_fds and name in
                                          ("pread64", "pwrite64", "read", "write", "fcntl", "fstat", "lseek", "fsync",
                                           "fdatasync", "ftruncate", "mmap")):
            calls.append(call)
    return calls


def test_health_touches_no_database(server):
    credential = server.client()
    upload_id = server.upload(credential, b"x").json()["uploadId"]
    answers = []
    calls = database_syscalls(server, lambda: answers.append(requests.get(server.url("/api/health"), timeout=5)))
    body = answers[0].json()
    assert body["status"] == "ok" and body["version"] and body["timestamp"].endswith("Z")
    assert calls == [], calls[:10]
    # Control: a download reads the database, and the trace sees it.
    control = database_syscalls(server, lambda: requests.get(server.url(f"/api/minihost/download?id={upload_id}"),
                                                             headers=server.auth(credential), timeout=5))
    assert control, "the trace saw no database access for a download, so it proves nothing"
    # A fresh data folder: `up` says how to create the first client.
    assert "client create" in server.output()


def test_head_on_a_public_cache_url_sends_headers_only(server):
    credential = server.client()
    upload_id = server.upload(credential, b"x" * 4096).json()["uploadId"]
    requests.post(server.url("/api/minihost/publishing_upload"), headers=server.auth(credential),
                  json={"upload_id": upload_id}).raise_for_status()
    head = requests.head(server.url(f"/minihost/cache/{upload_id}"))
    assert head.status_code == 200 and head.headers["Content-Length"] == "4096" and head.content == b""


def test_upload_download_roundtrip_verified_by_sha256(server):
    credential = server.client()
    for size in [0, 1, 1000, 3 * 1024 * 1024 + 17]:
        data = os.urandom(size)
        r = server.upload(credential, data, name="artifact.zip", content_type="application/zip")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["uploadFileName"] == "artifact.zip" and body["sha256"] == sha256(data)
        assert body["finishedAt"].endswith("Z") and body["downloadPath"] == f"/api/minihost/download?id={body['uploadId']}"
        d = requests.get(server.url(body["downloadPath"]), headers=server.auth(credential))
        assert d.status_code == 200
        assert sha256(d.content) == sha256(data)
        assert d.headers["Content-Type"] == "application/zip"
        assert d.headers["Content-Disposition"].startswith("attachment;")
        assert "X-Accel-Redirect" not in d.headers
    # nginx serves Range from the blob.
    data = os.urandom(10000)
    upload_id = server.upload(credential, data).json()["uploadId"]
    part = requests.get(server.url(f"/api/minihost/download?id={upload_id}"),
                        headers={**server.auth(credential), "Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]


def test_curl_upload_like_the_docs(server, tmp_path):
    import subprocess
    credential = server.client()
    f = tmp_path / "artifact.bin"
    f.write_bytes(os.urandom(200_000))
    out = subprocess.run(["curl", "-sS", "-X", "POST", server.url("/api/minihost/upload"),
                          "-H", f"Authorization: Bearer {credential}", "-F", f"file=@{f}"],
                         capture_output=True, text=True, check=True).stdout
    body = json.loads(out)
    dest = tmp_path / "downloaded.bin"
    subprocess.run(["curl", "-sSfL", server.url(f"/api/minihost/download?id={body['uploadId']}"),
                    "-H", f"Authorization: Bearer {credential}", "-o", str(dest)], check=True)
    assert sha256(dest.read_bytes()) == sha256(f.read_bytes())


def test_auth_errors(server):
    credential = server.client(scopes="download")
    key = credential.split(".")[0]
    url = server.url("/api/minihost/upload")
    files = {"file": ("a", b"x")}
    missing = requests.post(url, files=files)
    assert missing.status_code == 401 and "error" in missing.json()
    for header in ["Basic Zm9vOmJhcg==", "Bearer nodot", "Bearer .x", "Bearer x."]:
        r = requests.post(url, files=files, headers={"Authorization": header})
        assert r.status_code == 401 and "error" in r.json(), header
    unknown = requests.post(url, files=files, headers={"Authorization": "Bearer ghost.secret"})
    wrong = requests.post(url, files=files, headers={"Authorization": f"Bearer {key}.wrongsecret"})
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()
    scope = requests.post(url, files=files, headers=server.auth(credential))
    assert scope.status_code == 403 and "upload" in scope.json()["error"]
    # The worker remembers an authenticated client; a revocation by the CLI
    # (another process) must still end it from the next request on.
    for _ in range(5):
        assert requests.get(server.url("/api/minihost/download?id=x"), headers=server.auth(credential)).status_code == 404
    run_cli("client", "revoke", key, data=server.data)
    for _ in range(5):
        revoked = requests.get(server.url("/api/minihost/download?id=x"), headers=server.auth(credential))
        assert revoked.status_code == 401
    assert server.db("SELECT COUNT(*) FROM minihost_uploads") == [(0,)]


def test_foreign_and_unknown_ids_are_404(server):
    mine, theirs = server.client("mine"), server.client("theirs")
    upload_id = server.upload(mine, b"private").json()["uploadId"]
    for credential, id_ in [(theirs, upload_id), (mine, "0" * 32), (mine, "../../etc/passwd")]:
        r = requests.get(server.url("/api/minihost/download"), params={"id": id_}, headers=server.auth(credential))
        assert r.status_code == 404 and r.json()["error"]
    missing = requests.get(server.url("/api/minihost/download"), headers=server.auth(mine))
    assert missing.status_code == 400


def test_missing_file_part_is_400(server):
    credential = server.client()
    r = requests.post(server.url("/api/minihost/upload"), headers=server.auth(credential),
                      files={"other": ("a.txt", b"x")})
    assert r.status_code == 400 and "file" in r.json()["error"]
    # A multipart field named file without a filename is the file's content, as curl's -F 'file=<x' sends it.
    r = requests.post(server.url("/api/minihost/upload"), headers=server.auth(credential),
                      files={"file": (None, "not a file part?")})
    assert r.status_code == 200 and r.json()["size"] == len("not a file part?"), r.text
    assert r.json()["uploadFileName"] == "file"
    # A form body is not multipart at all.
    r = requests.post(server.url("/api/minihost/upload"), headers=server.auth(credential), data={"file": "x"})
    assert r.status_code == 400 and "multipart" in r.json()["error"]
    r = requests.post(server.url("/api/minihost/upload"), headers={**server.auth(credential), "Content-Type": "application/json"},
                      data="{}")
    assert r.status_code == 400


def test_oversized_bodies_are_413_and_leave_nothing(make_server):
    server = make_server({"MINIHOST_MAX_MB": "1"})
    credential = server.client()
    # Declared length over nginx's limit: nginx refuses before the worker sees it.
    r = server.upload(credential, os.urandom(3 * 1024 * 1024))
    assert r.status_code == 413 and "error" in r.json()
    # Within nginx's limit (max + framing room) but over the file limit: the worker refuses.
    r = server.upload(credential, os.urandom(1024 * 1024 + 1000))
    assert r.status_code == 413 and "error" in r.json()
    # Chunked, so no length is declared anywhere.
    def chunks():
        yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big\"\r\n\r\n"
        for _ in range(40):
            yield os.urandom(64 * 1024)
        yield b"\r\n--b--\r\n"
    r = requests.post(server.url("/api/minihost/upload"), data=chunks(),
                      headers={**server.auth(credential), "Content-Type": "multipart/form-data; boundary=b"})
    assert r.status_code == 413
    time.sleep(0.2)
    assert server.db("SELECT COUNT(*) FROM minihost_uploads") == [(0,)]
    assert server.blob_files() == [] and server.temp_files() == []
    # A chunked upload within the limit works.
    def small():
        yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"ok\"\r\n\r\n"
        yield b"hello"
        yield b"\r\n--b--\r\n"
    r = requests.post(server.url("/api/minihost/upload"), data=small(),
                      headers={**server.auth(credential), "Content-Type": "multipart/form-data; boundary=b"})
    assert r.status_code == 200 and r.json()["size"] == 5


def test_client_disconnect_mid_upload_leaves_no_row_and_no_temp_file(server):
    credential = server.client()
    head = (f"POST /api/minihost/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {credential}\r\n"
            f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 5000000\r\n\r\n").encode()
    part = b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cut.bin\"\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(head + part + os.urandom(1_000_000))
        time.sleep(0.5)
    deadline = time.time() + 10
    while time.time() < deadline and server.temp_files():
        time.sleep(0.1)
    assert server.temp_files() == []
    # Checked before any gc, which would remove an orphan and hide it.
    assert server.db("SELECT COUNT(*) FROM minihost_uploads") == [(0,)]
    assert server.blob_files() == []
    assert "removed 0 temporary file(s), 0 expired upload session(s), 0 unreferenced blob(s)" in \
        run_cli("gc", "--temporary-age", "0", data=server.data).stdout
    # The server is unharmed.
    assert server.upload(credential, b"after").status_code == 200


def raw_multipart_upload(server, credential, filename_bytes: bytes, content=b"payload"):
    body = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + filename_bytes
            + b"\"\r\nContent-Type: text/plain\r\n\r\n" + content + b"\r\n--b--\r\n")
    return requests.post(server.url("/api/minihost/upload"), data=body,
                         headers={**server.auth(credential), "Content-Type": "multipart/form-data; boundary=b"})


def test_hostile_file_names_become_safe_display_names(server):
    credential = server.client()
    cases = {
        b"../../../etc/passwd": "passwd",
        b"/": "file",
        b"..": "file",
        b"a\x01b\x7fc.txt": "abc.txt",
        b"\xff\xfeinvalid.txt": "\ufffd\ufffdinvalid.txt",
        ("x" * 1000 + ".txt").encode(): None,
        "r\u00e9sum\u00e9 \u20ac.pdf".encode(): "r\u00e9sum\u00e9 \u20ac.pdf",
    }
    before = set(p for p in server.data.rglob("*"))
    for raw, expected in cases.items():
        r = raw_multipart_upload(server, credential, raw, content=raw)
        assert r.status_code == 200, (raw, r.text)
        name = r.json()["uploadFileName"]
        assert "/" not in name and "\\" not in name and all(ord(c) >= 32 for c in name)
        if expected is None:
            assert len(name.encode()) <= 255 and name.endswith(".txt")
        else:
            assert name == expected
        d = requests.get(server.url(f"/api/minihost/download?id={r.json()['uploadId']}"), headers=server.auth(credential))
        assert d.status_code == 200 and d.content == raw
        assert "\r" not in d.headers["Content-Disposition"] and "filename*=UTF-8''" in d.headers["Content-Disposition"]
    # Nothing but blobs (by hash) and the database appeared in the data folder.
    added = set(p for p in server.data.rglob("*")) - before
    for path in added:
        rel = path.relative_to(server.data)
        assert rel.parts[0] in ("blobs", "nginx") or rel.name.startswith("minihost.sqlite"), rel
        if rel.parts[0] == "blobs" and path.is_file():
            assert len(path.name) == 64 and path.name == sha256(path.read_bytes())


def test_follow_up_metadata_and_errors(server):
    credential = server.client()
    url = server.url("/api/minihost/upload_follow_up")
    upload_id = server.upload(credential, b"meta").json()["uploadId"]
    r = requests.post(url, headers=server.auth(credential), json={"uploadId": upload_id, "app_payload": {"build": 42, "channel": "stable"}})
    assert r.status_code == 200 and r.json()["appPayload"] == {"build": 42, "channel": "stable"}
    r = requests.post(url, headers=server.auth(credential), json={"upload_id": upload_id, "appPayload": {"build": 43}, "extra": [1, 2],
                                                                  "app_handled_at": "2026-04-17T12:00:00.000Z"})
    assert r.status_code == 200
    assert r.json()["appPayload"] == {"build": 43, "channel": "stable", "extra": [1, 2]}
    assert r.json()["appHandledAt"] == "2026-04-17T12:00:00.000Z"
    stored = server.db("SELECT app_payload FROM minihost_uploads WHERE id = ?", upload_id)[0][0]
    assert json.loads(stored)["extra"] == [1, 2]
    for bad in [b"{not json", b"[]", b'"string"', b""]:
        r = requests.post(url, headers={**server.auth(credential), "Content-Type": "application/json"}, data=bad)
        assert r.status_code == 400 and "error" in r.json(), bad
    for body in [{"uploadId": upload_id}, {"app_payload": {"a": 1}}, {"uploadId": upload_id, "app_handled_at": "not a date"},
                 {"uploadId": upload_id, "appHandledAt": 12345}, {"uploadId": upload_id, "app_payload": [1]}]:
        r = requests.post(url, headers=server.auth(credential), json=body)
        assert r.status_code == 400, body
    r = requests.post(url, headers=server.auth(credential), json={"uploadId": "f" * 32, "app_payload": {"a": 1}})
    assert r.status_code == 404
    # The stored payload survived every bad request.
    assert json.loads(server.db("SELECT app_payload FROM minihost_uploads WHERE id = ?", upload_id)[0][0])["build"] == 43


def test_purge_and_purge_for_replacement(server):
    credential = server.client()
    url = server.url("/api/minihost/upload_follow_up")
    first = server.upload(credential, b"one").json()["uploadId"]
    r = requests.post(url, headers=server.auth(credential), json={"uploadId": first, "app_payload": {"_PURGE": True}})
    assert r.status_code == 200 and r.json()["purged"] is True
    assert requests.get(server.url(f"/api/minihost/download?id={first}"), headers=server.auth(credential)).status_code == 404
    assert server.blob_files() == []
    old = server.upload(credential, b"old").json()["uploadId"]
    new = server.upload(credential, b"new").json()["uploadId"]
    r = requests.post(url, headers=server.auth(credential), json={"uploadId": new, "app_payload": {"v": 2}, "_PURGE_FOR_REPLACEMENT": old})
    assert r.status_code == 200 and r.json()["appPayload"] == {"v": 2}
    assert server.db("SELECT state FROM minihost_uploads WHERE id = ?", old) == [("purged",)]
    r = requests.post(url, headers=server.auth(credential), json={"uploadId": new, "app_payload": {"v": 3}, "_PURGE_FOR_REPLACEMENT": "0" * 32})
    assert r.status_code == 404
    assert json.loads(server.db("SELECT app_payload FROM minihost_uploads WHERE id = ?", new)[0][0]) == {"v": 2}


def test_publish_and_public_cache_urls(make_server):
    server = make_server({"MINIHOST_PUBLIC_ORIGIN": "https://files.example.com/"})
    credential = server.client()
    data = os.urandom(5000)
    upload_id = server.upload(credential, data, name="pic.png", content_type="image/png").json()["uploadId"]
    for path in [f"/minihost/cache/{upload_id}", f"/api/minihost/cache/{upload_id}"]:
        assert requests.get(server.url(path)).status_code == 404
    url = server.url("/api/minihost/publishing_upload")
    r = requests.post(url, headers=server.auth(credential), json={"upload_id": upload_id})
    assert r.status_code == 200 and r.json()["cache_url"] == f"https://files.example.com/minihost/cache/{upload_id}"
    for path in [f"/minihost/cache/{upload_id}", f"/api/minihost/cache/{upload_id}"]:
        c = requests.get(server.url(path))
        assert c.status_code == 200 and c.content == data
        assert c.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert c.headers["Content-Disposition"].startswith("inline;")
        assert c.headers["Content-Type"] == "image/png" and c.headers.get("ETag")
    assert requests.post(url, headers=server.auth(credential), json={"upload_id": upload_id, "status": "nope"}).status_code == 400
    assert requests.post(url, headers=server.auth(credential), json={}).status_code == 400
    assert requests.post(url, headers=server.auth(credential), json={"upload_id": "0" * 32}).status_code == 404
    r = requests.post(url, headers=server.auth(credential), json={"upload_id": upload_id, "status": "unpublished"})
    assert r.status_code == 200 and "cache_url" not in r.json()
    assert requests.get(server.url(f"/minihost/cache/{upload_id}")).status_code == 404
    no_publish = server.client("nopub", scopes="upload")
    assert requests.post(url, headers=server.auth(no_publish), json={"upload_id": upload_id}).status_code == 403


def test_cache_url_follows_the_request_host_without_configuration(server):
    credential = server.client()
    upload_id = server.upload(credential, b"x").json()["uploadId"]
    r = requests.post(server.url("/api/minihost/publishing_upload"), headers={**server.auth(credential), "Host": "cdn.test"},
                      json={"upload_id": upload_id, "status": "published"})
    assert r.json()["cache_url"] == f"http://cdn.test/minihost/cache/{upload_id}"


def test_operator_login_download_and_purge_unhandled(server):
    run_cli("admin", "create", "operator", "--password-stdin", data=server.data, stdin="correct horse battery\n")
    credential = server.client()
    data = os.urandom(1234).hex().encode()
    upload_id = server.upload(credential, data, name="notes.txt", content_type="text/plain").json()["uploadId"]
    handled = server.upload(credential, b"handled").json()["uploadId"]
    requests.post(server.url("/api/minihost/upload_follow_up"), headers=server.auth(credential),
                  json={"uploadId": handled, "app_handled_at": "2026-01-01T00:00:00Z"}).raise_for_status()
    login = server.url("/api/minihost/admin-login")
    assert requests.post(login, json={"username": "operator", "password": "wrong"}).status_code == 401
    assert requests.post(login, json={"username": "nobody", "password": "wrong"}).status_code == 401
    assert requests.post(login, data="nonsense").status_code == 400
    session = requests.Session()
    r = session.post(login, json={"username": "operator", "password": "correct horse battery"})
    assert r.status_code == 200 and r.json() == {"ok": True}
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert requests.get(server.url(f"/minihost/dashboard/admin-download?id={upload_id}")).status_code == 401
    redirect = session.get(server.url(f"/api/minihost/admin-download?id={upload_id}&inline=1"), allow_redirects=False)
    assert redirect.status_code == 307
    assert redirect.headers["Location"] == f"/minihost/dashboard/admin-download?id={upload_id}&inline=1"
    followed = session.get(server.url(f"/api/minihost/admin-download?id={upload_id}&inline=1"))
    assert followed.status_code == 200 and followed.content == data
    assert followed.headers["Content-Disposition"].startswith("inline;")
    assert followed.headers["X-Content-Type-Options"] == "nosniff"
    assert followed.headers["Content-Security-Policy"] == "sandbox"
    purge = session.post(server.url("/api/minihost/admin-purge-unhandled"), json={"olderThanHours": 0})
    assert purge.status_code == 200
    body = purge.json()
    assert body["purgedCount"] == 1 and body["candidateCount"] == 1 and body["cutoff"].endswith("Z")
    assert server.db("SELECT state FROM minihost_uploads WHERE id = ?", handled) == [("ready",)]
    assert session.post(server.url("/api/minihost/admin-logout")).status_code == 200
    assert session.post(server.url("/api/minihost/admin-purge-unhandled")).status_code == 401
    actions = {row[0] for row in server.db("SELECT action FROM minihost_audit_log")}
    assert {"upload", "admin_login", "admin_download", "admin_purge_unhandled", "admin_logout"} <= actions


def test_options_preflight_and_cors_on_every_api_route(make_server):
    server = make_server({"MINIHOST_CORS_ORIGINS": "https://app.example"})
    routes = ["/api/minihost/upload", "/api/minihost/download", "/api/minihost/upload_follow_up",
              "/api/minihost/publishing_upload", "/api/minihost/cache/" + "0" * 32, "/api/minihost/admin-login",
              "/api/minihost/admin-logout", "/api/minihost/admin-download", "/api/minihost/admin-purge-unhandled",
              "/api/health"]
    for route in routes:
        r = requests.options(server.url(route), headers={"Origin": "https://app.example",
                                                          "Access-Control-Request-Method": "POST"})
        assert r.status_code == 204, route
        assert r.headers["Access-Control-Allow-Origin"] == "https://app.example", route
    r = requests.options(server.url("/api/minihost/upload"), headers={"Origin": "https://evil.example"})
    assert r.status_code == 204 and "Access-Control-Allow-Origin" not in r.headers
    r = requests.get(server.url("/api/health"), headers={"Origin": "http://localhost:3000"})
    assert r.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"


def test_audit_echo(make_server):
    server = make_server({"MINIHOST_AUDIT_ECHO": "1"})
    credential = server.client()
    r = server.upload(credential, b"audited")
    assert r.headers["X-Minihost-Audit"] == "recorded"
    r = requests.post(server.url("/api/minihost/upload_follow_up"), headers=server.auth(credential),
                      json={"uploadId": "0" * 32, "app_payload": {"a": 1}})
    assert r.status_code == 404 and r.headers["X-Minihost-Audit"] == "recorded"
    assert server.db("SELECT action, status FROM minihost_audit_log ORDER BY id") == [("upload", 200), ("follow_up", 404)]


def test_32_concurrent_uploaders_and_follow_ups(server):
    credential = server.client()
    shared = server.upload(credential, b"shared").json()["uploadId"]
    blobs = [os.urandom(50_000 + i) for i in range(32)]

    def work(i):
        up = server.upload(credential, blobs[i], name=f"f{i}.bin")
        fu = requests.post(server.url("/api/minihost/upload_follow_up"), headers=server.auth(credential),
                           json={"uploadId": shared, "app_payload": {f"k{i}": i}}, timeout=60)
        return up, fu

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(work, range(32)))
    assert all(up.status_code == 200 and fu.status_code == 200 for up, fu in results), \
        [(up.status_code, fu.status_code, up.text[:100]) for up, fu in results]
    payload = json.loads(server.db("SELECT app_payload FROM minihost_uploads WHERE id = ?", shared)[0][0])
    assert payload == {f"k{i}": i for i in range(32)}
    for i, (up, _) in enumerate(results):
        d = requests.get(server.url(up.json()["downloadPath"]), headers=server.auth(credential))
        assert sha256(d.content) == sha256(blobs[i])


def test_unknown_paths_and_methods(server):
    r = requests.get(server.url("/nothing/here"))
    assert r.status_code == 404 and r.json()["error"]
    r = requests.get(server.url("/api/minihost/upload"))
    assert r.status_code == 405 and "POST" in r.headers["Allow"]
    r = requests.get(server.url("/_blobs/aa/bb/whatever"))
    assert r.status_code == 404


def test_operator_sessions_expire_and_end_with_a_new_password(make_server):
    server = make_server({"MINIHOST_OPERATOR_SESSION_HOURS": "0.001"})  # 3.6 s
    run_cli("admin", "create", "operator", "--password-stdin", data=server.data, stdin="first operator password\n")
    login = server.url("/api/minihost/admin-login")
    purge = server.url("/api/minihost/admin-purge-unhandled")
    session = requests.Session()
    r = session.post(login, json={"username": "operator", "password": "first operator password"})
    assert r.status_code == 200 and "Max-Age=3;" in r.headers["Set-Cookie"]
    cookie = r.cookies["minihost_admin"]
    assert session.post(purge).status_code == 200
    time.sleep(4)
    # Sent by hand: the browser would have dropped it after Max-Age, the server must refuse it too.
    assert requests.post(purge, cookies={"minihost_admin": cookie}).status_code == 401
    # A new password ends the sessions signed in with the old one.
    r = requests.post(login, json={"username": "operator", "password": "first operator password"})
    fresh = r.cookies["minihost_admin"]
    assert requests.post(purge, cookies={"minihost_admin": fresh}).status_code == 200
    run_cli("admin", "create", "operator", "--password-stdin", data=server.data, stdin="second operator password\n")
    assert requests.post(purge, cookies={"minihost_admin": fresh}).status_code == 401
    assert requests.post(login, json={"username": "operator", "password": "first operator password"}).status_code == 401
    assert requests.post(login, json={"username": "operator", "password": "second operator password"}).status_code == 200
