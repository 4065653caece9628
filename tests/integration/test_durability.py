"""Durability ordering, traced: the worker's system calls for an upload, a
chunk (in place and in a file of its own), a finish and a purge, checked to
make every acknowledgement after the syncs the design requires: the file,
then its rename or link, then its folder, then the SQLite commit
(synchronous=FULL syncs the WAL), and only then the answer to nginx."""

import re
import time

import requests

from conftest import run_cli, start_strace, stop_strace

PASSWORD = "alice primary password"


class Trace:
    """System calls of the worker process while `action()` ran, in the order they completed."""

    SYSCALLS = ("write,pwrite64,writev,fsync,fdatasync,rename,renameat,renameat2,link,linkat,unlink,unlinkat,"
                "sync_file_range")

    def __init__(self, server, action):
        [pid] = server.worker_pids()
        path = server.data.parent / f"durability-{pid}-{time.time_ns()}.strace"
        tracer = start_strace(pid, path, "-yy", "-s", "120", "-e", f"trace={self.SYSCALLS}")
        try:
            self.result = action()
            time.sleep(0.3)
        finally:
            stop_strace(tracer)
        self.calls = []  # (name, arguments, result) in completion order
        pending = {}
        for line in path.read_text().splitlines():
            thread, _, rest = line.partition(" ")
            rest = rest.strip()
            if "<unfinished ...>" in rest:
                name, _, args = rest.partition("(")
                pending[thread] = (name, args.replace("<unfinished ...>", ""))
                continue
            resumed = re.match(r"<\.\.\. (\w+) resumed>(.*)", rest)
            if resumed:
                name, args = pending.pop(thread, (resumed.group(1), ""))
                rest = f"{name}({args}{resumed.group(2)}"
            match = re.match(r"(\w+)\((.*)\)\s+=\s+(-?\d+)", rest)
            if match:
                self.calls.append((match.group(1), match.group(2), int(match.group(3))))

    def first(self, predicate, after=-1, what=""):
        for index, call in enumerate(self.calls):
            if index > after and predicate(*call):
                return index
        raise AssertionError(f"no {what} after call {after} in:\n" + "\n".join(map(str, self.calls[-60:])))

    def sync_of(self, path_pattern, after=-1):
        return self.first(lambda name, args, result: name in ("fsync", "fdatasync") and result == 0
                          and re.search(path_pattern, args.split(",")[0]), after, f"fsync of {path_pattern}")

    def commit(self, after):
        """The SQLite commit: a write to the WAL, then its sync."""
        written = self.first(lambda name, args, result: name in ("pwrite64", "write") and "minihost.sqlite-wal>" in args,
                             after, "WAL write")
        return self.sync_of(r"minihost\.sqlite-wal>", written)

    def answer(self, status="200"):
        """The FastCGI answer's first write to nginx."""
        return self.first(lambda name, args, result: name in ("write", "writev", "sendmsg") and "UNIX-STREAM" in args
                          and f"Status: {status}" in args, what=f"answer {status}")


def test_an_upload_is_acknowledged_after_file_rename_folder_and_commit(server):
    credential = server.client()
    trace = Trace(server, lambda: server.upload(credential, b"durable bytes " * 5000))
    assert trace.result.status_code == 200
    digest = trace.result.json()["sha256"]
    file_synced = trace.sync_of(r"/tmp/upload-[0-9a-f]+\.part>")
    renamed = trace.first(lambda name, args, result: name.startswith("rename") and result == 0 and digest in args,
                          file_synced, "rename into blobs/")
    folder_synced = trace.sync_of(rf"/blobs/{digest[:2]}/{digest[2:4]}>", renamed)
    committed = trace.commit(folder_synced)
    assert trace.answer() > committed


def send_chunk(server, upload_id, index, data):
    return requests.post(server.url(f"/api/uploadChunkPlain?id={upload_id}&chunk={index}"), files={"file": ("c", data)})


