"""tus 1.0.0 at /api/tus, through real nginx: with the tuspy client library
(resume after an interrupted upload included) and by hand for each status."""
import base64
import hashlib
import os
import socket
import threading
import time

import requests
from conftest import run_cli
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError

TUS = {"Tus-Resumable": "1.0.0"}


def headers(server, credential, **extra):
    return {**TUS, **server.auth(credential), **{k.replace("_", "-"): v for k, v in extra.items()}}


def create(server, credential, length=None, **extra):
    fields = {"Upload-Length": str(length)} if length is not None else {}
    r = requests.post(server.url("/api/tus"), headers={**headers(server, credential), **fields, **extra})
    assert r.status_code == 201, r.text
    return r.headers["Location"]


def patch(url, server, credential, data, offset, **extra):
    return requests.patch(url, data=data, headers={**headers(server, credential), "Content-Type":
                                                    "application/offset+octet-stream", "Upload-Offset": str(offset), **extra})


def metadata(**values):
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def test_tuspy_uploads_and_the_upload_is_a_minihost_upload(server, tmp_path):
    credential = server.client()
    data = os.urandom(3 * 1024 * 1024 + 123)
    path = tmp_path / "report.pdf"
    path.write_bytes(data)
    client = tus_client.TusClient(server.url("/api/tus"), headers=server.auth(credential))
    uploader = client.uploader(str(path), chunk_size=1024 * 1024, metadata={"filename": "report.pdf",
                                                                          "filetype": "application/pdf"},
                               upload_checksum=True)
    uploader.upload()
    upload_id = uploader.url.rsplit("/", 1)[1]
    assert uploader.url == server.url(f"/api/tus/{upload_id}")
    download = requests.get(server.url(f"/api/minihost/download?id={upload_id}"), headers=server.auth(credential))
    assert download.status_code == 200 and download.content == data
    assert 'filename="report.pdf"' in download.headers["Content-Disposition"]
    assert download.headers["Content-Type"].startswith("application/pdf")
    head = requests.head(uploader.url, headers=headers(server, credential))
    assert head.status_code == 200 and head.headers["Upload-Offset"] == str(len(data))
    assert head.headers["Upload-Length"] == str(len(data)) and head.headers["Cache-Control"] == "no-store"
    assert head.headers["Tus-Resumable"] == "1.0.0" and "filename" in head.headers["Upload-Metadata"]
    # Usable like any upload: publish it.
    published = requests.post(server.url("/api/minihost/publishing_upload"), headers=server.auth(credential),
                              json={"uploadId": upload_id, "published": True})
    assert published.status_code == 200, published.text
    assert server.db("SELECT sha256 FROM minihost_uploads WHERE id = ?", upload_id) == [(hashlib.sha256(data).hexdigest(),)]
    assert not (server.data / "sessions" / upload_id / "data").exists()


class CuttingProxy:
    """Forwards connections to `port`, cutting each after `limit` bytes of
    the request (or, with `responses=True`, of the answer); only the first
    `times` connections are cut, and none when `limit` is None. With `rate`
    (bytes/s) that side is sent on no faster, so a transfer can be watched."""

    def __init__(self, port, limit, responses=False, times=None, rate=None):
        self.port, self.limit, self.responses, self.times, self.rate = port, limit, responses, times, rate
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = self.listener.getsockname()
        self.cuts = 0
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.relay, args=(downstream,), daemon=True).start()

    def relay(self, downstream):
        upstream = socket.create_connection(("127.0.0.1", self.port))
        cutting = self.limit is not None and (self.times is None or self.cuts < self.times)
        source, target = (upstream, downstream) if self.responses else (downstream, upstream)

        def close_both():
            # shutdown, not just close: the other thread's recv keeps the socket open otherwise.
            for connection in (upstream, downstream):
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                connection.close()

        def plain(src, dst):
            try:
                while block := src.recv(65536):
                    dst.sendall(block)
            except OSError:
                pass
            finally:
                close_both()

        threading.Thread(target=plain, args=(target, source), daemon=True).start()
        sent = 0
        try:
            while block := source.recv(65536):
                if cutting and sent + len(block) > self.limit:
                    target.sendall(block[: self.limit - sent])
                    self.cuts += 1
                    time.sleep(0.5)  # let the bytes arrive before the cut
                    break
                target.sendall(block)
                sent += len(block)
                if self.rate:
                    time.sleep(len(block) / self.rate)
        except OSError:
            pass
        finally:
            close_both()

    def url(self, path):
        return f"http://{self.address[0]}:{self.address[1]}{path}"

    def close(self):
        self.listener.close()


