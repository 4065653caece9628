"""The uploader dialect (file-uploader-api.txt) through real nginx: uploads
anonymous and with tokens, accounts, delete keys, download limits, public
serving, and the dialect's own client library from PyPI."""
import asyncio
import concurrent.futures
import os
import re
import sqlite3
import threading
import time

import pytest
import requests

from conftest import Secrets, run_cli
from test_public_files import FAST_INDEX, hammer, wait_static, workers_stopped

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def upload(server, data, name="clip.mp4", content_type=None, token=None, query=""):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    part = (name, data, content_type) if content_type else (name, data)
    return requests.post(server.url("/api/upload" + query), files={"file": part}, headers=headers)


def register(server, username="alice", password="correct horse", bot=False):
    r = requests.post(server.url(f"/api/register?bot={'true' if bot else 'false'}"),
                      json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return r.json()["accessToken"]


def rows(server, sql, *args):
    with sqlite3.connect(server.data / "minihost.sqlite") as db:
        return db.execute(sql, args).fetchall()


def test_anonymous_upload_is_served_inline_or_as_attachment_by_type(server):
    video = os.urandom(5000)
    r = upload(server, video, "clip.mp4", query="?include_ext=true")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success" and body["message"] == "File uploaded successfully"
    assert re.fullmatch(r"[A-Za-z0-9_-]{10}\.mp4", body["file_url"]), body
    assert body["ext"] == ".mp4" and body["user_filename"] == "clip.mp4" and body["synced"] is False
    assert body["auth_error"] == {} and UUID.match(body["key"]) and body["size"] == 5000
    assert isinstance(body["craeted_at"], float)
    assert body["file_url_full"] == server.url(f"/file/{body['file_url']}")
    for path in (f"/file/{body['file_url']}", f"/f/{body['file_url']}", f"/file/{body['file_url'][:10]}"):
        got = requests.get(server.url(path))
        assert got.status_code == 200 and got.content == video, path
        assert got.headers["Content-Type"] == "video/mp4"
        assert got.headers["Content-Disposition"].startswith("inline")
        assert got.headers["X-Content-Type-Options"] == "nosniff" and got.headers["Content-Security-Policy"] == "sandbox"
    partial = requests.get(server.url(f"/f/{body['file_url']}"), headers={"Range": "bytes=10-19"})
    assert partial.status_code == 206 and partial.content == video[10:20]

    # Unknown and active types go as attachments; the type comes from the
    # name when the client sent none.
    for name, data, kind in [("data.bin", b"\x00\x01", "attachment"), ("page.html", b"<script>alert(1)</script>", "attachment"),
                             ("notes.txt", b"just text", "inline")]:
        answer = upload(server, data, name).json()
        got = requests.get(server.url(f"/file/{answer['file_url']}"))
        assert got.content == data and got.headers["Content-Disposition"].startswith(kind), (name, got.headers)
    assert requests.get(server.url("/file/AAAAAAAAAA")).status_code == 404
    assert requests.get(server.url("/file/short")).status_code == 404


def test_upload_errors_leave_nothing_behind(make_server):
    server = make_server({"MINIHOST_UPLOADER_MAX_MB": "1"})
    before = rows(server, "SELECT count(*) FROM minihost_uploads")
    cases = [
        (requests.post(server.url("/api/upload"), files={"other": (None, "x")}), 400, "No file uploaded"),
        (requests.post(server.url("/api/upload"), files={"nofile": ("a.txt", b"x")}), 400, "No file uploaded"),
        (upload(server, b"x" * 1000, "noextension"), 400, "Bad file extension"),
        (upload(server, b"x" * 1000, "weird.ex t"), 400, "Bad file extension"),
        (upload(server, os.urandom(1100 * 1024), "big.bin"), 413, "File size exceeds the limit (1MB)"),
        (upload(server, b"x", "a.txt", query="?max_uses=0"), 400, "max_uses must be a whole number from 1 to 10000"),
        (upload(server, b"x", "a.txt", query="?max_uses=10001"), 400, "max_uses must be a whole number from 1 to 10000"),
        (requests.post(server.url("/api/upload/somegroup"), files={"file": ("a.txt", b"x")}), 404, "Group not found"),
    ]
    for response, status, message in cases:
        assert response.status_code == status, (message, response.status_code, response.text)
        assert response.json() == {"status": "error", "message": message}, response.text
    # A body far past the limit is refused in the dialect's format (by the
    # worker here: the path's nginx limit is skysend's larger one).
    huge = upload(server, os.urandom(3 << 20), "huge.bin")
    assert huge.status_code == 413 and huge.json()["status"] == "error", huge.text
    # Any body but a form is skysend's upload, in skysend's words.
    raw = requests.post(server.url("/api/upload"), data={"other": "x"})
    assert raw.status_code == 400 and raw.json()["error"] == "Invalid request headers", raw.text
    assert rows(server, "SELECT count(*) FROM minihost_uploads") == before
    assert server.temp_files() == [] and server.blob_files() == []
    assert upload(server, b"fine", "ok.txt").status_code == 200
    assert requests.post(server.url("/api/upload/private"), files={"file": ("ok2.txt", b"fine")}).status_code == 200


def test_accounts_tokens_and_their_documented_errors(server):
    token = register(server)
    assert rows(server, "SELECT count(*) FROM minihost_access_tokens") == [(1,)]
    assert rows(server, "SELECT token_hash FROM minihost_access_tokens")[0][0] != token

    def post(path, **kwargs):
        r = requests.post(server.url(path), **kwargs)
        return r.status_code, r.json()

    assert post("/api/register", json={"username": "alice", "password": "another one"}) == (
        400, {"status": "error", "message": "An account with this name is already registered", "errorId": 1})
    for body in [{}, {"username": "bob"}, {"password": "x" * 9}, {"username": "", "password": "x" * 9}]:
        assert post("/api/register", json=body) == (400, {"status": "error", "message": "No username/password provided",
                                                          "errorId": 2})
        assert post("/api/login", json=body)[1]["errorId"] == 2
    assert post("/api/register")[1]["errorId"] == 2  # no body at all
    assert post("/api/login", json={"username": "alice", "password": "wrong horse"}) == (
        400, {"status": "error", "message": "Wrong password", "errorId": 3})
    assert post("/api/login", json={"username": "nobody", "password": "wrong horse"}) == (
        404, {"status": "error", "message": "User not found", "errorId": 4})
    status, login = post("/api/login", json={"username": "alice", "password": "correct horse"})
    assert status == 200 and login["username"] == "alice" and login["accessToken"] != token
    assert login["status"] == "success" and login["message"] == "logged in with password"

    def files(headers):
        r = requests.get(server.url("/api/get_files"), headers=headers)
        return r.status_code, r.json()

    def auth_error(error_id, message):
        return 401, {"status": "error", "auth_error": {"message": message, "errorId": error_id}}

    assert files({}) == auth_error(-1, "No Authorization header provided")
    assert files({"Authorization": token}) == auth_error(-2, "Authorization header must have Bearer <token> format")
    assert files({"Authorization": "Basic abc"}) == auth_error(-2, "Authorization header must have Bearer <token> format")
    assert files({"Authorization": "Bearer not-a-token"}) == auth_error(-4, "Invalid access token")
    assert files({"Authorization": "Bearer " + "0" * 64}) == auth_error(-5, "Token not found")
    status, listing = files({"Authorization": f"Bearer {token}"})
    assert status == 200 and listing == {"status": "success", "message": "files got successfully", "username": "alice",
                                         "data": []}

    # Tokens end: refresh replaces, logout deletes, expiry ends.
    assert post("/api/refresh_token", json={}) == (400, {"status": "error", "message": "No access token provided",
                                                         "errorId": 5})
    status, refreshed = post("/api/refresh_token", json={"accessToken": token})
    assert status == 200 and refreshed["accessToken"] not in (token, login["accessToken"])
    assert files({"Authorization": f"Bearer {token}"}) == auth_error(-5, "Token not found")
    assert post("/api/refresh_token", json={"accessToken": token}) == auth_error(-5, "Token not found")
    fresh = refreshed["accessToken"]
    me = requests.get(server.url("/api/login/token"), headers={"Authorization": f"Bearer {fresh}"})
    assert me.status_code == 200 and me.json()["username"] == "alice" and me.json()["accessToken"] == fresh
    assert post("/api/logout", headers={"Authorization": f"Bearer {fresh}"})[0] == 200
    assert files({"Authorization": f"Bearer {fresh}"}) == auth_error(-5, "Token not found")
    with sqlite3.connect(server.data / "minihost.sqlite") as db:
        db.execute("UPDATE minihost_access_tokens SET expires_at = '2000-01-01 00:00:00.000'")
    assert files({"Authorization": f"Bearer {login['accessToken']}"}) == auth_error(-3, "Access token expired")

    # A bot's token lasts six months, an ordinary one 30 days.
    register(server, "robot", "beep boop beep", bot=True)
    lifetimes = dict(rows(server, "SELECT long_lived, julianday(expires_at) - julianday(created_at) FROM minihost_access_tokens "
                                  "WHERE username = 'robot' OR expires_at > '2001'"))
    assert round(lifetimes[1]) == 183
    # The account is the core's user: the plain dialect knows it.
    check = requests.post(server.url("/api/cliCheckCredentials"), data={"username": "alice", "password": "correct horse"})
    assert check.text.strip() == "VALID"


def test_registration_can_be_closed(make_server):
    server = make_server({"MINIHOST_UPLOADER_REGISTRATION": "closed"})
    r = requests.post(server.url("/api/register"), json={"username": "eve", "password": "let me in please"})
    assert r.status_code == 403 and r.json() == {"status": "error", "message": "Registration is closed on this server"}
    run_cli("user", "create", "carol", "--password-stdin", data=server.data, stdin="carols password\n")
    Secrets.add("carols password")
    login = requests.post(server.url("/api/login"), json={"username": "carol", "password": "carols password"})
    assert login.status_code == 200, login.text


def test_token_uploads_are_synced_and_bad_tokens_upload_anonymously(server):
    token = register(server)
    mine = upload(server, b"mine", "mine.txt", token=token).json()
    assert mine["synced"] is True and mine["auth_error"] == {}
    stranger = upload(server, b"anon", "anon.txt", token="f" * 64).json()
    assert stranger["synced"] is False and stranger["auth_error"] == {"message": "Token not found", "errorId": -5}
    malformed = upload(server, b"anon2", "anon2.txt", token="garbage").json()
    assert malformed["auth_error"]["errorId"] == -4
    listing = requests.get(server.url("/api/get_files"), headers={"Authorization": f"Bearer {token}"}).json()
    assert [entry["file_url"] for entry in listing["data"]] == [mine["file_url"]]
    entry = listing["data"][0]
    assert entry["key"] == mine["key"] and entry["user_filename"] == "mine.txt" and entry["synced"] is True
    assert re.fullmatch(r"\d{1,2}\.\d{1,2}\.\d{4}", entry["creation_date"])
    assert requests.get(server.url("/api/getFiles"), headers={"Authorization": f"Bearer {token}"}).json() == listing

    # An anonymous file moves into the account with its key, not without.
    moved = requests.post(server.url("/api/transfer"), headers={"Authorization": f"Bearer {token}"}, json={"data": [
        {"file_url": stranger["file_url"], "key": stranger["key"]},
        {"file_url": malformed["file_url"], "key": stranger["key"]},
        {"file_url": "AAAAAAAAAA", "key": stranger["key"]},
    ]})
    assert moved.status_code == 200 and [item["file_url"] for item in moved.json()["unsuccess"]] == [
        malformed["file_url"], "AAAAAAAAAA"]
    listing = requests.get(server.url("/api/get_files"), headers={"Authorization": f"Bearer {token}"}).json()
    assert sorted(entry["file_url"] for entry in listing["data"]) == sorted([mine["file_url"], stranger["file_url"]])


def test_delete_needs_the_key_and_takes_effect_at_once(make_server):
    server = make_server(FAST_INDEX)
    answer = upload(server, b"delete me soon", "gone.txt").json()
    url = server.url(f"/file/{answer['file_url']}")
    wait_static(server, [url])  # served by nginx alone from here
    for key in ["", "not-the-key", answer["key"].replace(answer["key"][0], "0" if answer["key"][0] != "0" else "1", 1)]:
        r = requests.get(server.url(f"/api/delete/{answer['file_url']}?key={key}"))
        assert r.status_code == 400 and r.json() == {"status": "error", "message": "Invalid unique key"}, key
    assert requests.get(url).content == b"delete me soon"

    stop, seen = threading.Event(), []
    threads = [threading.Thread(target=hammer, args=(url, stop, seen)) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    deleted = requests.get(server.url(f"/api/delete/{answer['file_url']}?key={answer['key'].upper()}"))
    acknowledged = time.monotonic()
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join()
    assert deleted.status_code == 200 and deleted.json() == {"status": "success", "message": "File deleted successfully"}
    after = {status for sent, status in seen if sent > acknowledged}
    assert after == {404}, after
    again = requests.get(server.url(f"/api/delete/{answer['file_url']}?key={answer['key']}"))
    assert again.status_code == 404 and again.json() == {"status": "error", "message": "File not found"}
    assert server.blob_files() == []


def test_max_uses_grants_exactly_that_many_downloads_under_a_race(server):
    data = os.urandom(2048)
    answer = upload(server, data, "limited.bin", query="?max_uses=5").json()
    url = server.url(f"/f/{answer['file_url']}")
    head = requests.head(url)
    assert head.status_code == 200 and head.headers["Cache-Control"] == "no-store"

    def fetch(_):
        r = requests.get(url)
        return r.status_code, r.content

    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(fetch, range(50)))
    granted = [content for status, content in results if status == 200]
    assert len(granted) == 5 and all(content == data for content in granted)
    assert sorted({status for status, _ in results}) == [200, 404]
    assert requests.get(url).status_code == 404 and requests.head(url).status_code == 404
    assert rows(server, "SELECT download_count, max_downloads FROM minihost_uploads") == [(5, 5)]
    # It never entered the public tree: nginx can't serve it alone.
    assert list((server.data / "public" / "links").glob(answer["file_url"] + ".*")) == []
    assert requests.get(server.url(f"/api/delete/{answer['file_url']}?key={answer['key']}")).status_code == 404


def test_the_fileuploader_client_library_works_unchanged(server):
    """fileuploader 0.1.3.6 (aiohttp) from PyPI, its base URL pointed here."""
    import aiohttp
    import fileuploader

    original = aiohttp.ClientSession

    def local(base_url=None, **kwargs):
        return original(server.base, **kwargs)

    async def scenario():
        user = await fileuploader.User.register("dora", "dora's password", is_bot=True)
        Secrets.add(user.accessToken)
        Secrets.add("dora's password")
        sent = await fileuploader.upload(b"from the library", "lib.txt", user=user, include_ext=True)
        assert sent.synced and sent.file_url.endswith(".txt") and sent.auth_error is None
        Secrets.add(sent.key)
        anonymous = await fileuploader.upload(b"anonymous", "anon.txt")
        Secrets.add(anonymous.key)
        assert not anonymous.synced
        assert await user.transfer([{"file_url": anonymous.file_url, "key": anonymous.key}]) == []
        again = await fileuploader.User.login("dora", "dora's password")
        Secrets.add(again.accessToken)
        by_token = await fileuploader.User.loginToken(again.accessToken)
        assert by_token.username == "dora"
        with pytest.raises(fileuploader.exceptions.UserNotFound):
            await fileuploader.User.login("nobody", "whatever!")
        try:
            await fileuploader.User.register("dora", "dora's password")
        except Exception as error:  # the library raises an instance here, not the class
            assert type(error).__name__ == "UserAreadyRegistered"
        else:
            raise AssertionError("registering twice succeeded")
        # UploadResponse.delete() can't run in this release (a name-mangled
        # module alias raises NameError), so the module-level delete it mirrors.
        assert await fileuploader.delete(sent.file_url, sent.key)
        with pytest.raises(fileuploader.exceptions.FileNotFound):
            await fileuploader.delete(sent.file_url, sent.key)
        assert await user.logout()
        return sent, anonymous

    aiohttp.ClientSession = local
    try:
        sent, anonymous = asyncio.run(scenario())
    finally:
        aiohttp.ClientSession = original
    assert requests.get(server.url(f"/file/{sent.file_url}")).status_code == 404
    assert requests.get(server.url(f"/file/{anonymous.file_url}")).content == b"anonymous"
