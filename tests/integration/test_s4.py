"""The s4 dialect through real nginx: operator login and tokens, buckets,
objects with base64 keys and keyset pagination, replace under concurrent
readers, upload progress over server-sent events with one-time tickets."""

import base64
import json
import threading
import time

import requests

from conftest import run_cli, sha256, slow_multipart

PASSWORD = "correct horse battery"


def b64(key: str, standard=False) -> str:
    encoded = base64.b64encode(key.encode()).decode()
    if standard:
        return encoded
    return encoded.replace("+", "-").replace("/", "_").rstrip("=")


def operator_token(server, username="operator"):
    run_cli("admin", "create", username, "--password-stdin", data=server.data, stdin=PASSWORD + "\n")
    r = requests.post(server.url("/api/auth/login"), json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return r.json()["token"]


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def upload(server, token, bucket, key, data, standard=False, name="f.bin", content_type="application/octet-stream",
           headers=None):
    return requests.post(server.url(f"/api/objects/upload/{bucket}/{b64(key, standard)}"),
                         headers={**bearer(token), **(headers or {})}, files={"file": (name, data, content_type)},
                         timeout=120)


def test_login_tokens_cookie_and_logout(server):
    run_cli("admin", "create", "operator", "--password-stdin", data=server.data, stdin=PASSWORD + "\n")
    info = requests.get(server.url("/api/auth/info"))
    assert info.json() == {"authEnabled": True, "authMode": "simple"}

    wrong = requests.post(server.url("/api/auth/login"), json={"username": "operator", "password": "wrong password"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "Unauthorized"
    missing = requests.post(server.url("/api/auth/login"), json={"username": "operator"})
    assert missing.status_code == 400 and set(missing.json()) == {"error", "message"}

    session = requests.Session()
    r = session.post(server.url("/api/auth/login"), json={"username": "operator", "password": PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert body["user"] == {"id": "operator", "username": "operator", "roles": ["admin"]}
    assert body["expiresIn"] == 28800
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("s4_auth_token=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    token = body["token"]

    # No token, a wrong one, the header, the cookie.
    assert requests.get(server.url("/api/buckets")).status_code == 401
    assert requests.get(server.url("/api/buckets"), headers=bearer("0" * 64)).status_code == 401
    assert requests.get(server.url("/api/auth/me"), headers=bearer(token)).json()["user"]["username"] == "operator"
    assert session.get(server.url("/api/buckets")).status_code == 200

    # Logout ends the session for the header as well as the cookie.
    out = session.post(server.url("/api/auth/logout"))
    assert out.status_code == 200 and "Max-Age=0" in out.headers["Set-Cookie"]
    assert requests.get(server.url("/api/auth/me"), headers=bearer(token)).status_code == 401


def test_login_is_limited_per_address_across_workers(make_server):
    server = make_server(extra_args=("--processes", "2"))
    run_cli("admin", "create", "operator", "--password-stdin", data=server.data, stdin=PASSWORD + "\n")
    codes = [requests.post(server.url("/api/auth/login"), json={"username": "operator", "password": "nope-nope"}).status_code
             for _ in range(5)]
    assert codes == [401] * 5
    limited = requests.post(server.url("/api/auth/login"), json={"username": "operator", "password": PASSWORD})
    assert limited.status_code == 429
    body = limited.json()
    assert body["error"] == "RateLimitExceeded" and 1 <= body["retryAfter"] <= 60
    assert int(limited.headers["Retry-After"]) == body["retryAfter"]


def test_auth_off_is_explicit_and_loud(make_server):
    server = make_server(env={"MINIHOST_S4_AUTH": "off"})
    assert "WARNING: MINIHOST_S4_AUTH=off" in server.output()
    assert requests.get(server.url("/api/auth/info")).json()["authEnabled"] is False
    assert requests.get(server.url("/api/buckets")).status_code == 200
    assert requests.post(server.url("/api/buckets"), json={"bucketName": "dev-bucket"}).status_code == 201


def test_buckets_naming_conflicts_and_app_buckets(server):
    token = operator_token(server)
    h = bearer(token)
    for bad in ["ab", "UPPER", "has_underscore", "-dash", "192.168.1.1", "a..b", "xn--abc", "upload", "x" * 64]:
        r = requests.post(server.url("/api/buckets"), headers=h, json={"bucketName": bad})
        assert r.status_code == 400, bad
        assert r.json()["error"] == "InvalidBucketName"
    assert requests.post(server.url("/api/buckets"), headers=h, json={"bucketName": "photos"}).status_code == 201
    dup = requests.post(server.url("/api/buckets"), headers=h, json={"bucketName": "photos"})
    assert dup.status_code == 409 and dup.json()["error"] == "BucketAlreadyExists"

    credential = server.client("myapp")
    uploaded = server.upload(credential, b"app bytes", name="report.pdf").json()
    listing = requests.get(server.url("/api/buckets"), headers=h).json()
    names = [b["Name"] for b in listing["buckets"]]
    assert names == ["photos", "app:myapp"]
    assert set(listing) == {"owner", "defaultBucket", "buckets"}

    # The app's uploads, read-only: `<id>/<file name>`.
    top = requests.get(server.url("/api/objects/app:myapp"), headers=h).json()
    assert top["prefixes"] == [{"Prefix": uploaded["uploadId"] + "/"}]
    key = uploaded["uploadId"] + "/report.pdf"
    inner = requests.get(server.url(f"/api/objects/app:myapp/{b64(uploaded['uploadId'] + '/')}"), headers=h).json()
    assert [o["Key"] for o in inner["objects"]] == [key]
    got = requests.get(server.url(f"/api/objects/download/app:myapp/{b64(key)}"), headers=h)
    assert got.status_code == 200 and got.content == b"app bytes"
    assert upload(server, token, "app:myapp", "x.txt", b"no").status_code == 403
    assert requests.delete(server.url(f"/api/objects/app:myapp/{b64(key)}"), headers=h).status_code == 403
    assert requests.delete(server.url("/api/buckets/app:myapp"), headers=h).status_code == 403

    assert upload(server, token, "photos", "a.jpg", b"jpeg").status_code == 200
    full = requests.delete(server.url("/api/buckets/photos"), headers=h)
    assert full.status_code == 409 and full.json()["error"] == "BucketNotEmpty"
    assert requests.delete(server.url(f"/api/objects/photos/{b64('a.jpg')}"), headers=h).json()["count"] == 1
    assert requests.delete(server.url("/api/buckets/photos"), headers=h).status_code == 200
    assert requests.delete(server.url("/api/buckets/photos"), headers=h).status_code == 404
    missing = requests.get(server.url("/api/objects/photos"), headers=h)
    assert missing.status_code == 404 and missing.json()["error"] == "NoSuchBucket"


def test_objects_keys_listing_pages_and_search(server):
    token = operator_token(server)
    h = bearer(token)
    requests.post(server.url("/api/buckets"), headers=h, json={"bucketName": "data"})
    keys = ["models/llama/config.json", "models/llama/weights.bin", "models/mistral/config.json",
            "readme.md", "zeta/ä ö/ü.txt", "a+b=c?.txt"]
    for index, key in enumerate(keys):
        r = upload(server, token, "data", key, f"content {index}".encode(), standard=index % 2 == 0)
        assert r.status_code == 200, (key, r.text)
        assert r.json()["message"] == "Object uploaded successfully"
    # A key whose standard base64 holds "/" (nginx sees it as a path separator) and "+".
    odd = "\u00bf\u00bf >\u00f8b"
    assert "/" in b64(odd, standard=True) and "+" in b64(odd, standard=True)
    assert upload(server, token, "data", odd, b"odd", standard=True).status_code == 200
    meta = requests.get(server.url(f"/api/objects/metadata/data/{b64(odd, standard=True)}"), headers=h)
    assert meta.status_code == 200 and meta.json()["key"] == odd

    root = requests.get(server.url("/api/objects/data"), headers=h).json()
    assert set(root) == {"objects", "prefixes", "isTruncated", "nextContinuationToken"}
    assert [p["Prefix"] for p in root["prefixes"]] == ["models/", "zeta/"]
    assert [o["Key"] for o in root["objects"]] == ["a+b=c?.txt", "readme.md", odd]
    assert set(root["objects"][0]) == {"Key", "LastModified", "ETag", "Size", "StorageClass"}
    models = requests.get(server.url(f"/api/objects/data/{b64('models/')}"), headers=h).json()
    assert [p["Prefix"] for p in models["prefixes"]] == ["models/llama/", "models/mistral/"]

    # Pages of one: every entry once, in order, prefixes rolled up.
    seen, token_param = [], None
    while True:
        params = {"maxKeys": 1, **({"continuationToken": token_param} if token_param else {})}
        page = requests.get(server.url("/api/objects/data"), headers=h, params=params).json()
        seen += [p["Prefix"] for p in page["prefixes"]] + [o["Key"] for o in page["objects"]]
        if not page["isTruncated"]:
            break
        token_param = page["nextContinuationToken"]
    assert seen == ["a+b=c?.txt", "models/", "readme.md", "zeta/", odd]
    for bad in ["0", "2001", "x"]:
        assert requests.get(server.url("/api/objects/data"), headers=h, params={"maxKeys": bad}).status_code == 400
    assert requests.get(server.url("/api/objects/data"), headers=h,
                        params={"continuationToken": "!!"}).status_code == 400

    starts = requests.get(server.url(f"/api/objects/data/{b64('models/')}"), headers=h,
                          params={"q": "m", "mode": "startsWith"}).json()
    assert [p["Prefix"] for p in starts["prefixes"]] == ["models/mistral/"]
    found = requests.get(server.url("/api/objects/data"), headers=h, params={"q": "CONFIG", "mode": "contains"}).json()
    assert [o["Key"] for o in found["objects"]] == ["models/llama/config.json", "models/mistral/config.json"]
    codes = [requests.get(server.url("/api/objects/data"), headers=h, params={"q": "x", "mode": "contains"}).status_code
             for _ in range(5)]
    assert codes == [200, 200, 200, 200, 429]

    # Metadata and view; download with Range.
    key = "models/llama/config.json"
    meta = requests.get(server.url(f"/api/objects/view/data/{b64(key)}"), headers=h).json()
    assert set(meta) == {"key", "size", "lastModified", "etag", "contentType", "metadata", "storageClass"}
    assert meta["size"] == len(b"content 0") and meta["contentType"] == "application/json"
    part = requests.get(server.url(f"/api/objects/download/data/{b64(key, standard=True)}"), headers={**h, "Range": "bytes=2-5"})
    assert part.status_code == 206 and part.content == b"nten"
    whole = requests.get(server.url(f"/api/objects/download/data/{b64(key)}"), headers=h)
    assert whole.headers["X-Content-Type-Options"] == "nosniff" and "attachment" in whole.headers["Content-Disposition"]

    # Keys that can't be: bad base64, not UTF-8, NUL, too long; a missing key.
    for encoded in ["%%%", "a", base64.urlsafe_b64encode(b"\xff\xfe").decode(), b64("a\x00b"), b64("k" * 1025)]:
        r = requests.get(server.url(f"/api/objects/metadata/data/{encoded}"), headers=h)
        assert r.status_code == 400 and r.json()["error"] == "InvalidKey", encoded
    assert requests.get(server.url(f"/api/objects/metadata/data/{b64('nope')}"), headers=h).json()["error"] == "NoSuchKey"
    assert upload(server, token, "data", "k" * 1024, b"max").status_code == 200

    # Delete as a prefix, with a count.
    gone = requests.delete(server.url(f"/api/objects/data/{b64('models/')}"), headers=h).json()
    assert gone == {"message": "Successfully deleted 3 object(s)", "count": 3}
    assert requests.get(server.url(f"/api/objects/data/{b64('models/')}"), headers=h).json()["objects"] == []


def test_metadata_headers_and_types(server):
    token = operator_token(server)
    h = bearer(token)
    requests.post(server.url("/api/buckets"), headers=h, json={"bucketName": "meta"})
    r = upload(server, token, "meta", "page.html", b"<script>alert(1)</script>", content_type="text/html",
               headers={"X-Amz-Meta-Project": "apollo"})
    assert r.status_code == 200
    meta = requests.get(server.url(f"/api/objects/metadata/meta/{b64('page.html')}"), headers=h).json()
    assert meta["metadata"] == {"project": "apollo"}
    got = requests.get(server.url(f"/api/objects/download/meta/{b64('page.html')}"), headers=h)
    # Stored bytes are hostile: never rendered on the app's origin.
    assert got.headers["Content-Security-Policy"] == "sandbox" and "attachment" in got.headers["Content-Disposition"]
    big = upload(server, token, "meta", "x", b"x", headers={"X-Amz-Meta-Big": "v" * 3000})
    assert big.status_code == 400


def test_replace_is_atomic_for_readers(server):
    token = operator_token(server)
    h = bearer(token)
    requests.post(server.url("/api/buckets"), headers=h, json={"bucketName": "race"})
    versions = [bytes([65 + i]) * (200_000 + i * 50_000) for i in range(4)]
    assert upload(server, token, "race", "hot/key", versions[0]).status_code == 200
    url = server.url(f"/api/objects/download/race/{b64('hot/key')}")
    stop = threading.Event()
    problems, reads = [], [0]

    def reader():
        with requests.Session() as session:
            while not stop.is_set():
                r = session.get(url, headers=h)
                if r.status_code != 200 or r.content not in versions:
                    problems.append((r.status_code, len(r.content), r.content[:1]))
                reads[0] += 1

    def writer(index):
        for round_ in range(6):
            r = upload(server, token, "race", "hot/key", versions[(index + round_) % 4])
            if r.status_code != 200:
                problems.append(("upload", r.status_code, r.text))

    readers = [threading.Thread(target=reader) for _ in range(4)]
    writers = [threading.Thread(target=writer, args=(i,)) for i in range(3)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert not problems, problems[:5]
    assert reads[0] > 20
    assert server.db("SELECT COUNT(*) FROM minihost_s4_objects WHERE bucket = 'race'") == [(1,)]
    ready = server.db("SELECT COUNT(*) FROM minihost_uploads WHERE owner_kind = 's4_bucket' AND state = 'ready'")
    assert ready == [(1,)]
    # The replaced blobs are released shortly after (one blob left).
    deadline = time.time() + 10
    while time.time() < deadline and len(list((server.data / "blobs").rglob("*"))) > 0:
        files = [p for p in (server.data / "blobs").rglob("*") if p.is_file()]
        if len(files) == 1:
            break
        time.sleep(0.2)
    files = [p for p in (server.data / "blobs").rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].read_bytes() in versions


def read_events(response, until="complete", limit=400):
    events, current = [], {}
    for line in response.iter_lines(decode_unicode=True):
        if line is None:
            continue
        if line == "":
            if "data" in current:
                events.append(current)
                if current.get("event") == until or current.get("event") == "error":
                    return events
            current = {}
            if len(events) > limit:
                return events
            continue
        field, _, value = line.partition(": ")
        if field in ("event", "data"):
            current[field] = json.loads(value) if field == "data" else value
    return events


def test_upload_progress_stream_with_tickets(server):
    token = operator_token(server)
    h = bearer(token)
    requests.post(server.url("/api/buckets"), headers=h, json={"bucketName": "live"})
    key = "big/file.bin"
    encoded = b64(key)
    data = bytes(range(256)) * 4096 * 3  # 3 MiB

    ticket = requests.post(server.url("/api/auth/sse-ticket"), headers=h,
                           json={"resource": encoded, "resourceType": "upload"}).json()
    assert set(ticket) == {"ticket", "sseUrl", "expiresAt", "expiresIn"} and ticket["expiresIn"] == 60
    assert ticket["sseUrl"].startswith(f"/objects/upload-progress/{encoded}?ticket=")

    stream = requests.get(server.url(f"/api/objects/upload-progress/{encoded}"), params={"ticket": ticket["ticket"]},
                          stream=True, timeout=60)
    assert stream.status_code == 200 and stream.headers["Content-Type"].startswith("text/event-stream")
    result = {}

    def slow_upload():
        result["r"] = requests.post(server.url(f"/api/objects/upload/live/{encoded}"),
                                    headers={**h, "Content-Type": "multipart/form-data; boundary=b"},
                                    data=slow_multipart(data, 256 * 1024, 0.15, name="file.bin"), timeout=120)
        result["done_at"] = time.time()

    uploader = threading.Thread(target=slow_upload)
    uploader.start()
    events = read_events(stream)
    received_at = time.time()
    uploader.join()
    assert result["r"].status_code == 200, result["r"].text
    progress = [e["data"] for e in events if "event" not in e]
    # Streamed as it happened (nginx doesn't buffer): progress arrived while bytes were still coming.
    assert any(p["status"] == "uploading" and 0 < p["loaded"] < len(data) for p in progress), progress
    loaded = [p["loaded"] for p in progress]
    assert loaded == sorted(loaded)
    assert events[-1]["event"] == "complete" and events[-1]["data"]["status"] == "completed"
    assert events[-1]["data"]["loaded"] == len(data)
    # The slow body is chunked (no Content-Length): the total is unknown, and says so.
    assert all(p["total"] is None for p in progress)
    assert received_at <= result["done_at"] + 5

    # A ticket is single use, tied to its resource, and expires.
    reused = requests.get(server.url(f"/api/objects/upload-progress/{encoded}"), params={"ticket": ticket["ticket"]})
    assert reused.status_code == 401
    other = requests.post(server.url("/api/auth/sse-ticket"), headers=h, json={"resource": b64("other")}).json()
    wrong = requests.get(server.url(f"/api/objects/upload-progress/{encoded}"), params={"ticket": other["ticket"]})
    assert wrong.status_code == 403
    expired = requests.post(server.url("/api/auth/sse-ticket"), headers=h, json={"resource": encoded}).json()
    server.db("UPDATE minihost_s4_tickets SET expires_at = '2000-01-01 00:00:00.000'")
    late = requests.get(server.url(f"/api/objects/upload-progress/{encoded}"), params={"ticket": expired["ticket"]})
    assert late.status_code == 401
    assert requests.get(server.url(f"/api/objects/upload-progress/{encoded}")).status_code == 401
    assert requests.post(server.url("/api/auth/sse-ticket"), json={"resource": encoded}).status_code == 401

    # With a Content-Length the total is the file part's size.
    sized_key = "big/sized.bin"
    fourth = requests.post(server.url("/api/auth/sse-ticket"), headers=h, json={"resource": b64(sized_key)}).json()
    stream = requests.get(server.url(f"/api/objects/upload-progress/{b64(sized_key)}"),
                          params={"ticket": fourth["ticket"]}, stream=True, timeout=60)
    sized = threading.Thread(target=lambda: upload(server, token, "live", sized_key, data[:2_000_000]))
    time.sleep(0.3)
    sized.start()
    events = read_events(stream)
    sized.join()
    assert events[-1]["event"] == "complete"
    assert events[-1]["data"]["total"] == events[-1]["data"]["loaded"] == 2_000_000

    # 20 tickets a minute per address (4 issued above).
    codes = [requests.post(server.url("/api/auth/sse-ticket"), headers=h, json={"resource": encoded}).status_code
             for _ in range(17)]
    assert codes == [200] * 16 + [429]


def test_settings_are_durable(make_server, tmp_path):
    server = make_server()
    token = operator_token(server)
    h = bearer(token)
    assert requests.get(server.url("/api/settings/max-files-per-page"), headers=h).json() == {"maxFilesPerPage": 100}
    assert requests.get(server.url("/api/settings/max-concurrent-transfers"), headers=h).json() == {"maxConcurrentTransfers": 2}
    assert requests.get(server.url("/api/settings/disclaimer"), headers=h).json()["accepted"] is False
    for bad in [5, 1001, "50", 50.5, True, None]:
        r = requests.put(server.url("/api/settings/max-files-per-page"), headers=h, json={"maxFilesPerPage": bad})
        assert r.status_code == 400 and r.json()["error"] == "BadRequest", bad
    assert requests.put(server.url("/api/settings/max-files-per-page"), headers=h, json={"maxFilesPerPage": 250}).status_code == 200
    assert requests.put(server.url("/api/settings/max-concurrent-transfers"), headers=h,
                        json={"maxConcurrentTransfers": 21}).status_code == 400
    assert requests.put(server.url("/api/settings/max-concurrent-transfers"), headers=h,
                        json={"maxConcurrentTransfers": 7}).status_code == 200
    assert requests.put(server.url("/api/settings/disclaimer"), headers=h, json={"accepted": True}).status_code == 200
    s3 = requests.get(server.url("/api/settings/s3"), headers=h).json()["settings"]
    assert s3["backend"] == "minihost" and s3["secretAccessKey"] == ""
    refused = requests.put(server.url("/api/settings/s3"), headers=h, json={"endpoint": "http://elsewhere"})
    assert refused.status_code == 400 and refused.json()["error"] == "NotSupported"
    assert requests.get(server.url("/api/settings/s3")).status_code == 401

    server.stop()
    again = make_server(data=server.data)
    r = requests.post(again.url("/api/auth/login"), json={"username": "operator", "password": PASSWORD})
    h = bearer(r.json()["token"])
    assert requests.get(again.url("/api/settings/max-files-per-page"), headers=h).json() == {"maxFilesPerPage": 250}
    assert requests.get(again.url("/api/settings/max-concurrent-transfers"), headers=h).json() == {"maxConcurrentTransfers": 7}
    assert requests.get(again.url("/api/settings/disclaimer"), headers=h).json()["accepted"] is True