def test_a_cut_patch_keeps_what_arrived_and_tuspy_resumes(server, tmp_path):
    credential = server.client()
    data = os.urandom(6 * 1024 * 1024)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    proxy = CuttingProxy(server.port, 2 * 1024 * 1024)
    try:
        client = tus_client.TusClient(proxy.url("/api/tus"), headers=server.auth(credential))
        uploader = client.uploader(str(path))  # one PATCH with the whole file, as tuspy sends by default
        try:
            uploader.upload()
            raise AssertionError("the proxy should have cut the upload")
        except (TusCommunicationError, requests.RequestException):
            pass
        url = server.url("/api/tus/" + uploader.url.rsplit("/", 1)[1])
        # The bytes that reached the worker were fsync'd and acknowledged.
        offset = 0
        for _ in range(50):
            offset = int(requests.head(url, headers=headers(server, credential)).headers["Upload-Offset"])
            if offset > 0:
                break
            time.sleep(0.1)
        assert 0 < offset < len(data), offset
    finally:
        proxy.close()
    # tuspy resumes the same upload from the server's offset.
    resumed = tus_client.TusClient(server.url("/api/tus"), headers=server.auth(credential)).uploader(str(path), url=url)
    assert resumed.get_offset() == offset
    resumed.upload()
    upload_id = url.rsplit("/", 1)[1]
    got = requests.get(server.url(f"/api/minihost/download?id={upload_id}"), headers=server.auth(credential)).content
    assert got == data


