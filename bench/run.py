#!/usr/bin/env python3
"""minihost benchmarks: every ratio is measured in one run on this machine,
both sides interleaved, with the same preparation for each, over several
rounds; each figure is the median with its spread (min-max).

  make bench                                     (release build, then about 15 minutes)
  python3 bench/run.py --size-mb 100 --seconds 3 --rounds 3 --slow 20 --pairs 3 --chunked-runs 3   (quick)
  python3 bench/run.py --save                    (also keeps the raw results in bench/results/latest.json)

Prints a table (targets marked met only when the median meets them) and
writes bench/out/results.json. See docs/BENCHMARKS.md for what each measures.
"""

import argparse
import base64
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from benchlib import (BIN, OUT, ROOT, Minihost, ReferenceNginx, RSSSampler, SlowUploader, WrkError, curl_tus_upload,
                      median, refresh, requests_chunked_upload, settle, split_file, summary, timed, tus_upload, wrk)


def rotated(steps, index):
    """The steps in a different order each run, so none always goes first or last."""
    shift = index % len(steps)
    return steps[shift:] + steps[:shift]


def measure_large_upload(server, reference, big, work, pairs):
    """Upload (minihost, uploader and skysend dialects) ÷ dd and ÷ nginx WebDAV PUT:
    rotated runs, each step after the same sync and pause, new content for
    every upload, the stored bytes read back.

    No step frees anything while the runs are timed: every step writes a
    new file and keeps it (dd and PUT to new names, s4 to a new key, skysend
    allowing the read-back). On this virtual machine a write whose page
    cache reuses memory a deleted file just freed runs up to 5× faster than
    one into memory the guest handed back to the host (docs/BENCHMARKS.md),
    so deleting dd's file after each run while the uploads kept theirs
    compared dd on warm memory with uploads on cold."""
    written = iter(range(1 << 30))

    def run_dd():
        target = work / "data" / f"dd-{next(written)}.bin"
        return timed(["dd", f"if={big}", f"of={target}", "bs=1M", "conv=fsync"], capture_output=True)

    def run_put():
        return timed(["curl", "-sS", "-f", "-T", str(big), f"{reference.base}/dav/big-{next(written)}.bin"])

    def timed_upload(send, stored_sha256):
        """New content, a settle, then `send` timed; the stored bytes checked after."""
        def step():
            expected = refresh(big)
            settle()
            start = time.perf_counter()
            answer = send(big)
            seconds = time.perf_counter() - start
            assert stored_sha256(answer) == expected, "the stored bytes differ"
            return seconds
        return step

    def minihost_stored(answer):
        stored = server.downloaded_sha256(answer["uploadId"])
        assert answer["sha256"] == stored, "the upload's reported hash differs from its bytes"
        return stored

    run_upload = timed_upload(server.upload, minihost_stored)
    run_uploader_upload = timed_upload(server.uploader_upload,
                                       lambda answer: server.stored_sha256(f"{server.base}/file/{answer['file_url']}"))

    run_s4_upload = timed_upload(lambda path: server.s4_upload(path, key=f"big-{next(written)}.bin"),
                                 lambda answer: server.stored_sha256(
                                     answer["download"], {"Authorization": f"Bearer {server.s4_login()}"}))

    run_skysend_upload = timed_upload(server.skysend_upload, lambda answer: server.stored_sha256(
        f"{server.base}/api/download/{answer['id']}", {"X-Auth-Token": answer["auth_token"]}))

    def prepared(run):
        def step():
            settle()
            return run()
        return step

    steps = [("dd", prepared(run_dd)), ("put", prepared(run_put)), ("upload", run_upload),
             ("uploader", run_uploader_upload), ("skysend", run_skysend_upload), ("s4", run_s4_upload)]
    runs = []
    server.s4_login()  # a login is a scrypt (128 MiB): not inside the sampled uploads
    with RSSSampler(server) as rss:
        for index in range(pairs):
            measured = {}
            for name, run in rotated(steps, index):
                measured[name] = run()
            runs.append(measured)
    return {
        "runs_s": runs,
        "upload_s": summary([r["upload"] for r in runs]),
        "dd_s": summary([r["dd"] for r in runs]),
        "put_s": summary([r["put"] for r in runs]),
        "upload_over_dd": summary([r["upload"] / r["dd"] for r in runs]),
        "upload_over_put": summary([r["upload"] / r["put"] for r in runs]),
        "uploader_s": summary([r["uploader"] for r in runs]),
        "uploader_over_dd": summary([r["uploader"] / r["dd"] for r in runs]),
        "skysend_s": summary([r["skysend"] for r in runs]),
        "skysend_over_dd": summary([r["skysend"] / r["dd"] for r in runs]),
        "s4_s": summary([r["s4"] for r in runs]),
        "s4_over_dd": summary([r["s4"] / r["dd"] for r in runs]),
        "peak_worker_rss_mb": rss.peak_mb,
    }


