"""`minihost push` and `minihost pull` against a real server, through a
proxy that cuts connections, and interrupted and run again."""
import hashlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import time

import requests
from conftest import BIN
from test_tus import CuttingProxy


def cli(server, credential, tmp_path, *args, base=None, check=True, wait=True, cwd=None):
    env = {**os.environ, "MINIHOST_CREDENTIAL": credential, "MINIHOST_SERVER": base or server.base,
           "XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    command = [str(BIN), *args]
    if not wait:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=cwd)
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
    assert "copy.txt: 100%" in pulled.stderr  # progress named after where it goes, not the id
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


def test_pull_never_replaces_a_file_the_server_named(server, tmp_path):
    credential = server.client()
    data = os.urandom(100_000)
    upload_id = server.upload(credential, data, name="notes.txt").json()["uploadId"]
    here = tmp_path / "here"
    here.mkdir()
    mine = here / "notes.txt"
    mine.write_bytes(b"my own notes")
    refused = cli(server, credential, tmp_path, "pull", upload_id, check=False, cwd=here)
    assert refused.returncode != 0 and "notes.txt exists" in refused.stderr and "-o" in refused.stderr
    assert mine.read_bytes() == b"my own notes" and sorted(p.name for p in here.iterdir()) == ["notes.txt"]
    mine.unlink()
    cli(server, credential, tmp_path, "pull", upload_id, cwd=here)
    assert mine.read_bytes() == data and sorted(p.name for p in here.iterdir()) == ["notes.txt"]
    # A path given with -o is the person's own choice, and replaces, as curl -o does.
    chosen = here / "chosen.txt"
    chosen.write_bytes(b"old")
    cli(server, credential, tmp_path, "pull", upload_id, "-o", str(chosen), cwd=here)
    assert chosen.read_bytes() == data


