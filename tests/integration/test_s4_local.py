"""s4's local storage locations through real nginx: browse, upload, download
(nginx serves the bytes), delete and create directories beneath a root, and
every way out of it refused: `..`, absolute paths, symlinks, and a symlink
swapped in while requests run."""

import os
import threading

import requests

from test_s4 import b64, bearer, operator_token


def local_server(make_server, tmp_path):
    root = tmp_path / "exposed"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("TOP SECRET outside the root")
    server = make_server(env={"MINIHOST_LOCAL_LOCATIONS": f"local-0={root},missing=/nonexistent/dir"})
    return server, root, outside


def test_browse_upload_download_delete(make_server, tmp_path):
    server, root, _ = local_server(make_server, tmp_path)
    h = bearer(operator_token(server))
    locations = requests.get(server.url("/api/local/locations"), headers=h).json()["locations"]
    assert locations[0] == {"id": "local-0", "name": "local-0", "path": str(root), "type": "local", "available": True}
    assert locations[1]["available"] is False
    assert requests.get(server.url("/api/local/locations")).status_code == 401

    made = requests.post(server.url(f"/api/local/create-directory/local-0/{b64('datasets/training')}"), headers=h)
    assert made.status_code == 201 and (root / "datasets" / "training").is_dir()
    data = os.urandom(300_000)
    up = requests.post(server.url(f"/api/local/upload/local-0/{b64('datasets/new file.csv')}"), headers=h,
                       files={"file": ("ignored.csv", data)})
    assert up.status_code == 200, up.text
    assert (root / "datasets" / "new file.csv").read_bytes() == data
    # A directory as the target takes the part's file name.
    into = requests.post(server.url(f"/api/local/upload/local-0/{b64('datasets/')}"), headers=h,
                         files={"file": ("named.txt", b"named")})
    assert into.json()["path"] == "datasets/named.txt" and (root / "datasets" / "named.txt").read_bytes() == b"named"
    # Replacing is atomic; no temporary file is left behind.
    requests.post(server.url(f"/api/local/upload/local-0/{b64('datasets/named.txt')}"), headers=h,
                  files={"file": ("x", b"replaced")})
    assert (root / "datasets" / "named.txt").read_bytes() == b"replaced"
    assert sorted(p.name for p in (root / "datasets").iterdir()) == ["named.txt", "new file.csv", "training"]

    top = requests.get(server.url("/api/local/files/local-0/"), headers=h).json()
    assert top["directories"] == [{"name": "datasets", "path": "datasets", "type": "directory",
                                   "lastModified": top["directories"][0]["lastModified"]}]
    assert requests.get(server.url("/api/local/files/local-0"), headers=h).json()["directories"] == top["directories"]
    inner = requests.get(server.url(f"/api/local/files/local-0/{b64('datasets')}"), headers=h).json()
    assert [f["name"] for f in inner["files"]] == ["named.txt", "new file.csv"]
    assert inner["files"][1]["size"] == len(data) and inner["totalCount"] == 3
    paged = requests.get(server.url(f"/api/local/files/local-0/{b64('datasets')}"), headers=h,
                         params={"limit": 1, "offset": 1}).json()
    assert [f["name"] for f in paged["files"]] == ["new file.csv"] and paged["directories"] == []

    view = requests.get(server.url(f"/api/local/view/local-0/{b64('datasets/new file.csv')}"), headers=h).json()
    assert view["size"] == len(data) and view["type"] == "file" and view["mimeType"] == "text/csv"

    got = requests.get(server.url(f"/api/local/download/local-0/{b64('datasets/new file.csv')}"), headers=h)
    assert got.status_code == 200 and got.content == data
    assert got.headers["X-Content-Type-Options"] == "nosniff" and 'filename="new file.csv"' in got.headers["Content-Disposition"]
    part = requests.get(server.url(f"/api/local/download/local-0/{b64('datasets/new file.csv')}"),
                        headers={**h, "Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == data[10:20]
    odd = "datasets/100% ü#?&.txt"
    requests.post(server.url(f"/api/local/upload/local-0/{b64(odd)}"), headers=h, files={"file": ("x", b"odd name")})
    assert requests.get(server.url(f"/api/local/download/local-0/{b64(odd)}"), headers=h).content == b"odd name"

    gone = requests.delete(server.url(f"/api/local/local-0/{b64('datasets/')}"), headers=h)
    assert gone.status_code == 200 and gone.json()["count"] == 5 and list(root.iterdir()) == []
    assert requests.get(server.url(f"/api/local/view/local-0/{b64('datasets')}"), headers=h).status_code == 404
    assert requests.get(server.url(f"/api/local/files/nope/{b64('x')}"), headers=h).status_code == 404


def test_no_request_leaves_the_root(make_server, tmp_path):
    server, root, outside = local_server(make_server, tmp_path)
    h = bearer(operator_token(server))
    (root / "inside.txt").write_text("inside")
    (root / "link-out").symlink_to(outside)
    (root / "secret-link.txt").symlink_to(outside / "secret.txt")
    (root / "sub").mkdir()

    for path in ["../outside/secret.txt", "sub/../../outside/secret.txt", "/etc/passwd", "./inside.txt", "sub//x",
                 "a\x00b"]:
        for method, prefix in [("GET", "download"), ("GET", "view"), ("GET", "files"), ("POST", "create-directory")]:
            r = requests.request(method, server.url(f"/api/local/{prefix}/local-0/{b64(path)}"), headers=h)
            assert r.status_code == 400, (path, prefix, r.status_code)
        assert requests.delete(server.url(f"/api/local/local-0/{b64(path)}"), headers=h).status_code == 400

    for path in ["link-out/secret.txt", "secret-link.txt", "link-out"]:
        for prefix in ["download", "view", "files"]:
            r = requests.get(server.url(f"/api/local/{prefix}/local-0/{b64(path)}"), headers=h)
            assert r.status_code == 403 and "TOP SECRET" not in r.text, (path, prefix, r.status_code)
    up = requests.post(server.url(f"/api/local/upload/local-0/{b64('link-out/planted.txt')}"), headers=h,
                       files={"file": ("x", b"planted")})
    assert up.status_code == 403 and not (outside / "planted.txt").exists()
    mk = requests.post(server.url(f"/api/local/create-directory/local-0/{b64('link-out/newdir')}"), headers=h)
    assert mk.status_code == 403 and not (outside / "newdir").exists()
    # Deleting a symlink removes the link, never what it points at.
    assert requests.delete(server.url(f"/api/local/local-0/{b64('link-out')}"), headers=h).status_code == 200
    assert (outside / "secret.txt").exists() and not (root / "link-out").exists()
    # The root itself can't be deleted.
    assert requests.delete(server.url(f"/api/local/local-0/{b64('/')}"), headers=h).status_code == 400


def test_symlink_swapped_in_mid_request_is_refused(make_server, tmp_path):
    """A thread keeps replacing `flip.txt` (a regular file) with a symlink to a
    file outside the root and back, while downloads run: the worker's check
    may see the file and nginx then find the link, which `disable_symlinks`
    refuses. No download may ever carry the outside file's bytes."""
    server, root, outside = local_server(make_server, tmp_path)
    h = bearer(operator_token(server))
    real = root / "flip.txt"
    real.write_text("harmless inside")
    stop = threading.Event()

    def flipper():
        link = root / "flip.link"
        plain = root / "flip.plain"
        while not stop.is_set():
            plain.write_text("harmless inside")
            os.replace(plain, real)
            if link.exists() or link.is_symlink():
                link.unlink()
            link.symlink_to(outside / "secret.txt")
            os.replace(link, real)

    thread = threading.Thread(target=flipper)
    thread.start()
    statuses = {}
    try:
        with requests.Session() as session:
            for _ in range(300):
                r = session.get(server.url(f"/api/local/download/local-0/{b64('flip.txt')}"), headers=h)
                assert b"TOP SECRET" not in r.content
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code == 403:
                    # The worker's refusal and nginx's own read alike: the s4 dialect's JSON.
                    assert r.json()["error"] == "AccessDenied", r.text
    finally:
        stop.set()
        thread.join()
    assert statuses.get(200, 0) > 0 and statuses.get(403, 0) > 0, statuses
    assert set(statuses) <= {200, 403, 404}, statuses
    # Some refusals were nginx's own, after the worker had checked a regular file.
    assert "Too many levels of symbolic links" in (server.data / "nginx" / "error.log").read_text()
