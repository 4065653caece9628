"""The plain dialect's resumable upload through real nginx, with curl as
scripts use it: parallel out-of-order chunks, retries, concurrent finishes,
a SIGKILLed server, and every documented error."""

import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from conftest import run_cli, sha256

PRIMARY = "alice primary password"


def curl(server, method, path, *args):
    out = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", "-X", method, server.url(path), *args],
                         capture_output=True, text=True, check=True).stdout
    body, _, status = out.rpartition("\n")
    return int(status), body.strip()


def form(*fields):
    args = []
    for field in fields:
        args += ["--data-urlencode", field]
    return args


def make_user(server, quota_mb=None):
    extra = ["--quota-mb", str(quota_mb)] if quota_mb else []
    run_cli("user", "create", "alice", "--password-stdin", *extra, data=server.data, stdin=PRIMARY + "\n")
    folder = run_cli("user", "folder", "create", "alice", "ci", data=server.data).stdout.strip().splitlines()[-1]
    secret = run_cli("user", "secondary", "create", "alice", "ci", "--folder", folder,
                     data=server.data).stdout.strip().splitlines()[-1]
    return folder, secret


def init(server, password, size, name="video.mp4", *extra):
    return curl(server, "POST", "/api/initChunkedUploadPlain",
                *form("username=alice", f"password={password}", f"filename={name}", f"size={size}", *extra))


def send_chunk(server, upload_id, index, data, tmp_path):
    part = tmp_path / f"chunk-{upload_id}-{index}"
    part.write_bytes(data)
    return curl(server, "POST", f"/api/uploadChunkPlain?id={upload_id}&chunk={index}", "-F", f"file=@{part}")


def finish(server, password, upload_id, *extra):
    return curl(server, "POST", "/api/finishChunkedUploadPlain",
                *form("username=alice", f"password={password}", f"id={upload_id}", *extra))


def parse_links(text):
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


def test_resumable_upload_with_parallel_out_of_order_chunks(server, tmp_path):
    _, secret = make_user(server)
    data = os.urandom(5 * 1024 * 1024 + 123)
    chunk = 1024 * 1024
    status, upload_id = init(server, secret, len(data))
    assert status == 200 and len(upload_id) == 32
    assert curl(server, "GET", f"/api/chunkedUploadStatusPlain?id={upload_id}") == (200, "PENDING")
    indices = list(range((len(data) + chunk - 1) // chunk))[::-1]  # last first
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: send_chunk(server, upload_id, i, data[i * chunk:(i + 1) * chunk], tmp_path), indices))
    assert all(r == (200, "OK") for r in results), results
    assert send_chunk(server, upload_id, 2, data[2 * chunk:3 * chunk], tmp_path) == (200, "OK")  # a retry is harmless
    status, body = finish(server, secret, upload_id)
    assert status == 200, body
    links = parse_links(body)
    assert set(links) == {"Link", "Raw", "Download"}
    raw = requests.get(links["Raw"])
    assert raw.status_code == 200 and sha256(raw.content) == sha256(data)
    download = requests.get(links["Download"])
    assert sha256(download.content) == sha256(data) and download.headers["Content-Disposition"].startswith("attachment;")
    page = requests.get(links["Link"])
    assert page.status_code == 200 and "video.mp4" in page.text and "Download" in page.text
    status, text = curl(server, "GET", f"/api/chunkedUploadStatusPlain?id={upload_id}")
    assert status == 200 and text.startswith("COMPLETED") and parse_links(text) == links
    # Finishing again answers the same links, and made no second file.
    assert finish(server, secret, upload_id) == (200, body)
    assert server.db("SELECT COUNT(*) FROM minihost_uploads") == [(1,)]
    # skipEmbeddedPage: the Link is the raw bytes.
    status, small_id = init(server, secret, 3, "a.txt")
    send_chunk(server, small_id, 0, b"abc", tmp_path)
    status, body = finish(server, secret, small_id, "skipEmbeddedPage=1", "forceDownload=1")
    small = parse_links(body)
    assert small["Link"] == small["Raw"]
    assert requests.get(small["Raw"]).headers["Content-Disposition"].startswith("attachment;")