def test_each_status_of_the_protocol(server):
    credential = server.client()
    other = server.client("other")
    options = requests.options(server.url("/api/tus"))
    assert options.status_code == 204 and options.headers["Tus-Version"] == "1.0.0"
    assert set(options.headers["Tus-Extension"].split(",")) == {
        "creation", "creation-with-upload", "creation-defer-length", "expiration", "checksum", "termination",
        "concatenation"}
    assert options.headers["Tus-Checksum-Algorithm"] == "sha1,md5,sha256" and int(options.headers["Tus-Max-Size"]) > 0
    max_size = int(options.headers["Tus-Max-Size"])

    # 412 without Tus-Resumable (and Tus-Version says what is spoken); 401 without credentials.
    r = requests.post(server.url("/api/tus"), headers={**server.auth(credential), "Upload-Length": "10"})
    assert r.status_code == 412 and r.headers["Tus-Version"] == "1.0.0" and r.headers["Tus-Resumable"] == "1.0.0"
    assert requests.post(server.url("/api/tus"), headers={**TUS, "Upload-Length": "10"}).status_code == 401
    # Creation: 400 without a length, 413 past Tus-Max-Size, 400 for bad metadata.
    assert requests.post(server.url("/api/tus"), headers=headers(server, credential)).status_code == 400
    r = requests.post(server.url("/api/tus"), headers={**headers(server, credential), "Upload-Length": str(max_size + 1)})
    assert r.status_code == 413
    # Negative, huge or non-numeric lengths and offsets are 400, never wrapped or truncated.
    for value in ["-1", "99999999999999999999", "1e3", "+5", "0x10"]:
        r = requests.post(server.url("/api/tus"), headers={**headers(server, credential), "Upload-Length": value})
        assert r.status_code == 400, value
    for bad in ["key %%%", "a b c", "a x,a y"]:
        r = requests.post(server.url("/api/tus"), headers={**headers(server, credential), "Upload-Length": "5",
                                                           "Upload-Metadata": bad})
        assert r.status_code == 400, bad

    url = create(server, credential, 10, **{"Upload-Metadata": metadata(filename="a.txt")})
    head = requests.head(url, headers=headers(server, credential))
    assert head.headers["Upload-Offset"] == "0" and head.headers["Upload-Length"] == "10"
    assert "Upload-Expires" in head.headers and head.headers["Upload-Metadata"] == metadata(filename="a.txt")
    # Another client's upload is not there.
    assert requests.head(url, headers=headers(server, other)).status_code == 404
    assert patch(url, server, other, b"hello", 0).status_code == 404
    # Neither a stranger nor an unknown id gets a session folder made for it.
    unknown = server.url("/api/tus/" + "ab" * 16)
    assert patch(unknown, server, credential, b"hello", 0).status_code == 404
    assert not (server.data / "sessions" / ("ab" * 16)).exists()
    # 415 for the wrong content type, 409 for the wrong offset, 400 for a missing one.
    assert requests.patch(url, data=b"hello", headers={**headers(server, credential), "Upload-Offset": "0",
                                                        "Content-Type": "text/plain"}).status_code == 415
    r = patch(url, server, credential, b"hello", 3)
    assert r.status_code == 409 and r.headers["Tus-Resumable"] == "1.0.0"
    assert requests.patch(url, data=b"x", headers={**headers(server, credential),
                                                    "Content-Type": "application/offset+octet-stream"}).status_code == 400
    for value in ["-5", "18446744073709551616", "abc"]:
        assert patch(url, server, credential, b"x", value).status_code == 400, value
    # Checksums: 460 on mismatch with nothing appended, 400 for an unknown algorithm.
    wrong = base64.b64encode(hashlib.sha1(b"other").digest()).decode()
    assert patch(url, server, credential, b"hello", 0, **{"Upload-Checksum": f"sha1 {wrong}"}).status_code == 460
    assert requests.head(url, headers=headers(server, credential)).headers["Upload-Offset"] == "0"
    assert patch(url, server, credential, b"hello", 0, **{"Upload-Checksum": "crc32 AAAA"}).status_code == 400
    right = base64.b64encode(hashlib.md5(b"hello").digest()).decode()
    r = patch(url, server, credential, b"hello", 0, **{"Upload-Checksum": f"md5 {right}"})
    assert r.status_code == 204 and r.headers["Upload-Offset"] == "5" and "Upload-Expires" in r.headers
    # Once the upload has its folder, a stranger is still refused under the lock, nothing written.
    assert patch(url, server, other, b"xxxxx", 5).status_code == 404
    assert requests.head(url, headers=headers(server, credential)).headers["Upload-Offset"] == "5"
    # The bytes went into the session file in place, where finishing will find them.
    session = server.data / "sessions" / url.rsplit("/", 1)[1]
    assert (session / "data").read_bytes()[:5] == b"hello" and not list(session.glob("*.chunk"))
    # More than the length leaves: 413, nothing kept.
    assert patch(url, server, credential, b"123456", 5).status_code == 413
    right = base64.b64encode(hashlib.sha256(b"world").digest()).decode()
    r = patch(url, server, credential, b"world", 5, **{"Upload-Checksum": f"sha256 {right}"})
    assert r.status_code == 204 and r.headers["Upload-Offset"] == "10" and "Upload-Expires" not in r.headers
    upload_id = url.rsplit("/", 1)[1]
    got = requests.get(server.url(f"/api/minihost/download?id={upload_id}"), headers=server.auth(credential))
    assert got.content == b"helloworld" and 'filename="a.txt"' in got.headers["Content-Disposition"]
    # Finished: a PATCH at the end changes nothing; elsewhere it conflicts.
    assert patch(url, server, credential, b"", 10).status_code == 204
    assert patch(url, server, credential, b"more", 10).status_code == 413
    assert patch(url, server, credential, b"x", 5).status_code == 409

    # Termination: 204, then 404, for the upload and its bytes.
    assert requests.delete(url, headers=headers(server, credential)).status_code == 204
    assert requests.head(url, headers=headers(server, credential)).status_code == 404
    assert requests.get(server.url(f"/api/minihost/download?id={upload_id}"), headers=server.auth(credential)).status_code == 404
    open_url = create(server, credential, 100)
    assert patch(open_url, server, credential, b"x" * 10, 0).status_code == 204
    assert requests.delete(open_url, headers=headers(server, credential)).status_code == 204
    assert patch(open_url, server, credential, b"x", 10).status_code == 404
    assert not (server.data / "sessions" / open_url.rsplit("/", 1)[1] / "data").exists()