def measure_tmpfs_upload(workers, pairs, size_mb=256):
    """The worker path against nginx's own, with the disk taken out: data
    folder, source file and a reference nginx all on tmpfs (/dev/shm). A
    multipart upload against nginx's WebDAV PUT of the same bytes, rotated,
    new content for every upload, the stored bytes read back. As on disk,
    nothing is freed until the runs end (tmpfs is memory, and a write into
    memory just freed runs several times faster on this machine: the PUT
    that deleted its file after each run measured 0.38-1.31 s)."""
    root = Path(tempfile.mkdtemp(prefix="minihost-bench-", dir="/dev/shm"))
    try:
        source = root / "source.bin"
        with open(source, "wb") as f:
            for _ in range(size_mb):
                f.write(os.urandom(1 << 20))
        server = Minihost(root / "data", workers)
        reference = ReferenceNginx(root / "ref")
        try:
            written = iter(range(1 << 30))

            def run_put():
                return timed(["curl", "-sS", "-f", "-T", str(source), f"{reference.base}/dav/big-{next(written)}.bin"])

            def run_upload():
                expected = refresh(source)
                start = time.perf_counter()
                answer = server.upload(source)
                seconds = time.perf_counter() - start
                assert server.downloaded_sha256(answer["uploadId"]) == expected, "the stored bytes differ"
                return seconds

            runs = []
            for index in range(pairs):
                runs.append({name: run() for name, run in rotated([("put", run_put), ("upload", run_upload)], index)})
        finally:
            server.stop()
            reference.stop()
    finally:
        subprocess.run(["rm", "-rf", str(root)])
    return {
        "tmpfs_runs_s": runs,
        "tmpfs_upload_s": summary([r["upload"] for r in runs]),
        "tmpfs_put_s": summary([r["put"] for r in runs]),
        "tmpfs_upload_over_put": summary([r["upload"] / r["put"] for r in runs]),
    }


def measure_requests(server, reference, work, seconds, rounds):
    """Requests/s at 32 connections: health, the authed 1 KB download, the
    public cache URL and nginx static, interleaved in rotated order each
    round; each ratio is the median of its per-round ratios."""
    small = work / "one-kb.bin"
    small.write_bytes(os.urandom(1024))
    small_id = server.upload(small)["uploadId"]
    subprocess.run(["curl", "-sf", "-H", server.auth(), "-H", "Content-Type: application/json", "-d",
                    json.dumps({"upload_id": small_id}), server.base + "/api/minihost/publishing_upload"],
                   check=True, capture_output=True)
    (reference.root / "www" / "static" / "one-kb.bin").write_bytes(small.read_bytes())
    server.wait_served_by_nginx(f"{server.base}/minihost/cache/{small_id}")
    reference.send_headers(route_added_headers(f"{server.base}/minihost/cache/{small_id}"))
    targets = {
        "health": (server.base + "/api/health", []),
        "download": (f"{server.base}/api/minihost/download?id={small_id}", [server.auth()]),
        "cache": (f"{server.base}/minihost/cache/{small_id}", []),
        "static": (f"{reference.base}/static/one-kb.bin", []),
        "static_headers": (f"{reference.base}/static-headers/one-kb.bin", []),
        # The public location doesn't use sendfile; this is static given the same.
        "static_no_sendfile": (f"{reference.base}/static-no-sendfile/one-kb.bin", []),
    }
    samples = {name: [] for name in targets}
    latency = {name: [] for name in targets}
    for index in range(rounds):
        for name, (url, headers) in rotated(list(targets.items()), index):
            report = wrk(url, seconds, headers)
            samples[name].append(report["rps"])
            latency[name].append(report["latency_us"]["p99"])
    return {
        **{f"{name}_rps": summary(values) for name, values in samples.items()},
        **{f"{name}_p99_us": summary(values) for name, values in latency.items()},
        "download_over_health": summary([d / h for d, h in zip(samples["download"], samples["health"])]),
        "cache_over_static": summary([c / s for c, s in zip(samples["cache"], samples["static"])]),
        "cache_over_static_headers": summary([c / s for c, s in zip(samples["cache"], samples["static_headers"])]),
        "static_headers_over_static_no_sendfile": summary([h / s for h, s in zip(samples["static_headers"],
                                                                                  samples["static_no_sendfile"])]),
        "cache_over_static_no_sendfile": summary([c / s for c, s in zip(samples["cache"], samples["static_no_sendfile"])]),
        "static_no_sendfile_over_static": summary([n / s for n, s in zip(samples["static_no_sendfile"], samples["static"])]),
    }