def test_equal_chunks_counted_from_one_are_written_in_place(server, tmp_path):
    """The spec's example counts chunks from 1. Equal chunks go straight into
    the session file (no chunk files), and finish drops the empty first slot."""
    _, secret = make_user(server)
    chunk = 1024 * 1024
    data = os.urandom(4 * chunk + 4321)
    _, upload_id = init(server, secret, len(data))
    indices = [1, 2, 3, 4, 5]
    assert send_chunk(server, upload_id, 1, data[:chunk], tmp_path) == (200, "OK")  # fixes the slot size
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: send_chunk(server, upload_id, i, data[(i - 1) * chunk:i * chunk], tmp_path),
                                indices[1:][::-1]))
    assert all(r == (200, "OK") for r in results), results
    rows = server.db("SELECT chunk_index, file_offset FROM minihost_upload_session_chunks ORDER BY chunk_index")
    assert rows == [(i, i * chunk) for i in indices]
    session_folder = os.path.join(server.data, "sessions", upload_id)
    assert os.listdir(session_folder) == ["data"]
    # A resumed script sends everything again: identical bytes keep the chunks in place.
    assert send_chunk(server, upload_id, 3, data[2 * chunk:3 * chunk], tmp_path) == (200, "OK")
    assert server.db("SELECT COUNT(*) FROM minihost_upload_session_chunks WHERE file_offset IS NULL") == [(0,)]
    status, body = finish(server, secret, upload_id)
    assert status == 200, body
    raw = requests.get(parse_links(body)["Raw"])
    assert raw.content == data
    assert not os.path.exists(session_folder)


def test_concurrent_finishes_make_one_file(server, tmp_path):
    _, secret = make_user(server)
    data = os.urandom(3 * 1024 * 1024)
    _, upload_id = init(server, secret, len(data))
    for i in range(3):
        send_chunk(server, upload_id, i, data[i << 20:(i + 1) << 20], tmp_path)
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: finish(server, secret, upload_id), range(6)))
    assert all(status in (200, 202) for status, _ in results), results
    assert any(status == 200 for status, _ in results)
    for status, body in results:
        if status == 202:
            assert body == "PROCESSING Retry in 5 seconds"
    assert server.db("SELECT COUNT(*) FROM minihost_uploads") == [(1,)]


def test_errors_are_plain_text_and_change_nothing(server, tmp_path):
    folder, secret = make_user(server, quota_mb=1)
    assert curl(server, "POST", "/api/initChunkedUploadPlain", *form("username=alice")) == (400, "ERR Missing fields")
    assert init(server, "wrong", 10) == (401, "ERR Invalid credentials")
    for size in ["0", "-5", "abc", str(10 ** 15)]:
        assert init(server, secret, size) == (400, "ERR Invalid file size"), size
    assert init(server, secret, 2 * 1024 * 1024) == (413, "ERR Storage limit exceeded")
    root = server.db("SELECT id FROM minihost_folders WHERE parent_id IS NULL")[0][0]
    status, body = init(server, secret, 10, "x", f"folderId={root}")
    assert status == 403 and body.startswith("ERR")
    status, upload_id = init(server, secret, 10)
    assert status == 200
    assert curl(server, "POST", "/api/uploadChunkPlain?chunk=1", "-F", "file=@/dev/null") == (400, "ERR Missing id")
    for chunk in ["x", "-1"]:
        assert curl(server, "POST", f"/api/uploadChunkPlain?id={upload_id}&chunk={chunk}", "-F", "file=@/dev/null")[0] == 400
    assert send_chunk(server, "0" * 32, 0, b"x", tmp_path) == (400, "ERR Not found")
    assert send_chunk(server, upload_id, 11, b"x", tmp_path)[0] == 400  # past the declared size
    assert send_chunk(server, upload_id, 0, b"x" * 11, tmp_path)[0] in (400, 413)  # more bytes than declared
    assert send_chunk(server, upload_id, 0, b"x" * 4, tmp_path) == (200, "OK")
    assert send_chunk(server, upload_id, 2, b"y" * 4, tmp_path) == (200, "OK")
    status, body = finish(server, secret, upload_id)
    assert (status, body) == (400, "ERR Missing chunks: 1")
    status, body = finish(server, PRIMARY + "x", upload_id)
    assert status == 401
    run_cli("user", "create", "bob", "--password-stdin", data=server.data, stdin="bob primary password\n")
    status, body = curl(server, "POST", "/api/finishChunkedUploadPlain",
                        *form("username=bob", "password=bob primary password", f"id={upload_id}"))
    assert (status, body) == (400, "ERR Upload not found")
    assert curl(server, "GET", "/api/chunkedUploadStatusPlain") == (400, "ERR Missing id")
    assert curl(server, "GET", "/api/chunkedUploadStatusPlain?id=" + "0" * 32) == (404, "ERR Not found")
    # The session is intact: send the missing chunk and finish.
    assert send_chunk(server, upload_id, 1, b"z" * 2, tmp_path) == (200, "OK")
    status, body = finish(server, secret, upload_id)
    assert status == 200
    assert requests.get(parse_links(body)["Raw"]).content == b"xxxxzzyyyy"