def test_deferred_length_creation_with_upload_and_an_empty_upload(server):
    credential = server.client()
    url = create(server, credential, **{"Upload-Defer-Length": "1"})
    head = requests.head(url, headers=headers(server, credential))
    assert head.headers["Upload-Defer-Length"] == "1" and "Upload-Length" not in head.headers
    assert patch(url, server, credential, b"abc", 0).headers["Upload-Offset"] == "3"
    assert patch(url, server, credential, b"def", 3, **{"Upload-Length": "2"}).status_code == 400  # below the offset
    r = patch(url, server, credential, b"def", 3, **{"Upload-Length": "6"})
    assert r.status_code == 204 and r.headers["Upload-Offset"] == "6"
    upload_id = url.rsplit("/", 1)[1]
    assert requests.get(server.url(f"/api/minihost/download?id={upload_id}"), headers=server.auth(credential)).content == b"abcdef"
    # The length may also come with an empty PATCH after the last bytes, which finishes the upload.
    late = create(server, credential, **{"Upload-Defer-Length": "1"})
    assert patch(late, server, credential, b"xyz", 0).headers["Upload-Offset"] == "3"
    assert patch(late, server, credential, b"", 3, **{"Upload-Length": "3"}).status_code == 204
    late_id = late.rsplit("/", 1)[1]
    assert requests.get(server.url(f"/api/minihost/download?id={late_id}"), headers=server.auth(credential)).content == b"xyz"

    # creation-with-upload: the body of the POST is the first PATCH.
    r = requests.post(server.url("/api/tus"), data=b"0123456789", headers={
        **headers(server, credential), "Upload-Length": "20", "Content-Type": "application/offset+octet-stream"})
    assert r.status_code == 201 and r.headers["Upload-Offset"] == "10"
    assert patch(r.headers["Location"], server, credential, b"abcdefghij", 10).headers["Upload-Offset"] == "20"

    # Upload-Length: 0 is finished at once.
    empty = create(server, credential, 0)
    assert requests.head(empty, headers=headers(server, credential)).headers["Upload-Offset"] == "0"
    empty_id = empty.rsplit("/", 1)[1]
    assert requests.get(server.url(f"/api/minihost/download?id={empty_id}"), headers=server.auth(credential)).content == b""


def test_concatenation_joins_partial_uploads_and_a_final_refuses_patch(server):
    credential = server.client()
    other = server.client("other")
    parts = []
    for piece in [b"first-", b"second-", b"third"]:
        url = create(server, credential, len(piece), **{"Upload-Concat": "partial"})
        assert patch(url, server, credential, piece, 0).status_code == 204
        assert requests.head(url, headers=headers(server, credential)).headers["Upload-Concat"] == "partial"
        parts.append(url)
    # An unfinished partial, or another client's, can't be joined.
    unfinished = create(server, credential, 5, **{"Upload-Concat": "partial"})
    r = requests.post(server.url("/api/tus"), headers={**headers(server, credential),
                                                      "Upload-Concat": f"final;{parts[0]} {unfinished}"})
    assert r.status_code == 400
    r = requests.post(server.url("/api/tus"), headers={**headers(server, other), "Upload-Concat": f"final;{parts[0]}"})
    assert r.status_code == 400
    paths = " ".join(url.split(server.base, 1)[1] for url in parts)
    r = requests.post(server.url("/api/tus"), headers={**headers(server, credential), "Upload-Concat": f"final;{paths}",
                                                      "Upload-Metadata": metadata(filename="joined.txt")})
    assert r.status_code == 201, r.text
    final = r.headers["Location"]
    head = requests.head(final, headers=headers(server, credential))
    assert head.headers["Upload-Offset"] == head.headers["Upload-Length"] == str(len(b"first-second-third"))
    assert head.headers["Upload-Concat"] == f"final;{paths}"
    assert patch(final, server, credential, b"x", 18).status_code == 403
    final_id = final.rsplit("/", 1)[1]
    got = requests.get(server.url(f"/api/minihost/download?id={final_id}"), headers=server.auth(credential))
    assert got.content == b"first-second-third" and 'filename="joined.txt"' in got.headers["Content-Disposition"]


