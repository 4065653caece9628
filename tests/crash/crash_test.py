#!/usr/bin/env python3
"""Crash consistency: `kill -9` the worker process at random moments while
clients upload, send chunks, finish sessions, write follow-ups and purge,
then check that nothing acknowledged was lost and nothing half-done is
visible.

  make crash-test                       (200 kills, about five minutes)
  python3 tests/crash/crash_test.py --kills 20

`minihost up` supervises the worker and restarts it after each kill; the
clients retry what failed, as real clients do. Afterwards:
  - every acknowledged upload downloads with its SHA-256 (finished chunked
    ones through their public link), unless its purge was acknowledged;
  - every acknowledged purge is purged;
  - every acknowledged chunk of an unfinished session is recorded with its
    bytes intact in the session's files;
  - every follow-up payload is the last acknowledged one or one sent later;
  - every ready upload's blob hashes to a content some client sent (no
    partial file), `minihost check` is clean, and after `minihost gc` no
    blob is unreferenced and no temporary file is left.
Prints the number of kills and of verified objects; exits 1 on any violation.
"""

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from conftest import BIN, Server, run_cli  # noqa: E402

PASSWORD = "crash test primary password"


def sha(data):
    return hashlib.sha256(data).hexdigest()


class Ledger:
    """What clients sent and what the server acknowledged."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sent_hashes = set()          # every content any client sent, whole
        self.uploads = {}                 # upload id -> sha256 (acknowledged)
        self.purge_attempted = set()
        self.purged = set()               # acknowledged purges
        self.payloads = {}                # upload id -> [values in send order], acked index
        self.sessions = {}                # session id -> {"chunks": {index: bytes}, "size": n, "done": raw link or None}
        self.violations = []
        self.failures = 0

    def violation(self, text):
        with self.lock:
            self.violations.append(text)
        print("VIOLATION:", text, flush=True)


def retrying(stop, action, attempts=200):
    """Runs `action` until it returns a response that isn't a transport error
    or a 502/503 (a worker being restarted); None if it never does."""
    for _ in range(attempts):
        if stop.is_set():
            return None
        try:
            response = action()
            if response.status_code not in (502, 503, 504):
                return response
        except requests.RequestException:
            pass
        time.sleep(0.1)
    return None


def single_uploads(server, credential, ledger, stop, rng):
    contents = []
    while not stop.is_set():
        if contents and rng.random() < 0.2:
            data = rng.choice(contents)  # the same bytes again: the dedup path
        else:
            data = rng.randbytes(rng.choice([1000, 50_000, 400_000, 2_000_000]))
            contents.append(data)
        with ledger.lock:
            ledger.sent_hashes.add(sha(data))
        try:
            r = requests.post(server.url("/api/minihost/upload"), headers=server.auth(credential),
                              files={"file": ("f.bin", data)}, timeout=60)
        except requests.RequestException:
            ledger.failures += 1
            continue
        if r.status_code == 200:
            answer = r.json()
            if answer["sha256"] != sha(data):
                ledger.violation(f"upload {answer['uploadId']} acknowledged with the wrong hash")
            with ledger.lock:
                ledger.uploads[answer["uploadId"]] = sha(data)
        elif r.status_code not in (502, 503, 504):
            ledger.violation(f"upload answered {r.status_code}: {r.text[:200]}")


def chunked_sessions(server, ledger, stop, rng):
    while not stop.is_set():
        size = rng.choice([1_000_000, 3_000_000, 6_000_000])
        chunk = rng.choice([65_536, 131_072, 262_144])
        data = rng.randbytes(size)
        with ledger.lock:
            ledger.sent_hashes.add(sha(data))
        credentials = {"username": "alice", "password": PASSWORD}
        init = retrying(stop, lambda: requests.post(server.url("/api/initChunkedUploadPlain"), timeout=60,
                                                    data={**credentials, "filename": "c.bin", "size": str(size)}))
        if init is None:
            continue
        if init.status_code != 200:
            ledger.violation(f"init answered {init.status_code}: {init.text[:200]}")
            continue
        session = init.text.strip()
        record = {"chunks": {}, "size": size, "done": None, "chunk": chunk}
        with ledger.lock:
            ledger.sessions[session] = record
        base = rng.choice([0, 1])
        indices = list(range((size + chunk - 1) // chunk))
        rng.shuffle(indices)
        for i in indices:
            piece = data[i * chunk:(i + 1) * chunk]
            r = retrying(stop, lambda: requests.post(server.url(f"/api/uploadChunkPlain?id={session}&chunk={i + base}"),
                                                     files={"file": ("c", piece)}, timeout=60))
            if r is None:
                break
            if r.status_code == 200:
                with ledger.lock:
                    record["chunks"][i + base] = piece
            else:
                ledger.violation(f"chunk {i + base} of {session} answered {r.status_code}: {r.text[:200]}")
                break
        else:
            for _ in range(40):
                r = retrying(stop, lambda: requests.post(server.url("/api/finishChunkedUploadPlain"), timeout=120,
                                                         data={**credentials, "id": session}))
                if r is None:
                    break
                if r.status_code == 202:
                    time.sleep(0.5)
                    continue
                if r.status_code == 200:
                    raw = dict(line.split(": ", 1) for line in r.text.splitlines() if ": " in line)["Raw"]
                    with ledger.lock:
                        record["done"] = raw
                        record["sha"] = sha(data)
                else:
                    ledger.violation(f"finish of {session} answered {r.status_code}: {r.text[:200]}")
                break


def follow_ups(server, credential, ledger, stop, rng):
    sequence = 0
    while not stop.is_set():
        time.sleep(0.02)
        with ledger.lock:
            candidates = [u for u in ledger.uploads if u not in ledger.purge_attempted]
        if not candidates:
            continue
        upload_id = rng.choice(candidates)
        sequence += 1
        with ledger.lock:
            history = ledger.payloads.setdefault(upload_id, {"sent": [], "acked": None})
            history["sent"].append(sequence)
        try:
            r = requests.post(server.url("/api/minihost/upload_follow_up"), headers=server.auth(credential),
                              json={"uploadId": upload_id, "app_payload": {"seq": sequence}}, timeout=30)
        except requests.RequestException:
            continue
        if r.status_code == 200:
            with ledger.lock:
                history["acked"] = sequence


def purges(server, credential, ledger, stop, rng):
    while not stop.is_set():
        time.sleep(0.1)
        with ledger.lock:
            candidates = [u for u in ledger.uploads if u not in ledger.purge_attempted]
            if len(candidates) < 5:
                continue
            upload_id = rng.choice(candidates)
            ledger.purge_attempted.add(upload_id)
        try:
            r = requests.post(server.url("/api/minihost/upload_follow_up"), headers=server.auth(credential),
                              json={"uploadId": upload_id, "app_payload": {"_PURGE": True}}, timeout=30)
        except requests.RequestException:
            continue
        if r.status_code == 200:
            with ledger.lock:
                ledger.purged.add(upload_id)


def killer(server, kills_wanted, stop, counter, rng):
    while counter["kills"] < kills_wanted and not stop.is_set():
        time.sleep(rng.uniform(0.3, 1.2))
        if server.process.poll() is not None:
            raise SystemExit(f"minihost up exited ({server.process.returncode}) after {counter['kills']} kills:\n"
                             + server.output()[-2000:])
        try:
            [pid] = server.worker_pids()
            os.kill(pid, signal.SIGKILL)
        except (ValueError, ProcessLookupError):
            continue
        counter["kills"] += 1
        deadline = time.time() + 20
        while time.time() < deadline and server.worker_pids() in ([pid], []):
            time.sleep(0.02)
        if counter["kills"] % 25 == 0:
            print(f"{counter['kills']} kills", flush=True)


def chunk_bytes_on_disk(data_dir, session, index, size, offset, rows):
    folder = data_dir / "sessions" / session
    if offset is None:
        path = folder / f"{index}.chunk"
        return path.read_bytes() if path.exists() else None
    path = folder / "data"
    if not path.exists():
        return None
    ends = [o + s for (_, s, o) in rows if o is not None]
    shift = max(0, max(ends) - path.stat().st_size)  # a collapsed file (see SessionDataFile)
    with open(path, "rb") as f:
        f.seek(offset - shift)
        return f.read(size)


def verify(server, credential, ledger, data_dir):
    verified = 0
    for upload_id, digest in ledger.uploads.items():
        r = requests.get(server.url(f"/api/minihost/download?id={upload_id}"), headers=server.auth(credential), timeout=60)
        if upload_id in ledger.purged:
            if r.status_code != 404:
                ledger.violation(f"purged upload {upload_id} answered {r.status_code}")
        elif upload_id in ledger.purge_attempted:
            if r.status_code not in (200, 404) or (r.status_code == 200 and sha(r.content) != digest):
                ledger.violation(f"upload {upload_id} (purge unacknowledged) answered {r.status_code}")
        elif r.status_code != 200 or sha(r.content) != digest:
            ledger.violation(f"acknowledged upload {upload_id} answered {r.status_code}"
                             + (f" with hash {sha(r.content)}" if r.status_code == 200 else ""))
        verified += 1
    db = sqlite3.connect(data_dir / "minihost.sqlite", timeout=30)
    for upload_id, history in ledger.payloads.items():
        row = db.execute("SELECT app_payload, state FROM minihost_uploads WHERE id = ?", (upload_id,)).fetchone()
        if history["acked"] is None or row is None or row[1] != "ready":
            continue
        stored = json.loads(row[0]).get("seq") if row[0] else None
        allowed = [s for s in history["sent"] if s >= history["acked"]]
        if stored not in allowed:
            ledger.violation(f"follow-up of {upload_id}: stored {stored}, acknowledged {history['acked']}")
        verified += 1
    for session, record in ledger.sessions.items():
        if record["done"]:
            r = requests.get(record["done"], timeout=60)
            if r.status_code != 200 or sha(r.content) != record["sha"]:
                ledger.violation(f"finished session {session}: {r.status_code}")
            verified += 1
            continue
        rows = db.execute("SELECT chunk_index, size, file_offset FROM minihost_upload_session_chunks WHERE session_id = ?",
                          (session,)).fetchall()
        state = db.execute("SELECT state FROM minihost_upload_sessions WHERE id = ?", (session,)).fetchone()
        if state and state[0] == "completed":
            continue  # finished by an unacknowledged finish: its upload is checked with all ready rows
        by_index = {index: (size, offset) for index, size, offset in rows}
        for index, piece in record["chunks"].items():
            if index not in by_index:
                ledger.violation(f"acknowledged chunk {index} of session {session} is not recorded")
                continue
            size, offset = by_index[index]
            on_disk = chunk_bytes_on_disk(data_dir, session, index, size, offset, rows)
            if size != len(piece) or on_disk is None or sha(on_disk) != sha(piece):
                ledger.violation(f"acknowledged chunk {index} of session {session} is damaged")
            verified += 1
    for upload_id, digest in db.execute("SELECT id, sha256 FROM minihost_uploads WHERE state = 'ready'"):
        if digest not in ledger.sent_hashes:
            ledger.violation(f"ready upload {upload_id} holds bytes no client sent whole ({digest})")
    db.close()
    return verified


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(f"seed {seed}; binary {BIN}", flush=True)
    rng = random.Random(seed)
    work = Path(tempfile.mkdtemp(prefix="minihost-crash-"))
    data_dir = work / "data"
    server = Server(data_dir, {"MINIHOST_RATE_LIMIT": "off"}, workers=32, extra_args=["--max-restarts", "1000000"])
    stop = threading.Event()
    ledger = Ledger()
    counter = {"kills": 0}
    try:
        credential = server.client()
        run_cli("user", "create", "alice", "--password-stdin", data=data_dir, stdin=PASSWORD + "\n")
        clients = [threading.Thread(target=single_uploads, args=(server, credential, ledger, stop, random.Random(rng.random())))
                   for _ in range(4)]
        clients += [threading.Thread(target=chunked_sessions, args=(server, ledger, stop, random.Random(rng.random())))
                    for _ in range(4)]
        clients += [threading.Thread(target=follow_ups, args=(server, credential, ledger, stop, random.Random(rng.random()))),
                    threading.Thread(target=purges, args=(server, credential, ledger, stop, random.Random(rng.random())))]
        for thread in clients:
            thread.start()
        killer(server, args.kills, stop, counter, rng)
        server.wait_healthy(timeout=30)
        time.sleep(5)  # let clients retry what the last kill cut off
        stop.set()
        for thread in clients:
            thread.join(180)
        server.wait_healthy(timeout=30)
        verified = verify(server, credential, ledger, data_dir)
        code = server.stop()
        if code != 0:
            ledger.violation(f"minihost up exited {code}")
        check = run_cli("check", data=data_dir, check=False)
        if check.returncode != 0:
            ledger.violation("minihost check: " + check.stdout)
        gc = run_cli("gc", "--temporary-age", "0", data=data_dir, check=False)
        db = sqlite3.connect(data_dir / "minihost.sqlite")
        referenced = {row[0] for row in db.execute("SELECT DISTINCT blob FROM minihost_uploads WHERE blob IS NOT NULL")}
        db.close()
        on_disk = {p.name for p in (data_dir / "blobs").rglob("*") if p.is_file()}
        if on_disk - referenced:
            ledger.violation(f"{len(on_disk - referenced)} unreferenced blob(s) after gc")
        if referenced - on_disk:
            ledger.violation(f"{len(referenced - on_disk)} referenced blob(s) missing")
        leftovers = list((data_dir / "tmp").iterdir())
        if leftovers:
            ledger.violation(f"temporary files after gc: {leftovers[:5]}")
        print(f"gc: {gc.stdout.strip()}")
        print(f"kills: {counter['kills']}; acknowledged uploads: {len(ledger.uploads)}, purges: {len(ledger.purged)}, "
              f"sessions: {len(ledger.sessions)} ({sum(1 for s in ledger.sessions.values() if s['done'])} finished), "
              f"chunks: {sum(len(s['chunks']) for s in ledger.sessions.values())}; verified objects: {verified}; "
              f"violations: {len(ledger.violations)}")
        if ledger.violations:
            print(f"data folder kept for inspection: {data_dir}")
            return 1
        shutil.rmtree(work, ignore_errors=True)
        return 0
    finally:
        stop.set()
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