def route_added_headers(url):
    """The headers a public route adds to what nginx sends for any static
    file, as (name, nginx value) pairs, read from one real answer: the
    yardstick for what answering header for header costs nginx."""
    response = requests.get(url)
    response.raise_for_status()
    own = {"server", "date", "content-type", "content-length", "last-modified", "connection", "etag",
           "accept-ranges", "keep-alive"}
    added = []
    for name, value in response.headers.items():
        if name.lower() in own:
            continue
        # The id nginx gives a public hit, built the same way per request.
        if name.lower() == "x-request-id":
            added.append((name, "$pid-$connection-$connection_requests"))
        else:
            assert "$" not in value, (name, value)  # nginx would read a variable
            added.append((name, '"' + value.replace('\\', '\\\\').replace('"', '\\"') + '"'))
    return added


def measure_small_uploads(work, workers, seconds, rounds):
    """What synchronous=FULL costs: 1 KB uploads/s through wrk (the same bytes,
    so each is a row commit plus a temporary file) against a second server with
    synchronous=NORMAL, interleaved rounds."""
    body = ("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"s.bin\"\r\n\r\n" + "x" * 1024
            + "\r\n--b--\r\n")
    servers = {"full": Minihost(work / "sync-full", workers),
               "normal": Minihost(work / "sync-normal", workers, env={"MINIHOST_SQLITE_SYNCHRONOUS": "normal"})}
    samples = {name: [] for name in servers}
    try:
        for index in range(rounds):
            for name, server in rotated(list(servers.items()), index):
                settle()
                report = wrk(server.base + "/api/minihost/upload", seconds,
                             [server.auth(), "Content-Type: multipart/form-data; boundary=b"], connections=8,
                             method="POST", body=body)
                samples[name].append(report["rps"])
    finally:
        for server in servers.values():
            server.stop()
    return {
        "small_upload_full_rps": summary(samples["full"]),
        "small_upload_normal_rps": summary(samples["normal"]),
        "small_upload_full_over_normal": summary([f / n for f, n in zip(samples["full"], samples["normal"])]),
    }


