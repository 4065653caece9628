"""A full disk, everywhere bytes are written: a single upload, a chunk,
finish's copy, SQLite itself, and each dialect's answer. Nothing stored is
damaged, and the server works again as soon as there is room. The data
folder is a small tmpfs (root; CI runs as root)."""

import errno
import os
import subprocess

import pytest
import requests

from conftest import run_cli, sha256


@pytest.fixture
def small_disk(tmp_path):
    assert os.geteuid() == 0, "mounting a small tmpfs needs root (CI runs as root)"
    mount = tmp_path / "small"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], capture_output=True, text=True)
    assert mounted.returncode == 0, f"cannot mount a tmpfs: {mounted.stderr}"
    yield mount
    subprocess.run(["umount", "-l", str(mount)])


class Filler:
    """Takes the disk's free space, leaving `spare` bytes, until released."""

    def __init__(self, folder, spare=0):
        self.path = folder / "filler.bin"
        block = b"\0" * 65536
        # Unbuffered: a buffered file would retry its unwritten rest on
        # close and raise ENOSPC there, outside the try.
        with open(self.path, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(block)
            except OSError as error:
                assert error.errno == errno.ENOSPC
        stats = os.statvfs(folder)
        assert stats.f_bavail * stats.f_frsize < 65536
        if spare:
            os.truncate(self.path, max(0, self.path.stat().st_size - spare))

    def release(self):
        self.path.unlink()


def test_a_single_upload_on_a_full_disk_is_507_and_damages_nothing(make_server, small_disk):
    server = make_server(data=small_disk / "var")
    credential = server.client()
    kept = os.urandom(200_000)
    kept_id = server.upload(credential, kept).json()["uploadId"]
    filler = Filler(small_disk, spare=1 << 20)
    r = server.upload(credential, os.urandom(4 << 20))
    assert r.status_code == 507 and r.json() == {"error": "Insufficient storage"}, r.text
    assert server.temp_files() == []
    assert server.db("SELECT COUNT(*) FROM minihost_uploads") == [(1,)]
    d = requests.get(server.url(f"/api/minihost/download?id={kept_id}"), headers=server.auth(credential))
    assert sha256(d.content) == sha256(kept)
    filler.release()
    assert server.upload(credential, os.urandom(100_000)).status_code == 200
    assert run_cli("check", data=server.data).returncode == 0


def plain_user(server):
    run_cli("user", "create", "alice", "--password-stdin", data=server.data, stdin="alice primary password\n")
    return {"username": "alice", "password": "alice primary password"}


def finish_and_check(server, form, upload_id, data):
    done = requests.post(server.url("/api/finishChunkedUploadPlain"), data={**form, "id": upload_id})
    assert done.status_code == 200, done.text
    raw = dict(line.split(": ", 1) for line in done.text.splitlines())["Raw"]
    assert sha256(requests.get(raw).content) == sha256(data)


def chunk(server, upload_id, index, data):
    return requests.post(server.url(f"/api/uploadChunkPlain?id={upload_id}&chunk={index}"), files={"file": ("c", data)})


def test_a_chunk_on_a_full_disk_is_507_and_the_session_carries_on(make_server, small_disk):
    server = make_server(data=small_disk / "var")
    form = plain_user(server)
    data = os.urandom(3 << 20)
    upload_id = requests.post(server.url("/api/initChunkedUploadPlain"),
                              data={**form, "filename": "f.bin", "size": len(data)}).text.strip()
    assert chunk(server, upload_id, 0, data[:1 << 20]).status_code == 200
    filler = Filler(small_disk, spare=200_000)
    full = chunk(server, upload_id, 1, data[1 << 20:2 << 20])
    assert full.status_code == 507 and full.text == "ERR Insufficient storage\n", full.text
    filler.release()
    assert chunk(server, upload_id, 1, data[1 << 20:2 << 20]).status_code == 200
    assert chunk(server, upload_id, 2, data[2 << 20:]).status_code == 200
    finish_and_check(server, form, upload_id, data)


def test_finishs_copy_on_a_full_disk_is_507_and_a_later_finish_completes(make_server, small_disk):
    server = make_server(data=small_disk / "var")
    form = plain_user(server)
    data = os.urandom(3 << 20)
    upload_id = requests.post(server.url("/api/initChunkedUploadPlain"),
                              data={**form, "filename": "f.bin", "size": len(data)}).text.strip()
    # Uneven chunks: the middle one outgrows its slot and lives in a file of its own, so finish copies.
    cuts = [0, 1 << 20, (5 << 20) // 2, len(data)]
    for index in range(3):
        assert chunk(server, upload_id, index, data[cuts[index]:cuts[index + 1]]).status_code == 200
    assert server.db("SELECT COUNT(*) FROM minihost_upload_session_chunks WHERE file_offset IS NULL") == [(1,)]
    filler = Filler(small_disk, spare=1 << 20)
    full = requests.post(server.url("/api/finishChunkedUploadPlain"), data={**form, "id": upload_id})
    assert full.status_code == 507 and full.text == "ERR Insufficient storage\n", full.text
    assert server.db("SELECT state FROM minihost_upload_sessions WHERE id = ?", upload_id) == [("open",)]
    assert server.temp_files() == []
    filler.release()
    finish_and_check(server, form, upload_id, data)


def test_sqlite_full_is_507_and_changes_nothing(make_server, small_disk):
    server = make_server(data=small_disk / "var")
    credential = server.client()
    upload_id = server.upload(credential, b"annotated").json()["uploadId"]
    follow_up = server.url("/api/minihost/upload_follow_up")
    # An empty WAL, so the next commit must grow it; then no room at all.
    server.db("PRAGMA wal_checkpoint(TRUNCATE)")
    assert (server.data / "minihost.sqlite-wal").stat().st_size == 0
    filler = Filler(small_disk)
    # Only the database grows here (the body stays in nginx's 64 KB buffer).
    r = requests.post(follow_up, headers=server.auth(credential),
                      json={"uploadId": upload_id, "app_payload": {"big": "x" * 50_000}})
    assert r.status_code == 507 and r.json() == {"error": "Insufficient storage"}, r.text
    assert "database full" in server.output()
    assert server.db("SELECT app_payload FROM minihost_uploads WHERE id = ?", upload_id) == [(None,)]
    filler.release()
    r = requests.post(follow_up, headers=server.auth(credential), json={"uploadId": upload_id, "app_payload": {"big": "y"}})
    assert r.status_code == 200 and r.json()["appPayload"] == {"big": "y"}
    assert run_cli("check", data=server.data).returncode == 0


def test_basic_html_upload_on_a_full_disk_is_the_json_507(make_server, small_disk):
    server = make_server(data=small_disk / "var")
    form = plain_user(server)
    filler = Filler(small_disk)
    # Under nginx's 1 MB buffer, so the refusal is the worker's, not nginx's temporary file's.
    r = requests.post(server.url("/api/basicHTMLUpload"), data=form, files={"file": ("a.bin", os.urandom(600_000))})
    assert r.status_code == 507 and r.json() == {"error": "Insufficient storage"}, r.text
    filler.release()
    r = requests.post(server.url("/api/basicHTMLUpload"), data=form, files={"file": ("a.bin", b"fits now")})
    assert r.status_code == 200, r.text