def test_push_on_a_terminal_redraws_one_line_that_fits(server, tmp_path):
    """What a person sees, in a real terminal (tmux, 60 columns): a file whose
    name is longer than the line and carries an escape sequence, sent at
    ~4 MB/s so the bar is watched as it moves."""
    credential = server.client()
    name = "holiday\x1b[2J-photos-from-the-summer-of-2026-every-one.tar"
    path = tmp_path / name
    data = os.urandom(12 * 1024 * 1024)
    path.write_bytes(data)
    relay = CuttingProxy(server.port, None, rate=4_000_000)
    tmux = ["tmux", "-u", "-L", f"minihost-push-{os.getpid()}-{relay.address[1]}", "-f", "/dev/null"]
    command = f"{shlex.quote(str(BIN))} push --patch-mb 1 {shlex.quote(str(path))}; echo EXIT=$?; sleep 120"
    environment = {"MINIHOST_CREDENTIAL": credential, "MINIHOST_SERVER": relay.url(""), "LC_ALL": "C.UTF-8",
                   "XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    frames = []
    try:
        subprocess.run([*tmux, "new-session", "-d", "-s", "push", "-x", "60", "-y", "20",
                        *[f"-e{key}={value}" for key, value in environment.items()], "sh", "-c", command],
                       check=True, env={**os.environ, "LC_ALL": "C.UTF-8"})
        deadline = time.time() + 90
        while time.time() < deadline and not (frames and "EXIT=" in frames[-1]):
            time.sleep(0.1)
            frames.append(subprocess.run([*tmux, "capture-pane", "-p", "-t", "push"], capture_output=True,
                                         text=True, check=True).stdout)
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
        relay.close()
    final = frames[-1]
    assert "EXIT=0" in final, final
    bar = re.compile(r"\[[#-]+\] (\d+)% \S+ \S+/s ETA \d\d:\d\d")
    percents = []
    for frame in frames:
        rows = [row for row in frame.splitlines() if bar.search(row)]
        # Redrawn in place: never a second row of bar, which a line wider
        # than the terminal leaves behind at every redraw.
        assert len(rows) <= 1, frame
        for row in rows:
            assert len(row) < 60, row
            percents.append(int(bar.search(row).group(1)))
    assert any(0 < percent < 100 for percent in percents) and percents[-1] == 100, percents
    shown = next(row for row in final.splitlines() if bar.search(row))
    # Shortened in the middle, its end kept; the escape shown, never obeyed
    # (a cleared screen would have lost the bar and the rows above it).
    assert shown.startswith("holiday?[") and "…" in shown and "one.tar [" in shown, shown
    assert final.splitlines()[1].startswith("holiday?[2J-photos-from-the-summer"), final
    answer = [row for row in final.splitlines() if "verified" in row or "(12582912 bytes" in row]
    assert answer, final
    assert uploads(server)[0][1:] == (len(data), hashlib.sha256(data).hexdigest())


def test_the_credential_file_is_read_only_when_no_one_else_can(server, tmp_path):
    credential = server.client()
    path = tmp_path / "a.txt"
    path.write_bytes(b"hello")
    config = tmp_path / "config" / "minihost"
    config.mkdir(parents=True)
    (config / "credential").write_text(credential + "\n")
    environment = {k: v for k, v in os.environ.items() if k != "MINIHOST_CREDENTIAL"} | {
        "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_STATE_HOME": str(tmp_path / "state")}
    push = [str(BIN), "push", "--json", "--server", server.base, str(path)]
    os.chmod(config / "credential", 0o644)
    refused = subprocess.run(push, env=environment, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "chmod 600" in refused.stderr and credential not in refused.stderr
    os.chmod(config / "credential", 0o600)
    answer = json.loads(subprocess.run(push, env=environment, capture_output=True, text=True, timeout=60,
                                       check=True).stdout)
    assert answer["sha256"] == hashlib.sha256(b"hello").hexdigest()


def test_retries_are_told_and_a_wrong_server_is_refused_at_once(server, tmp_path):
    credential = server.client()
    path = tmp_path / "a.txt"
    path.write_bytes(b"hello")
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    for args in (["push", str(path)], ["pull", "0" * 32, "-o", str(tmp_path / "b")]):
        started = time.monotonic()
        out = cli(server, credential, tmp_path, *args, "--retries", "2", base=f"http://127.0.0.1:{port}", check=False)
        assert out.returncode != 0 and time.monotonic() - started < 30
        notices = [line for line in out.stderr.splitlines() if "trying again in" in line]
        assert [n.split("(")[-1] for n in notices] == ["1 of 2)", "2 of 2)"], out.stderr
        assert "gave up after 2 retries" in out.stderr
        quiet = cli(server, credential, tmp_path, *args, "--retries", "1", "--quiet", base=f"http://127.0.0.1:{port}",
                    check=False)
        assert quiet.returncode != 0 and "trying again" not in quiet.stderr and "gave up after 1 retry" in quiet.stderr
    # Plain http to anything but this machine is said once (0.0.0.0 reaches this machine, but names none).
    warned = cli(server, credential, tmp_path, "push", str(path), "--retries", "0", base=f"http://0.0.0.0:{port}",
                 check=False)
    assert "warning: 0.0.0.0 is plain http" in warned.stderr and warned.stderr.count("warning") == 1
    assert "gave up" not in warned.stderr  # no retries asked for: just the reason
    assert "warning" not in out.stderr  # 127.0.0.1, above
    for wrong in ("ftp://127.0.0.1/", "127.0.0.1:8080", "http://"):
        started = time.monotonic()
        refused = cli(server, credential, tmp_path, "push", str(path), base=wrong, check=False)
        assert refused.returncode != 0 and "http:// or https:// URL" in refused.stderr and time.monotonic() - started < 5


def test_push_skips_files_it_cant_send_and_sends_the_rest(make_server, tmp_path):
    server = make_server({"MINIHOST_MAX_CHUNKED_MB": "1"})  # Tus-Max-Size: 1 MiB
    credential = server.client()
    small, other, large = tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "large.bin"
    small.write_bytes(b"first")
    other.write_bytes(b"second")
    large.write_bytes(os.urandom(2 * 1024 * 1024))
    out = cli(server, credential, tmp_path, "push", "--json", str(small), str(tmp_path / "missing.txt"), str(tmp_path),
              str(large), str(other), check=False)
    assert out.returncode != 0
    pushed = [json.loads(line) for line in out.stdout.splitlines()]
    assert [answer["name"] for answer in pushed] == ["a.txt", "b.txt"]
    assert sorted(size for _, size, _ in uploads(server)) == [5, 6]
    assert "missing.txt: No such file or directory" in out.stderr and "not a regular file" in out.stderr
    assert "413" in out.stderr and "3 of 5 files were not pushed" in out.stderr
    # A refused credential fails every file alike: the run stops at the first.
    stopped = cli(server, "nobody.secret", tmp_path, "push", str(small), str(other), check=False)
    assert stopped.returncode != 0 and "401" in stopped.stderr and "were not pushed" not in stopped.stderr
    assert stopped.stderr.count("refused") == 1