def measure_slow_uploaders(server, work, slow):
    """A 10 MB upload and its download, idle and while `slow` uploaders send
    1 KB/s each (every one checked to be connected and sending throughout).
    New content for every upload."""
    ten = work / "ten.bin"
    ten.write_bytes(os.urandom(10 << 20))

    def normal_round():
        expected = refresh(ten)
        start = time.perf_counter()
        upload_id = server.upload(ten)["uploadId"]
        subprocess.run(["curl", "-sS", "-f", "-o", "/dev/null", "-H", server.auth(),
                        f"{server.base}/api/minihost/download?id={upload_id}"], check=True, timeout=120)
        seconds = time.perf_counter() - start
        assert server.downloaded_sha256(upload_id) == expected
        return seconds

    idle = [normal_round() for _ in range(3)]
    uploaders = [SlowUploader(server.port, server.credential) for _ in range(slow)]
    time.sleep(3)
    before = [u.sent for u in uploaders]
    loaded = [normal_round() for _ in range(3)]
    time.sleep(0.5)
    sending = sum(1 for u, sent in zip(uploaders, before) if u.connected and u.sent > sent)
    for uploader in uploaders:
        uploader.finish()
    if sending != slow:
        raise RuntimeError(f"only {sending} of {slow} slow uploaders kept sending during the measurement")
    return {
        "idle_round_s": summary(idle),
        "loaded_round_s": summary(loaded),
        "slow_uploaders_sending": sending,
        # The worst loaded round against the best idle one: the strictest reading.
        "loaded_over_idle": max(loaded) / min(idle),
    }


def ensure_bench_user(server):
    """The plain-dialect user the chunked and password measures share."""
    if not any(line.split("\t")[0] == "bench" for line in server.cli("user", "list").splitlines()):
        server.cli("user", "create", "bench", "--password-stdin", stdin="bench primary password\n")


def measure_chunked(server, big, runs):
    """500 MB in 8 MiB chunks, 4 in parallel, by Python requests (target) and
    the example script (reported), against the single-request upload, in
    rotated order; every step gets new content, a sync and a pause, and its
    stored bytes are read back. Each chunked run uses a new secondary password,
    so it pays one cold scrypt as a script starting fresh does."""
    ensure_bench_user(server)
    script = ROOT / "docs" / "examples" / "plain-resumable-upload.sh"

    def new_secondary():
        return server.cli("user", "secondary", "create", "bench", f"run-{os.urandom(4).hex()}").splitlines()[-1]

    def run_single():
        expected = refresh(big)
        settle()
        start = time.perf_counter()
        answer = server.upload(big)
        seconds = time.perf_counter() - start
        assert server.downloaded_sha256(answer["uploadId"]) == expected
        return seconds

    def run_script():
        expected = refresh(big)
        env = {**os.environ, "MINIHOST_URL": server.base, "MINIHOST_USER": "bench", "MINIHOST_PASSWORD": new_secondary(),
               "CHUNK_MB": "8", "PARALLEL": "4"}
        settle()
        start = time.perf_counter()
        out = subprocess.run(["bash", str(script), str(big)], env=env, capture_output=True, text=True, check=True).stdout
        seconds = time.perf_counter() - start
        raw = next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("Raw: "))
        assert server.stored_sha256(raw) == expected, "chunked bytes differ"
        return seconds

    def run_requests():
        expected = refresh(big)
        password = new_secondary()
        settle()
        start = time.perf_counter()
        raw = requests_chunked_upload(server.base, "bench", password, big)
        seconds = time.perf_counter() - start
        assert server.stored_sha256(raw) == expected, "chunked bytes differ"
        return seconds

    steps = [("single", run_single), ("script", run_script), ("requests", run_requests)]
    measured = []
    for index in range(runs):
        measured.append({name: run() for name, run in rotated(steps, index)})
    return {
        "chunked_runs_s": measured,
        "chunked_requests_over_single": summary([m["requests"] / m["single"] for m in measured]),
        "chunked_script_over_single": summary([m["script"] / m["single"] for m in measured]),
    }


