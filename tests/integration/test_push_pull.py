"""`minihost push` and `minihost pull` against a real server, through a
proxy that cuts connections, and interrupted and run again."""
import hashlib
import json
import os
import signal
import subprocess
import time

import requests
from conftest import BIN
from test_tus import CuttingProxy


def cli(server, credential, tmp_path, *args, base=None, check=True, wait=True):
    env = {**os.environ, "MINIHOST_CREDENTIAL": credential, "MINIHOST_SERVER": base or server.base,
           "XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    command = [str(BIN), *args]
    if not wait:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def uploads(server):
    return server.db("SELECT id, size, sha256 FROM minihost_uploads WHERE state = 'ready'")


def test_push_verifies_and_pull_downloads(server, tmp_path):
    credential = server.client()
    data = os.urandom(300_000)
    path = tmp_path / "notes.txt"
    path.write_bytes(data)
    out = cli(server, credential, tmp_path, "push", "--json", str(path))
    answer = json.loads(out.stdout)
    assert answer["size"] == len(data) and answer["sha256"] == hashlib.sha256(data).hexdigest() and not answer["resumed"]
    assert answer["download"] == server.url(f"/api/minihost/download?id={answer['id']}")
    got = requests.get(answer["download"], headers=server.auth(credential))
    assert got.content == data and 'filename="notes.txt"' in got.headers["Content-Disposition"]
    assert got.headers["Content-Type"].startswith("text/plain")
    # Not a terminal: plain progress lines, ending at 100 %.
    assert "notes.txt: 100%" in out.stderr
    # No credential in argv and nothing left in the state folder.
    assert not list((tmp_path / "state" / "minihost" / "push").glob("*.json"))

    target = tmp_path / "copy.txt"
    pulled = cli(server, credential, tmp_path, "pull", answer["id"], "-o", str(target))
    assert target.read_bytes() == data and "verified" in pulled.stdout
    refused = cli(server, credential, tmp_path, "pull", "0" * 32, "-o", str(tmp_path / "x"), check=False)
    assert refused.returncode != 0 and "404" in refused.stderr
    missing = subprocess.run([str(BIN), "push", str(path), "--server", server.base], capture_output=True, text=True,
                             env={k: v for k, v in os.environ.items() if k != "MINIHOST_CREDENTIAL"} | {
                                 "XDG_CONFIG_HOME": str(tmp_path / "empty")})
    assert missing.returncode != 0 and "MINIHOST_CREDENTIAL" in missing.stderr


def test_push_through_cut_connections_resumes_and_joins_parts(server, tmp_path):
    credential = server.client()
    data = os.urandom(12 * 1024 * 1024 + 5)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    # Every one of the first 6 connections is cut after 1.5 MB of request.
    proxy = CuttingProxy(server.port, 1_500_000, times=6)
    try:
        out = cli(server, credential, tmp_path, "push", "--json", "--parallel", "3", "--parallel-mb", "4",
                  "--patch-mb", "2", str(path), base=proxy.url(""))
    finally:
        proxy.close()
    assert proxy.cuts >= 3, proxy.cuts
    answer = json.loads(out.stdout)
    assert answer["sha256"] == hashlib.sha256(data).hexdigest()
    # One upload: the joined one; the partial uploads were removed.
    assert uploads(server) == [(answer["id"], len(data), answer["sha256"])]


def test_push_interrupted_and_run_again_gives_one_upload(server, tmp_path):
    credential = server.client()
    data = os.urandom(24 * 1024 * 1024)
    path = tmp_path / "video.mp4"
    path.write_bytes(data)
    # A slow lane: the proxy cuts nothing, but the push is killed mid-way.
    first = cli(server, credential, tmp_path, "push", "--json", "--parallel", "2", "--parallel-mb", "4", "--patch-mb", "1",
                str(path), wait=False)
    deadline = time.time() + 30
    while time.time() < deadline:
        received = server.db("SELECT COALESCE(SUM(size), 0) FROM minihost_upload_session_chunks")[0][0]
        if received >= 4 * 1024 * 1024:
            break
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert uploads(server) == [], "killed before the end"
    second = cli(server, credential, tmp_path, "push", "--json", "--parallel", "2", "--parallel-mb", "4", "--patch-mb", "1",
                 str(path))
    answer = json.loads(second.stdout)
    assert answer["resumed"] and answer["sha256"] == hashlib.sha256(data).hexdigest()
    assert uploads(server) == [(answer["id"], len(data), answer["sha256"])]
    sessions = server.db("SELECT count(*) FROM minihost_upload_sessions WHERE state = 'open'")[0][0]
    assert sessions == 0


def test_pull_resumes_after_a_cut_and_after_an_interruption(server, tmp_path):
    credential = server.client()
    data = os.urandom(5 * 1024 * 1024)
    upload_id = server.upload(credential, data, name="data.bin").json()["uploadId"]
    proxy = CuttingProxy(server.port, 2 * 1024 * 1024, responses=True, times=2)
    target = tmp_path / "data.bin"
    try:
        out = cli(server, credential, tmp_path, "pull", upload_id, "-o", str(target), base=proxy.url(""))
    finally:
        proxy.close()
    assert proxy.cuts >= 1 and target.read_bytes() == data, out.stderr
    # A .part left by an earlier run is continued, and checked.
    partial = tmp_path / "again.bin.part"
    partial.write_bytes(data[:1234567])
    out = cli(server, credential, tmp_path, "pull", upload_id, "-o", str(tmp_path / "again.bin"))
    assert (tmp_path / "again.bin").read_bytes() == data and "resumed" in out.stdout and not partial.exists()
    # A .part holding other bytes fails the check and is removed, never renamed into place.
    wrong = tmp_path / "again2.bin.part"
    wrong.write_bytes(b"x" * 1000)
    bad = cli(server, credential, tmp_path, "pull", upload_id, "-o", str(tmp_path / "again2.bin"), check=False)
    assert bad.returncode != 0 and "SHA-256" in bad.stderr
    assert not wrong.exists() and not (tmp_path / "again2.bin").exists()


def test_push_sends_the_credential_only_to_the_server_it_was_given(make_server, tmp_path):
    """A server whose public origin differs (behind a proxy) names upload URLs
    there; push keeps talking to the server it was given."""
    server = make_server({"MINIHOST_PUBLIC_ORIGIN": "https://elsewhere.invalid"})
    credential = server.client()
    path = tmp_path / "a.bin"
    path.write_bytes(os.urandom(70_000))
    created = requests.post(server.url("/api/tus"), headers={"Tus-Resumable": "1.0.0", **server.auth(credential),
                                                            "Upload-Length": "1"})
    assert created.headers["Location"].startswith("https://elsewhere.invalid/api/tus/")
    answer = json.loads(cli(server, credential, tmp_path, "push", "--json", str(path)).stdout)
    assert answer["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