def test_nginx_refusals_on_plain_routes_are_plain_text(make_server, tmp_path):
    server = make_server({"MINIHOST_MAX_CHUNK_MB": "1"})
    _, secret = make_user(server)
    _, upload_id = init(server, secret, 10 * 1024 * 1024)
    # Over nginx's body limit for chunks (1 MB plus framing): refused before the worker sees it.
    status, body = send_chunk(server, upload_id, 0, os.urandom(3 * 1024 * 1024), tmp_path)
    assert (status, body) == (413, "ERR Chunk too large (max 1 MB)")
    # Over the worker's limit but within nginx's framing allowance.
    status, body = send_chunk(server, upload_id, 0, os.urandom(1024 * 1024 + 1), tmp_path)
    assert (status, body) == (413, "ERR Chunk too large")
    assert server.db("SELECT COUNT(*) FROM minihost_upload_session_chunks") == [(0,)]
    assert send_chunk(server, upload_id, 0, os.urandom(1024 * 1024), tmp_path) == (200, "OK")


def test_acknowledged_chunks_survive_sigkill_and_restart(make_server, tmp_path):
    server = make_server()
    _, secret = make_user(server)
    data = os.urandom(4 * 1024 * 1024)
    _, upload_id = init(server, secret, len(data))
    for i in (0, 2):
        assert send_chunk(server, upload_id, i, data[i << 20:(i + 1) << 20], tmp_path) == (200, "OK")
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()
    server.stop()  # stops the orphaned nginx by its pid file
    restarted = make_server(data=server.data)
    for i in (1, 3):
        assert send_chunk(restarted, upload_id, i, data[i << 20:(i + 1) << 20], tmp_path) == (200, "OK")
    status, body = finish(restarted, secret, upload_id)
    assert status == 200
    assert sha256(requests.get(parse_links(body)["Raw"]).content) == sha256(data)


SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "examples", "plain-resumable-upload.sh")


def test_the_example_script_uploads_a_large_file_and_resumes(server, tmp_path):
    folder, secret = make_user(server)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(13 * 1024 * 1024 + 7))
    env = {**os.environ, "MINIHOST_URL": server.base, "MINIHOST_USER": "alice", "MINIHOST_PASSWORD": secret,
           "CHUNK_MB": "2", "PARALLEL": "3"}
    # A session that an earlier run started and left half done.
    status, upload_id = init(server, secret, big.stat().st_size, "big.bin")
    first_chunk = big.read_bytes()[:2 * 1024 * 1024]
    send_chunk(server, upload_id, 0, first_chunk, tmp_path)
    (tmp_path / "big.bin.minihost-upload").write_text(upload_id + "\n")
    result = subprocess.run(["bash", SCRIPT, str(big), folder], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    links = parse_links(result.stdout)
    assert sha256(requests.get(links["Raw"]).content) == sha256(big.read_bytes())
    assert not (tmp_path / "big.bin.minihost-upload").exists()
    # It resumed the same session rather than starting another.
    assert server.db("SELECT COUNT(*) FROM minihost_upload_sessions") == [(1,)]
    bad = subprocess.run(["bash", SCRIPT, str(big)], env={**env, "MINIHOST_PASSWORD": "wrong"},
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "INVALID" in bad.stderr


def test_basic_html_upload(make_server, tmp_path):
    server = make_server()
    folder, secret = make_user(server, quota_mb=1)
    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF-1.4 " + os.urandom(5000))
    status, body = curl(server, "POST", "/api/basicHTMLUpload", "-F", "username=alice", "-F", f"password={secret}",
                        "-F", f"folderId={folder}", "-F", f"file=@{report}")
    assert status == 200, body
    links = parse_links(body)
    assert links["Raw"].endswith(".pdf")
    raw = requests.get(links["Raw"])
    assert raw.content == report.read_bytes() and raw.headers["Content-Type"] == "application/pdf"
    # Fields after the file are fine too.
    status, _ = curl(server, "POST", "/api/basicHTMLUpload", "-F", f"file=@{report}", "-F", "username=alice",
                     "-F", f"password={secret}")
    assert status == 200
    status, body = curl(server, "POST", "/api/basicHTMLUpload", "-F", "username=alice", "-F", "password=wrong",
                        "-F", f"file=@{report}")
    assert status == 401 and "Invalid credentials" in body
    status, body = curl(server, "POST", "/api/basicHTMLUpload", "-F", "username=alice", "-F", f"password={secret}")
    assert status == 400 and "error" in body
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(2 * 1024 * 1024))
    status, body = curl(server, "POST", "/api/basicHTMLUpload", "-F", "username=alice", "-F", f"password={secret}",
                        "-F", f"file=@{big}")
    assert status == 413 and "Storage limit exceeded" in body
    assert server.temp_files() == []
    assert server.db("SELECT COUNT(*) FROM minihost_uploads") == [(2,)]


def test_wrong_passwords_are_rate_limited(make_server):
    server = make_server({"MINIHOST_RATE_LIMIT": "on"})
    make_user(server)
    # A burst from one address: past the zone's burst, nginx answers 429
    # before any password is hashed.
    with ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(lambda _: curl(server, "POST", "/api/cliCheckCredentials",
                                               *form("username=alice", "password=wrong")), range(40)))
    assert (401, "INVALID") in answers and (429, "ERR Too many requests") in answers
    # What gets past nginx waits for one of two scrypt slots in a bounded
    # queue (16); the rest is refused at once rather than holding a thread.
    assert {status for status, _ in answers} <= {401, 429, 503}
    assert all(body == "ERR Server busy, retry shortly" for status, body in answers if status == 503)