def measure_tus(server, big, runs):
    """500 MB over tus in 8 MiB PATCHes, one after another on a keep-alive
    connection, from one curl process (the target: curl sends the single
    upload too) and from Python requests (reported; tuspy sends the same
    requests, each on a new connection),
    and by `minihost push`
    (4 parallel partial uploads, joined), against the single multipart
    upload, in rotated order; new content, a sync and a pause before each,
    the stored bytes read back.

    The parallel push deletes its partial uploads at the end, handing the
    next step page-cache memory that is still warm, which this virtual
    machine writes up to 5× faster than cold memory (docs/BENCHMARKS.md); an
    untimed file of the same size, kept, takes it up first so every step
    writes into the same kind of memory."""
    ballast = iter(range(1 << 30))

    def take_up_freed_memory():
        time.sleep(3)  # the server unlinks a purged blob 2 s after the purge
        subprocess.run(["dd", f"if={big}", f"of={big.parent / f'ballast-{next(ballast)}.bin'}", "bs=1M",
                        "conv=fsync"], check=True, capture_output=True)

    def run(send, frees_memory=False, prepare=None):
        def step():
            expected = refresh(big)
            if prepare:
                prepare()
            settle()
            start = time.perf_counter()
            upload_id = send()
            seconds = time.perf_counter() - start
            assert server.downloaded_sha256(upload_id) == expected, "stored bytes differ"
            if frees_memory:
                take_up_freed_memory()
            return seconds
        return step

    state = Path(tempfile.mkdtemp(prefix="push-state-", dir=OUT))

    def push(*options):
        env = {**os.environ, "MINIHOST_CREDENTIAL": server.credential, "MINIHOST_SERVER": server.base,
               "XDG_STATE_HOME": str(state)}
        out = subprocess.run([str(BIN), "push", "--quiet", "--json", *options, str(big)], env=env, capture_output=True,
                             text=True, check=True).stdout
        return json.loads(out)["id"]

    # curl sends the PATCHes from 8 MiB pieces cut untimed beforehand (it
    # can't send part of a file), all on one connection.
    pieces, pieces_folder = [], big.parent / "tus-pieces"

    def cut():
        pieces[:] = split_file(big, pieces_folder)

    steps = [("single", run(lambda: server.upload(big)["uploadId"])),
             ("tus", run(lambda: tus_upload(server.base, server.credential, big))),
             ("tus_curl", run(lambda: curl_tus_upload(server.base, server.credential, pieces), prepare=cut)),
             ("push", run(push)), ("push_parallel", run(lambda: push("--parallel-mb", "64"), frees_memory=True))]
    measured = []
    try:
        for index in range(runs):
            measured.append({name: step() for name, step in rotated(steps, index)})
    finally:
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(pieces_folder, ignore_errors=True)
    return {
        "tus_runs_s": measured,
        "tus_over_single": summary([m["tus"] / m["single"] for m in measured]),
        "tus_curl_over_single": summary([m["tus_curl"] / m["single"] for m in measured]),
        "push_over_single": summary([m["push"] / m["single"] for m in measured]),
        "push_parallel_over_single": summary([m["push_parallel"] / m["single"] for m in measured]),
    }


def fill_s4_bucket(database: Path, bucket: str, keys):
    """Rows for `keys` in `bucket`, each a copy of the bucket's one real
    object's upload (same blob): what a million uploads would leave, in
    seconds instead of hours."""
    import sqlite3
    with sqlite3.connect(database, timeout=60) as db:
        template = db.execute("SELECT u.* FROM minihost_uploads u JOIN minihost_s4_objects o ON o.upload_id = u.id "
                              "WHERE o.bucket = ?", (bucket,)).fetchone()
        columns = [c[1] for c in db.execute("PRAGMA table_xinfo(minihost_uploads)") if c[6] == 0]
        row = dict(zip(columns, template))
        insert = f"INSERT INTO minihost_uploads ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        uploads, objects = [], []
        now_ms = int(time.time() * 1000)
        for index, key in enumerate(keys):
            upload_id = f"{index:032x}"
            uploads.append([upload_id if c == "id" else row[c] for c in columns])
            objects.append((bucket, key, upload_id, row["size"], row["sha256"], now_ms))
        db.executemany(insert, uploads)
        db.executemany("INSERT INTO minihost_s4_objects (bucket, key, upload_id, size, etag, last_modified_ms) "
                       "VALUES (?, ?, ?, ?, ?, ?)", objects)