def test_chunks_and_a_finish_are_acknowledged_after_their_syncs(server):
    run_cli("user", "create", "alice", "--password-stdin", data=server.data, stdin=PASSWORD + "\n")
    form = {"username": "alice", "password": PASSWORD}
    slot = 256 * 1024
    data = bytes(range(256)) * (3 * slot // 256)
    upload_id = requests.post(server.url("/api/initChunkedUploadPlain"),
                              data={**form, "filename": "f.bin", "size": len(data)}).text.strip()
    # Chunk 0 goes in place: written into the session file, fdatasync'd, then recorded.
    trace = Trace(server, lambda: send_chunk(server, upload_id, 0, data[:slot]))
    assert trace.result.status_code == 200
    synced = trace.sync_of(rf"/sessions/{upload_id}/data>")
    assert trace.answer() > trace.commit(synced)
    assert send_chunk(server, upload_id, 1, b"\xff" * slot).status_code == 200
    # Chunk 1 sent again with other bytes can't overwrite acknowledged ones: it goes to a file of its
    # own, synced, renamed into the session folder, the folder synced, then recorded.
    trace = Trace(server, lambda: send_chunk(server, upload_id, 1, data[slot:2 * slot]))
    assert trace.result.status_code == 200
    synced = trace.sync_of(r"/tmp/upload-[0-9a-f]+\.part>")
    renamed = trace.first(lambda name, args, result: name.startswith("rename") and result == 0
                          and f"sessions/{upload_id}/1.chunk" in args, synced, "rename into the session")
    folder = trace.sync_of(rf"/sessions/{upload_id}>", renamed)
    assert trace.answer() > trace.commit(folder)
    assert send_chunk(server, upload_id, 2, data[2 * slot:]).status_code == 200
    # Finish copies (chunk 1 lives in its own file) into a new blob: synced, renamed, folder, commit.
    trace = Trace(server, lambda: requests.post(server.url("/api/finishChunkedUploadPlain"), data={**form, "id": upload_id}))
    assert trace.result.status_code == 200, trace.result.text
    synced = trace.sync_of(r"/tmp/upload-[0-9a-f]+\.part>")
    placed = trace.first(lambda name, args, result: name.startswith("rename") and result == 0 and "/blobs/" in args,
                         synced, "rename into blobs/")
    folder = trace.sync_of(r"/blobs/[0-9a-f]{2}/[0-9a-f]{2}>", placed)
    assert trace.answer() > trace.commit(folder)


def test_an_in_place_finish_links_after_syncing_and_answers_after_the_commit(server):
    run_cli("user", "create", "alice", "--password-stdin", data=server.data, stdin=PASSWORD + "\n")
    form = {"username": "alice", "password": PASSWORD}
    slot = 128 * 1024
    data = bytes(reversed(range(256))) * (2 * slot // 256)
    upload_id = requests.post(server.url("/api/initChunkedUploadPlain"),
                              data={**form, "filename": "g.bin", "size": len(data)}).text.strip()
    for index in range(2):
        assert send_chunk(server, upload_id, index, data[index * slot:(index + 1) * slot]).status_code == 200
    trace = Trace(server, lambda: requests.post(server.url("/api/finishChunkedUploadPlain"), data={**form, "id": upload_id}))
    assert trace.result.status_code == 200, trace.result.text
    synced = trace.sync_of(rf"/sessions/{upload_id}/data>")
    linked = trace.first(lambda name, args, result: name.startswith("link") and result == 0 and "/blobs/" in args,
                         synced, "link into blobs/")
    folder = trace.sync_of(r"/blobs/[0-9a-f]{2}/[0-9a-f]{2}>", linked)
    assert trace.answer() > trace.commit(folder)


def test_a_purge_commits_the_row_before_the_blob_goes(server):
    credential = server.client()
    upload = server.upload(credential, b"to be purged " * 1000).json()
    trace = Trace(server, lambda: requests.post(server.url("/api/minihost/upload_follow_up"), headers=server.auth(credential),
                                                json={"uploadId": upload["uploadId"], "app_payload": {"_PURGE": True}}))
    assert trace.result.status_code == 200
    committed = trace.commit(-1)
    removed = trace.first(lambda name, args, result: name.startswith("unlink") and upload["sha256"] in args, -1, "blob unlink")
    assert removed > committed
    assert trace.answer() > committed