def test_a_finish_cut_off_after_the_collapse_is_completed_by_the_next_call(make_server, tmp_path):
    flag = tmp_path / "crash-once"
    flag.write_text("")
    server = make_server({"MINIHOST_TEST_CRASH_POINT": f"finish-before-commit@{flag}"})
    _, secret = make_user(server)
    slot = 1 << 20
    data = os.urandom(3 * slot + 1234)
    status, upload_id = init(server, secret, len(data))
    # Chunks counted from 1, in place: finish removes the empty first slot, then the worker dies.
    for index in range(1, 5):
        assert send_chunk(server, upload_id, index, data[(index - 1) * slot:index * slot], tmp_path)[0] == 200
    status, body = finish(server, secret, upload_id)
    assert status in (502, 503) and not flag.exists(), (status, body)
    server.wait_healthy()
    assert server.db("SELECT state FROM minihost_upload_sessions WHERE id = ?", upload_id) == [("assembling",)]
    # The crash came after the collapse: the session file already starts with chunk 1.
    assert (server.data / "sessions" / upload_id / "data").stat().st_size == len(data)
    # The claim's process is gone: the next call takes over at once (not after ten minutes).
    status, body = finish(server, secret, upload_id)
    assert status == 200, body
    assert sha256(requests.get(parse_links(body)["Raw"]).content) == sha256(data)
    assert run_cli("check", data=server.data).returncode == 0


def test_an_expired_session_refuses_chunks_status_and_finish_and_releases_its_quota(make_server, tmp_path):
    server = make_server({"MINIHOST_SESSION_HOURS": "0.001"})  # 3.6 s
    _, secret = make_user(server, quota_mb=1)
    status, upload_id = init(server, secret, 1_000_000)
    assert status == 200
    assert send_chunk(server, upload_id, 0, os.urandom(400_000), tmp_path) == (200, "OK")
    # The open session reserves its declared size against the quota.
    assert init(server, secret, 500_000)[0] == 413
    time.sleep(4)
    assert send_chunk(server, upload_id, 1, os.urandom(400_000), tmp_path) == (400, "ERR Not found")
    assert curl(server, "GET", f"/api/chunkedUploadStatusPlain?id={upload_id}") == (404, "ERR Not found")
    assert finish(server, secret, upload_id) == (400, "ERR Upload not found")
    # Its reservation is gone with it.
    status, again = init(server, secret, 1_000_000)
    assert status == 200, again
    out = run_cli("gc", data=server.data).stdout
    assert "1 expired upload session(s)" in out, out
    assert not (server.data / "sessions" / upload_id).exists()
    assert server.db("SELECT COUNT(*) FROM minihost_upload_session_chunks WHERE session_id = ?", upload_id) == [(0,)]