def test_concurrent_patches_of_one_upload_are_serialized(server):
    credential = server.client()
    url = create(server, credential, 2 << 20)
    results = []

    def send(byte):
        results.append(patch(url, server, credential, bytes([byte]) * (1 << 20), 0))

    threads = [threading.Thread(target=send, args=(b,)) for b in (0x41, 0x42, 0x43, 0x44)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # One wins at offset 0; the others find the offset moved.
    assert sorted(r.status_code for r in results) == [204, 409, 409, 409], [r.status_code for r in results]
    assert requests.head(url, headers=headers(server, credential)).headers["Upload-Offset"] == str(1 << 20)


def test_acknowledged_bytes_survive_a_restart_and_abandoned_uploads_expire(make_server, tmp_path):
    server = make_server({"MINIHOST_SESSION_HOURS": "0.002"})  # uploads expire after 7.2 s
    credential = server.client()
    url = create(server, credential, 10)
    assert patch(url, server, credential, b"hello", 0).status_code == 204
    server.stop()
    server = make_server({"MINIHOST_SESSION_HOURS": "0.002"}, data=server.data)
    assert requests.head(url.replace(url.split("/api")[0], server.base), headers=headers(server, credential)).headers[
        "Upload-Offset"] == "5"
    url = url.replace(url.split("/api")[0], server.base)
    assert patch(url, server, credential, b"world", 5).status_code == 204
    upload_id = url.rsplit("/", 1)[1]
    assert requests.get(server.url(f"/api/minihost/download?id={upload_id}"), headers=server.auth(credential)).content == b"helloworld"

    abandoned = create(server, credential, 10)
    assert patch(abandoned, server, credential, b"12345", 0).status_code == 204
    session = server.data / "sessions" / abandoned.rsplit("/", 1)[1]
    assert session.exists()
    time.sleep(8)
    assert requests.head(abandoned, headers=headers(server, credential)).status_code == 404
    assert patch(abandoned, server, credential, b"67890", 5).status_code == 404
    run_cli("gc", data=server.data)
    assert not session.exists()


def test_an_upload_takes_at_most_the_configured_patches_and_is_told_why(make_server):
    server = make_server({"MINIHOST_MAX_CHUNKS": "5"})
    credential = server.client()
    url = create(server, credential, 100)
    for index in range(6):  # records 0-5: MINIHOST_MAX_CHUNKS, counted from 0 as the plain dialect's chunks may be
        assert patch(url, server, credential, b"x" * 10, index * 10).status_code == 204
    refused = patch(url, server, credential, b"y" * 10, 60)
    assert refused.status_code == 400 and "MINIHOST_MAX_CHUNKS" in refused.text and "larger PATCHes" in refused.text
    assert refused.headers["Tus-Resumable"] == "1.0.0"
    head = requests.head(url, headers=headers(server, credential))
    assert head.headers["Upload-Offset"] == "60"


def test_a_browser_preflight_is_answered_and_tus_headers_are_readable(make_server):
    server = make_server({"MINIHOST_CORS_ORIGINS": "https://app.example"})
    credential = server.client()
    preflight = requests.options(server.url("/api/tus"), headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, tus-resumable, upload-length"})
    assert preflight.status_code == 204 and "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example"
    r = requests.post(server.url("/api/tus"), headers={**headers(server, credential), "Upload-Length": "3",
                                                      "Origin": "https://app.example"})
    exposed = {h.strip().lower() for h in r.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"location", "upload-offset", "tus-resumable", "upload-expires"} <= exposed