def measure_s4_listing(work, workers, samples=40):
    """A bucket of 1,000,000 keys: 900,000 flat under `flat/` and 100,000 in
    1,000 folders under `tree/`. Latency of a 500-key page at the start and
    deep into `flat/` (continuation at key 899,000), and of the first page of
    `tree/` (500 common prefixes, one index seek each): on the worker (its
    request log's duration, matched by request id) and at the client
    through nginx, interleaved, `samples` of each."""
    import re
    server = Minihost(work / "s4-data", workers, env={"MINIHOST_LOG_LEVEL": "info"}, log_name="minihost-s4.log")
    try:
        token = server.s4_login()
        headers = {"Authorization": f"Bearer {token}"}
        seed = work / "seed.txt"
        seed.write_text("seed")
        server.s4_upload(seed)
        keys = [f"flat/obj-{i:07d}" for i in range(900_000)] + [f"tree/dir-{i // 100:04d}/obj-{i:07d}" for i in range(100_000)]
        started = time.perf_counter()
        fill_s4_bucket(server.data / "minihost.sqlite", "bench", keys)
        fill_seconds = time.perf_counter() - started
        encode = lambda text: base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()
        pages = {
            "first": (f"/api/objects/bench/{encode('flat/')}", {"maxKeys": 500}),
            "deep": (f"/api/objects/bench/{encode('flat/')}",
                     {"maxKeys": 500, "continuationToken": encode("o:flat/obj-0899000")}),
            "prefixes": (f"/api/objects/bench/{encode('tree/')}", {"maxKeys": 500}),
        }
        client = {name: [] for name in pages}
        ids = {name: [] for name in pages}
        with requests.Session() as session:
            for _ in range(3):  # warm the page cache and the statement caches
                for path, params in pages.values():
                    session.get(server.base + path, params=params, headers=headers).raise_for_status()
            for index in range(samples):
                for name, (path, params) in rotated(list(pages.items()), index):
                    start = time.perf_counter()
                    answer = session.get(server.base + path, params=params, headers=headers)
                    client[name].append((time.perf_counter() - start) * 1000)
                    answer.raise_for_status()
                    body = answer.json()
                    assert len(body["objects"]) + len(body["prefixes"]) == 500, (name, body["isTruncated"])
                    ids[name].append(answer.headers["X-Request-Id"])
            # A contains search scans every key under the prefix: 3 samples (5 a minute are allowed).
            ids["contains"] = []
            for _ in range(3):
                answer = session.get(server.base + pages["first"][0], params={"q": "obj-089999", "mode": "contains"},
                                     headers=headers)
                answer.raise_for_status()
                assert len(answer.json()["objects"]) == 10
                ids["contains"].append(answer.headers["X-Request-Id"])
        log = (OUT / "minihost-s4.log").read_text()
        durations = {}
        for line in log.splitlines():
            request_id, ms = re.search(r"request_id=([0-9a-f]+)", line), re.search(r"duration_ms=([0-9.]+)", line)
            if request_id and ms:
                durations[request_id.group(1)] = float(ms.group(1))
        worker = {name: [durations[i] for i in ids[name] if i in durations] for name in ids}
        assert all(len(worker[name]) == samples for name in pages), {name: len(v) for name, v in worker.items()}
    finally:
        server.stop()
    return {
        "s4_list_fill_s": round(fill_seconds, 1),
        "s4_list_first_worker_ms": summary(worker["first"]),
        "s4_list_deep_worker_ms": summary(worker["deep"]),
        "s4_list_prefixes_worker_ms": summary(worker["prefixes"]),
        "s4_contains_search_worker_ms": summary(worker["contains"]),
        "s4_list_first_client_ms": summary(client["first"]),
        "s4_list_deep_client_ms": summary(client["deep"]),
        "s4_list_prefixes_client_ms": summary(client["prefixes"]),
    }


def measure_password_checks(server, seconds):
    """cliCheckCredentials at 16 connections: one password again and again
    (remembered after one scrypt), and a wrong one (a full scrypt N=2^17 each,
    401 every time), with the latency distribution and the worker's peak RSS.
    The wrong-password load queues for scrypt, so wrk waits up to 30 s."""
    ensure_bench_user(server)
    secondary = server.cli("user", "secondary", "create", "bench", f"checks-{os.urandom(4).hex()}").splitlines()[-1]
    results = {}
    for name, password, status in [("check_credentials", secondary, 200),
                                   ("check_wrong_password", secondary[:-4] + "0000", 401)]:
        with RSSSampler(server) as rss:
            report = wrk(server.base + "/api/cliCheckCredentials", seconds, connections=16, timeout="30s", method="POST",
                         body=f"username=bench&password={password}", count_statuses=True, expect_status=status)
        results[f"{name}_rps"] = report["rps"]
        results[f"{name}_statuses"] = report["statuses"]
        results[f"{name}_latency_us"] = report["latency_us"]
        results[f"{name}_peak_rss_mb"] = rss.peak_mb
    return results


