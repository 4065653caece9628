"""Public files answered by nginx itself from the public tree: the same
answers a worker gives, header for header, while every worker is stopped;
and an unpublish or purge that nothing serves afterwards, not after a
restart, not after a crash."""

import os
import re
import signal
import threading
import time
from contextlib import contextmanager

import requests

from conftest import free_port, run_cli
from test_hardening import basic_upload, links, make_user

FAST_INDEX = {"MINIHOST_PUBLIC_INDEX_SECONDS": "0.2"}


@contextmanager
def workers_stopped(server):
    """Every worker process frozen: only nginx can answer."""
    pids = server.worker_pids()
    assert pids
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def wait_static(server, urls, timeout=20):
    """Until nginx answers every url from the public tree. Checked with the
    workers frozen a moment at a time: they write the index nginx needs."""
    deadline = time.time() + timeout
    pending = list(urls)
    while pending and time.time() < deadline:
        with workers_stopped(server):
            try:
                while pending and requests.get(pending[0], timeout=0.3).status_code == 200:
                    pending.pop(0)
            except requests.RequestException:
                pass
        time.sleep(0.2)
    assert not pending, f"nginx did not answer {pending[0]} itself within {timeout} s:\n{server.output()}"


def linked(server, upload_id):
    """The public tree's links for `upload_id` (`<id>.<type key>`)."""
    return list((server.data / "public" / "cache").glob(upload_id + ".*"))


def type_key(content_type):
    """The public tree's extension for a stored Content-Type (FNV-1a, 64 bits)."""
    value = 0xcbf29ce484222325
    for byte in content_type.encode():
        value = ((value ^ byte) * 0x100000001b3) % (1 << 64)
    return f"t{value:016x}"


def publish(server, credential, data, name, content_type, status="published"):
    upload_id = server.upload(credential, data, name=name, content_type=content_type).json()["uploadId"]
    r = requests.post(server.url("/api/minihost/publishing_upload"), headers=server.auth(credential),
                      json={"upload_id": upload_id, "status": status})
    assert r.status_code == 200, r.text
    return upload_id


def answer(url, method="GET", headers=None):
    """Status, headers (without Date, a request id's value; a multipart
    boundary made neutral) and body."""
    try:
        r = requests.request(method, url, headers=headers or {}, timeout=5, allow_redirects=False)
    except requests.RequestException as error:
        raise AssertionError(f"{method} {url} {headers}: {error}") from None
    boundary = re.search(r"boundary=(\S+)", r.headers.get("Content-Type", ""))
    body = r.content
    fields = sorted((name.lower(), "ID" if name.lower() == "x-request-id" else value)
                    for name, value in r.headers.items() if name.lower() != "date")
    if boundary:
        body = body.replace(boundary.group(1).encode(), b"BOUNDARY")
        fields = [(n, v.replace(boundary.group(1), "BOUNDARY")) for n, v in fields]
    return r.status_code, fields, body