TARGETS = [
    # (label, key, comparison, target); "report" rows have no target.
    ("upload ÷ dd", "upload_over_dd", "<=", 1.3),
    ("upload ÷ nginx WebDAV PUT", "upload_over_put", None, None),
    ("uploader-dialect upload ÷ dd", "uploader_over_dd", "<=", 1.3),
    ("skysend-dialect raw upload ÷ dd", "skysend_over_dd", "<=", 1.3),
    ("s4 object upload ÷ dd", "s4_over_dd", "<=", 1.3),
    ("s4 list, 1M keys: first page of 500, worker (ms)", "s4_list_first_worker_ms", "<=", 5),
    ("s4 list, 1M keys: deep page (key 899,000), worker (ms)", "s4_list_deep_worker_ms", "<=", 5),
    ("s4 list, 1M keys: 500 common prefixes, worker (ms)", "s4_list_prefixes_worker_ms", None, None),
    ("s4 contains search over 900,000 keys, worker (ms)", "s4_contains_search_worker_ms", None, None),
    ("s4 list, 1M keys: first page, client via nginx (ms)", "s4_list_first_client_ms", None, None),
    ("s4 list, 1M keys: deep page, client via nginx (ms)", "s4_list_deep_client_ms", None, None),
    ("s4 list, 1M keys: 500 prefixes, client via nginx (ms)", "s4_list_prefixes_client_ms", None, None),
    ("256 MB upload ÷ nginx PUT, all on tmpfs", "tmpfs_upload_over_put", "<=", 1.3),
    ("peak worker RSS during the uploads (MB)", "peak_worker_rss_mb", "<=", 64),
    ("idle worker RSS after the mixed load (MB)", "idle_worker_rss_after_load_mb", "<=", 64),
    ("authed 1 KB download ÷ health (req/s)", "download_over_health", ">=", 0.85),
    ("public cache 1 KB ÷ nginx static (req/s)", "cache_over_static", ">=", 0.9),
    ("public cache 1 KB ÷ nginx static adding the route's headers", "cache_over_static_headers", None, None),
    ("nginx static adding the route's headers ÷ nginx static, both without sendfile",
     "static_headers_over_static_no_sendfile", None, None),
    ("public cache 1 KB ÷ nginx static without sendfile", "cache_over_static_no_sendfile", None, None),
    ("nginx static without sendfile ÷ nginx static", "static_no_sendfile_over_static", None, None),
    ("1 KB uploads/s, synchronous FULL ÷ NORMAL", "small_upload_full_over_normal", None, None),
    ("10 MB upload+download, slow uploaders ÷ idle (worst ÷ best)", "loaded_over_idle", "<=", 2),
    ("chunks 8 MiB x4, requests ÷ single upload", "chunked_requests_over_single", "<=", 1.5),
    ("chunks 8 MiB x4, example script ÷ single", "chunked_script_over_single", None, None),
    # The target is the server's: the same client (curl) on both sides.
    # Python requests alone adds ~20 % of a single upload (docs/BENCHMARKS.md).
    ("tus, 8 MiB PATCHes in order from one curl process ÷ single upload", "tus_curl_over_single", "<=", 1.2),
    ("tus, the same PATCHes from Python requests ÷ single upload", "tus_over_single", None, None),
    ("minihost push ÷ single upload", "push_over_single", "<=", 1.2),
    ("minihost push, 4 parallel parts joined ÷ single upload", "push_parallel_over_single", None, None),
    ("cliCheckCredentials req/s, 16 conn, same password", "check_credentials_rps", None, None),
    ("cliCheckCredentials req/s, 16 conn, wrong password", "check_wrong_password_rps", None, None),
    ("peak worker RSS, wrong-password checks (MB)", "check_wrong_password_peak_rss_mb", None, None),
]