def variants(url):
    first = requests.get(url, timeout=5)
    assert first.status_code == 200, (url, first.status_code)
    return [
        ("GET", {}), ("HEAD", {}), ("GET", {"Range": "bytes=2-5"}), ("GET", {"Range": "bytes=-3"}),
        ("GET", {"Range": "bytes=0-1,4-6"}), ("GET", {"Range": "bytes=900000-"}),
        ("GET", {"If-None-Match": first.headers["ETag"]}), ("GET", {"If-Modified-Since": first.headers["Last-Modified"]}),
        ("GET", {"If-Range": first.headers["ETag"], "Range": "bytes=1-2"}),
        ("GET", {"If-Range": '"stale"', "Range": "bytes=1-2"}), ("GET", {"If-Match": '"other"'}),
        ("GET", {"If-Unmodified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}), ("GET", {"Range": "bytes=abc"}),
        ("GET", {"Origin": "http://evil.example"}), ("POST", {}), ("DELETE", {}), ("OPTIONS", {}),
    ]


def test_nginx_answers_public_files_itself_header_for_header(make_server, tmp_path):
    content_origin = f"http://127.0.0.1:{free_port()}"
    env = {"MINIHOST_CONTENT_ORIGIN": content_origin}
    # The index is written once at start (empty) and not again: workers answer everything.
    server = make_server({**env, "MINIHOST_PUBLIC_INDEX_SECONDS": "3600"}, data=tmp_path / "data")
    credential = server.client()
    files = [
        (b"plain words, some more of them\n", 'notes "draft" \\ v2 \u00fc.txt', "text/plain; charset=utf-8"),
        (b"<script>alert(1)</script>", "page.html", "text/html"),
        (b"\x89PNG\r\n\x1a\n" + os.urandom(3000), "pic.png", "image/png"),
        (os.urandom(1 << 20), "big.bin", "application/octet-stream"),
        (b"a;b{c}d", "semi;colon{brace}.txt", "text/plain"),
    ]
    paths = []
    for data, name, content_type in files:
        upload_id = publish(server, credential, data, name, content_type)
        paths += [f"/minihost/cache/{upload_id}", f"/api/minihost/cache/{upload_id}"]
    make_user(server)
    for data, name, content_type in [(b"%PDF-1.4 tiny", "report.pdf", "application/pdf"), (b"<svg/>", "x.svg", "image/svg+xml")]:
        answer_links = links(basic_upload(server, data, name=name, content_type=content_type).text)
        raw = answer_links["Raw"].removeprefix(content_origin)
        bare = raw.split(".")[0]
        # With the extension the links carry, without it, and with another one.
        paths += [raw, bare, bare + ".jpg", answer_links["Download"].removeprefix(content_origin)]
    def urls(server):
        return [(origin, path) for origin in (server.base, content_origin) for path in paths]

    def answers(server, methods, skip=()):
        return {key: answer(origin + path, method, headers)
                for origin, path in urls(server) for method, headers in variants(origin + path)
                for key in [(origin != server.base, path, method, str(headers))] if method in methods and key not in skip}

    everything = {"GET", "HEAD", "POST", "DELETE", "OPTIONS"}
    by_worker = answers(server, everything)
    worker_only = {key for key in by_worker if key[2] not in ("GET", "HEAD")}
    assert server.stop() == 0

    # Restarted with a live index: nginx reloads once the workers write it,
    # then answers GET and HEAD alone, exactly as the workers did.
    server = make_server({**env, **FAST_INDEX}, data=tmp_path / "data")
    wait_static(server, [origin + path for origin, path in urls(server)])
    with workers_stopped(server):
        by_nginx = answers(server, {"GET", "HEAD"}, skip=worker_only)
    # The one difference: nginx's own 416 page (an unsatisfiable or malformed
    # Range) names the stored type's charset when a worker's header gave it one.
    for key, (status, fields, body) in by_worker.items():
        if status == 416:
            by_worker[key] = (status, [(n, "text/html" if n == "content-type" else v) for n, v in fields], body)
    differing = [(key, by_worker[key], value) for key, value in by_nginx.items() if by_worker[key] != value]
    assert not differing, "\n".join(f"{key}:\n  worker {w[:2]}\n  nginx  {n[:2]}" for key, w, n in differing[:6])
    # Other methods still reach a worker, which answers as before.
    assert answers(server, everything) == by_worker


def hammer(url, stop, seen):
    """GETs `url` until `stop`; records (sent, status) for each."""
    session = requests.Session()
    while not stop.is_set():
        sent = time.monotonic()
        try:
            seen.append((sent, session.get(url, timeout=5).status_code))
        except requests.RequestException:
            seen.append((sent, None))


def test_an_acknowledged_unpublish_or_purge_is_never_served_again(make_server):
    server = make_server(FAST_INDEX)
    credential = server.client()
    unpublished = publish(server, credential, b"soon unpublished", "a.txt", "text/plain")
    purged = publish(server, credential, b"soon purged", "b.txt", "text/plain")
    urls = {upload_id: server.url(f"/minihost/cache/{upload_id}") for upload_id in (unpublished, purged)}
    wait_static(server, urls.values())

    for upload_id, act in [
        (unpublished, lambda: requests.post(server.url("/api/minihost/publishing_upload"), headers=server.auth(credential),
                                            json={"upload_id": unpublished, "status": "unpublished"})),
        (purged, lambda: requests.post(server.url("/api/minihost/upload_follow_up"), headers=server.auth(credential),
                                       json={"uploadId": purged, "app_payload": {"_PURGE": True}})),
    ]:
        stop, seen = threading.Event(), []
        threads = [threading.Thread(target=hammer, args=(urls[upload_id], stop, seen)) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        assert act().status_code == 200
        acknowledged = time.monotonic()
        time.sleep(0.5)
        stop.set()
        for thread in threads:
            thread.join()
        before = [status for sent, status in seen if sent < acknowledged]
        after = [status for sent, status in seen if sent > acknowledged]
        assert before.count(200) > 10, before[:20]
        # At once: every request sent after the answer is refused.
        assert after and set(after) == {404}, sorted(set(after), key=str)
        assert linked(server, upload_id) == []


def test_restart_and_crash_mid_unpublish_never_serve_an_unpublished_file(make_server, tmp_path):
    flag = tmp_path / "crash-once"
    env = {**FAST_INDEX, "MINIHOST_TEST_CRASH_POINT": f"unpublish-before-commit@{flag}"}
    server = make_server(env, data=tmp_path / "data")
    credential = server.client()
    stays = publish(server, credential, b"stays published", "a.txt", "text/plain")
    goes = publish(server, credential, b"will be unpublished", "b.txt", "text/plain")
    url = {upload_id: server.url(f"/minihost/cache/{upload_id}") for upload_id in (stays, goes)}
    wait_static(server, url.values())

    # A worker dies after removing the link and before the commit: the
    # unpublish is not acknowledged, the file stays published and served.
    flag.write_text("")
    r = requests.post(server.url("/api/minihost/publishing_upload"), headers=server.auth(credential),
                      json={"upload_id": stays, "status": "unpublished"})
    assert r.status_code == 503
    assert server.db("SELECT status FROM minihost_uploads_publish WHERE upload_id = ?", stays) == [("published",)]
    server.wait_healthy()
    assert requests.get(url[stays]).status_code == 200  # the restarted worker put the link back
    assert linked(server, stays)

    r = requests.post(server.url("/api/minihost/publishing_upload"), headers=server.auth(credential),
                      json={"upload_id": goes, "status": "unpublished"})
    assert r.status_code == 200
    assert server.stop() == 0
    # A link back from the dead (as a lost directory update would leave) and
    # an index that still lists the file: the restart removes the link before
    # nginx serves anything.
    blob = server.db("SELECT blob FROM minihost_uploads WHERE id = ?", goes)[0][0]
    os.link(server.data / "blobs" / blob[:2] / blob[2:4] / blob,
            server.data / "public" / "cache" / f"{goes}.{type_key('text/plain')}")
    server = make_server(env, data=tmp_path / "data")
    assert requests.get(server.url(f"/minihost/cache/{goes}")).status_code == 404
    assert linked(server, goes) == []
    assert requests.get(server.url(f"/minihost/cache/{stays}")).status_code == 200
    assert "repaired 0 public link(s)" in run_cli("gc", data=server.data).stdout