def verdicts(results):
    rows = []
    for label, key, comparison, target in TARGETS:
        if key not in results:
            continue
        value = results[key]
        figure = value["median"] if isinstance(value, dict) else value
        spread = f"{value['min']:.2f}-{value['max']:.2f}" if isinstance(value, dict) else ""
        if comparison is None:
            verdict = "report"
        else:
            met = figure <= target if comparison == "<=" else figure >= target
            verdict = f"{comparison} {target}: {'met' if met else 'MISSED'}"
        rows.append((label, figure, spread, verdict))
    return rows


MEASUREMENTS = ["upload", "tmpfs", "requests", "slow", "chunked", "tus", "passwords", "small", "s4list"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per sample")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved wrk rounds per ratio")
    parser.add_argument("--workers", type=int, default=128)
    parser.add_argument("--slow", type=int, default=100)
    parser.add_argument("--pairs", type=int, default=6, help="rotated dd / PUT / upload runs")
    # Seven: single tus runs range 1.0-1.6 × the single upload on this host,
    # and seven-run medians of one build ranged 1.11-1.35.
    parser.add_argument("--chunked-runs", type=int, default=7,
                        help="rotated runs of the chunked and the tus measures")
    parser.add_argument("--save", action="store_true", help="also write bench/results/latest.json")
    parser.add_argument("--only", nargs="+", choices=MEASUREMENTS, help="run only these measurements (while iterating)")
    args = parser.parse_args()

    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=OUT))
    results = {"meta": {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                        "machine": f"{platform.machine()}, {os.cpu_count()} cores", "binary": str(BIN),
                        "commit": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                                 capture_output=True, text=True).stdout.strip(),
                        "arguments": vars(args)}}
    big = work / "big.bin"
    with open(big, "wb") as f:
        for _ in range(args.size_mb):
            f.write(os.urandom(1 << 20))
    server = Minihost(work / "data", args.workers)
    reference = ReferenceNginx(work / "ref")
    chosen = set(args.only or MEASUREMENTS)
    try:
        if "upload" in chosen:
            results.update(measure_large_upload(server, reference, big, work, args.pairs))
        if "requests" in chosen:
            results.update(measure_requests(server, reference, work, args.seconds, args.rounds))
        if "slow" in chosen:
            results.update(measure_slow_uploaders(server, work, args.slow))
        if "chunked" in chosen:
            results.update(measure_chunked(server, big, args.chunked_runs))
        if "tus" in chosen:
            results.update(measure_tus(server, big, args.chunked_runs))
        if "passwords" in chosen:
            results.update(measure_password_checks(server, args.seconds))
        # What the worker keeps once the load is gone (glibc returns freed
        # arenas lazily; a pause lets trimming happen as it would in service).
        time.sleep(10)
        results["idle_worker_rss_after_load_mb"] = round(server.rss_kb() / 1024, 1)
    finally:
        server.stop()
        reference.stop()
    if "tmpfs" in chosen:
        results.update(measure_tmpfs_upload(args.workers, args.pairs))
    try:
        if "s4list" in chosen:
            results.update(measure_s4_listing(work, args.workers))
        if "small" in chosen:
            results.update(measure_small_uploads(work, args.workers, args.seconds, args.rounds))
    finally:
        subprocess.run(["rm", "-rf", str(work)])

    text = json.dumps(results, indent=2)
    (OUT / "results.json").write_text(text)
    if args.save:
        (ROOT / "bench" / "results").mkdir(exist_ok=True)
        (ROOT / "bench" / "results" / "latest.json").write_text(text + "\n")
    print(f"\nminihost bench ({args.size_mb} MB file, {args.workers} workers, wrk 32 connections, "
          f"{args.rounds} rounds x {args.seconds} s)")
    for label, figure, spread, verdict in verdicts(results):
        print(f"  {label:<62} {figure:9.2f}  {spread:>13}   {verdict}")
    print(f"\nraw results: {OUT / 'results.json'}")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except WrkError as error:
        print(f"benchmark refused: {error}", file=sys.stderr)
        sys.exit(2)
