"""The skysend dialect through real nginx: configuration and notes, with a
client that encrypts the way SkySend's web client does (packages/crypto:
HKDF-SHA256 keys from a 32-byte secret, AES-256-GCM, HMAC auth token)."""
import base64
import concurrent.futures
import hashlib
import hmac
import os
import sqlite3

import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from conftest import Secrets, run_cli


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def hkdf(secret: bytes, salt: bytes, info: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info.encode()).derive(secret)


class Client:
    """What SkySend's client derives from its secret (keychain.ts)."""

    def __init__(self):
        self.secret = os.urandom(32)
        self.salt = os.urandom(16)
        self.meta_key = hkdf(self.secret, self.salt, "skysend-metadata")
        auth_key = hkdf(self.secret, self.salt, "skysend-authentication")
        self.auth_token = b64url(hmac.new(auth_key, b"skysend-auth-token", hashlib.sha256).digest())
        self.owner_token = b64url(hkdf(self.secret, self.salt, "skysend-owner-token"))
        Secrets.add(self.auth_token)
        Secrets.add(self.owner_token)

    def note(self, text: str, **fields):
        nonce = os.urandom(12)
        ciphertext = AESGCM(self.meta_key).encrypt(nonce, text.encode(), None)
        return {"encryptedContent": base64.b64encode(ciphertext).decode(), "nonce": base64.b64encode(nonce).decode(),
                "salt": b64url(self.salt), "ownerToken": self.owner_token, "authToken": self.auth_token,
                "contentType": "text", "maxViews": 0, "expireSec": 3600, **fields}

    def decrypt(self, answer) -> str:
        return AESGCM(self.meta_key).decrypt(base64.b64decode(answer["nonce"]),
                                             base64.b64decode(answer["encryptedContent"]), None).decode()


def create(server, body):
    r = requests.post(server.url("/api/note"), json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_config_reflects_the_environment(make_server):
    server = make_server({"MINIHOST_SKYSEND_EXPIRE_OPTIONS": "60,3600", "MINIHOST_SKYSEND_DOWNLOAD_OPTIONS": "1,7",
                          "MINIHOST_SKYSEND_MAX_MB": "10"})
    config = requests.get(server.url("/api/config")).json()
    assert config["expireOptions"] == [60, 3600] and config["downloadOptions"] == [1, 7]
    assert config["maxFileSize"] == 10 << 20 and config["maxFilesPerUpload"] == 32
    assert config["defaultDownload"] == 1 and config["customTitle"] == "SkySend"
    default = requests.get(make_server().url("/api/config")).json()
    assert default["expireOptions"] == [300, 3600, 86400, 604800]
    assert default["downloadOptions"] == [1, 2, 3, 4, 5, 10, 20, 50, 100] and default["maxFileSize"] == 2048 << 20


def test_a_note_round_trips_encrypted_and_the_server_holds_only_ciphertext(server):
    client = Client()
    secret_text = "the launch code is " + os.urandom(8).hex()
    created = requests.post(server.url("/api/note"), json=client.note(secret_text, maxViews=2))
    assert created.status_code == 201 and set(created.json()) == {"id", "expiresAt"}
    note_id = created.json()["id"]
    info = requests.get(server.url(f"/api/note/{note_id}")).json()
    assert info["salt"] == b64url(client.salt) and info["viewCount"] == 0 and info["maxViews"] == 2
    assert info["hasPassword"] is False and "encryptedContent" not in info and "passwordSalt" not in info

    url = server.url(f"/api/note/{note_id}/view")
    assert requests.post(url, json={}).json() == {"error": "Missing authToken in body"}
    wrong = requests.post(url, json={"authToken": b64url(os.urandom(32))})
    assert wrong.status_code == 401 and wrong.json() == {"error": "Invalid auth token"}
    garbled = requests.post(url, json={"authToken": "not*base64"})
    assert garbled.status_code == 401 and garbled.json() == {"error": "Invalid auth token format"}
    first = requests.post(url, json={"authToken": client.auth_token})
    assert first.status_code == 200 and first.headers["Cache-Control"] == "no-store"
    assert client.decrypt(first.json()) == secret_text and first.json()["viewCount"] == 1
    assert requests.post(url, json={"authToken": client.auth_token}).json()["viewCount"] == 2
    # Two views, then never again: not the content, not the info.
    for response in (requests.post(url, json={"authToken": client.auth_token}),
                     requests.get(server.url(f"/api/note/{note_id}"))):
        assert response.status_code == 410 and response.json() == {"error": "View limit reached"}

    # Only ciphertext and token hashes at rest.
    stored = b"".join(path.read_bytes() for path in server.data.glob("minihost.sqlite*"))
    assert secret_text.encode() not in stored
    assert client.auth_token.encode() not in stored and client.owner_token.encode() not in stored


def test_concurrent_views_show_exactly_the_views_left(server):
    client = Client()
    note_id = create(server, client.note("five views", maxViews=5))

    def view(_):
        return requests.post(server.url(f"/api/note/{note_id}/view"), json={"authToken": client.auth_token}).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=30) as pool:
        statuses = list(pool.map(view, range(30)))
    assert statuses.count(200) == 5 and statuses.count(410) == 25


def test_deleting_needs_the_owner_token(server):
    client = Client()
    note_id = create(server, client.note("delete me"))
    url = server.url(f"/api/note/{note_id}")
    assert requests.delete(url).json() == {"error": "Missing X-Owner-Token header"}
    assert requests.delete(url, headers={"X-Owner-Token": client.auth_token}).json() == {"error": "Invalid owner token"}
    assert requests.delete(url, headers={"X-Owner-Token": "%%%"}).json() == {"error": "Invalid owner token format"}
    assert requests.delete(url, headers={"X-Owner-Token": client.owner_token}).json() == {"ok": True}
    assert requests.get(url).status_code == 404 and requests.get(url).json() == {"error": "Note not found"}
    assert requests.delete(url, headers={"X-Owner-Token": client.owner_token}).status_code == 404


def test_password_checks_lock_an_address_out_after_ten_failures(server):
    client = Client()
    plain = create(server, client.note("no password"))
    r = requests.post(server.url(f"/api/note/{plain}/password"), json={"authToken": client.auth_token})
    assert r.status_code == 400 and r.json() == {"error": "Note is not password-protected"}

    protected = create(server, client.note("guarded", hasPassword=True, passwordSalt=b64url(os.urandom(16)),
                                           passwordAlgo="argon2id"))
    info = requests.get(server.url(f"/api/note/{protected}")).json()
    assert info["hasPassword"] is True and info["passwordAlgo"] == "argon2id"
    url = server.url(f"/api/note/{protected}/password")
    assert requests.post(url, json={"authToken": client.auth_token}).json() == {"ok": True}
    for _ in range(10):
        r = requests.post(url, json={"authToken": b64url(os.urandom(32))})
        assert r.status_code == 401 and r.json() == {"error": "Invalid password"}
    locked = requests.post(url, json={"authToken": client.auth_token})
    assert locked.status_code == 429 and locked.json() == {"error": "Too many failed attempts. Try again later."}
    assert 890 <= int(locked.headers["Retry-After"]) <= 900
    # Only that note is locked for this address.
    other = create(server, client.note("other", hasPassword=True, passwordSalt=b64url(os.urandom(16)), passwordAlgo="pbkdf2"))
    assert requests.post(server.url(f"/api/note/{other}/password"), json={"authToken": client.auth_token}).status_code == 200


def test_note_validation_answers_upstreams_errors(make_server):
    server = make_server()
    client = Client()

    def post(**fields):
        r = requests.post(server.url("/api/note"), json=client.note("x", **fields))
        return r.status_code, r.json()

    status, body = post(contentType="poem", maxViews="3")
    assert status == 400 and body["error"] == "Invalid request" and set(body["details"]) == {"contentType", "maxViews"}
    missing = requests.post(server.url("/api/note"), json={"nonce": "AAAA"})
    assert missing.status_code == 400 and "encryptedContent" in missing.json()["details"]
    assert post(expireSec=60) == (400, {"error": "Invalid expiry time. Must be one of the allowed options."})
    assert post(maxViews=4) == (400, {"error": "Invalid view limit. Must be one of the allowed options."})
    assert post(salt=b64url(os.urandom(8))) == (400, {"error": "Salt must be exactly 16 bytes"})
    assert post(nonce=base64.b64encode(os.urandom(8)).decode()) == (400, {"error": "Nonce must be exactly 12 bytes"})
    assert post(hasPassword=True) == (400, {"error": "Password-protected notes require passwordSalt and passwordAlgo"})
    big = base64.b64encode(os.urandom((1 << 20) + 300)).decode()
    assert post(encryptedContent=big) == (413, {"error": "Note content exceeds maximum size"})
    assert requests.get(server.url("/api/note/not-a-uuid")).status_code == 404
    with sqlite3.connect(server.data / "minihost.sqlite") as db:
        assert db.execute("SELECT count(*) FROM minihost_skysend_notes").fetchone() == (0,)


def test_expired_notes_are_refused_at_once_and_gc_removes_them(server):
    client = Client()
    note_id = create(server, client.note("short lived", expireSec=300))
    with sqlite3.connect(server.data / "minihost.sqlite") as db:
        db.execute("UPDATE minihost_skysend_notes SET expires_at = '2000-01-01 00:00:00.000'")
    gone = requests.post(server.url(f"/api/note/{note_id}/view"), json={"authToken": client.auth_token})
    assert gone.status_code == 410 and gone.json() == {"error": "Note has expired"}
    run_cli("gc", data=server.data)
    with sqlite3.connect(server.data / "minihost.sqlite") as db:
        assert db.execute("SELECT count(*) FROM minihost_skysend_notes").fetchone() == (0,)
    assert "1 ended upload(s) and note(s) removed" in run_cli("status", data=server.data).stdout
    assert requests.get(server.url(f"/api/note/{note_id}")).status_code == 404


RECORD = 65536


def ece_encrypt(key: bytes, plaintext: bytes) -> bytes:
    """SkySend's streaming format (ece.ts): a 12-byte base nonce, then 64 KiB
    records, each AES-256-GCM under the nonce XOR its counter (last 4 bytes)."""
    base = os.urandom(12)
    out = [base]
    for counter, start in enumerate(range(0, len(plaintext), RECORD)):
        nonce = base[:8] + (int.from_bytes(base[8:], "big") ^ counter).to_bytes(4, "big")
        out.append(AESGCM(key).encrypt(nonce, plaintext[start:start + RECORD], None))
    return b"".join(out)


def ece_decrypt(key: bytes, data: bytes) -> bytes:
    base, body = data[:12], data[12:]
    out = []
    for counter, start in enumerate(range(0, len(body), RECORD + 16)):
        nonce = base[:8] + (int.from_bytes(base[8:], "big") ^ counter).to_bytes(4, "big")
        out.append(AESGCM(key).decrypt(nonce, body[start:start + RECORD + 16], None))
    return b"".join(out)


def upload_headers(client, size, **extra):
    return {"X-Auth-Token": client.auth_token, "X-Owner-Token": client.owner_token, "X-Salt": b64url(client.salt),
            "X-Max-Downloads": "2", "X-Expire-Sec": "3600", "X-Content-Length": str(size), **extra}


def chunked_upload(server, client, ciphertext, chunk=1 << 20, **extra):
    init = requests.post(server.url("/api/upload/init"), headers=upload_headers(client, len(ciphertext), **extra))
    assert init.status_code == 201, init.text
    upload_id = init.json()["id"]
    pieces = [ciphertext[i:i + chunk] for i in range(0, len(ciphertext), chunk)]
    # Out of order and in parallel, as SkySend's client sends them.
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda item: requests.post(server.url(f"/api/upload/{upload_id}/chunk?index={item[0]}"),
                                                           data=item[1]), reversed(list(enumerate(pieces)))))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    return upload_id


def test_a_file_round_trips_encrypted_through_chunks(server):
    client = Client()
    file_key = hkdf(client.secret, client.salt, "skysend-file-encryption")
    plaintext = b"PLAINTEXT-MARKER " + os.urandom(3 * RECORD + 1234) + b" END-OF-SECRET-FILE"
    ciphertext = ece_encrypt(file_key, plaintext)
    upload_id = chunked_upload(server, client, ciphertext)

    finalize = server.url(f"/api/upload/{upload_id}/finalize")
    assert requests.post(finalize).json() == {"error": "Missing X-Owner-Token header"}
    assert requests.post(finalize, headers={"X-Owner-Token": client.auth_token}).json() == {"error": "Invalid owner token"}
    done = requests.post(finalize, headers={"X-Owner-Token": client.owner_token})
    assert done.status_code == 200 and done.json() == {"id": upload_id}

    meta_iv = os.urandom(12)
    meta = AESGCM(client.meta_key).encrypt(meta_iv, b'{"type":"single","name":"secret.bin","size":1,"mimeType":"x"}', None)
    body = {"encryptedMeta": base64.b64encode(meta).decode(), "nonce": base64.b64encode(meta_iv).decode()}
    meta_url = server.url(f"/api/meta/{upload_id}")
    assert requests.post(meta_url, json=body, headers={"X-Owner-Token": client.owner_token}).json() == {"ok": True}
    again = requests.post(meta_url, json=body, headers={"X-Owner-Token": client.owner_token})
    assert again.status_code == 409 and again.json() == {"error": "Metadata already set"}

    info = requests.get(server.url(f"/api/info/{upload_id}")).json()
    assert info["size"] == len(ciphertext) and info["salt"] == b64url(client.salt) and info["maxDownloads"] == 2
    assert info["encryptedMeta"] == body["encryptedMeta"] and info["downloadCount"] == 0 and info["fileCount"] == 1
    assert requests.get(server.url(f"/api/exists/{upload_id}")).json() == {"exists": True}

    download = server.url(f"/api/download/{upload_id}")
    assert requests.get(download).json() == {"error": "Missing X-Auth-Token header"}
    assert requests.get(download, headers={"X-Auth-Token": "@@"}).json() == {"error": "Invalid auth token format"}
    first = requests.get(download, headers={"X-Auth-Token": client.auth_token})
    assert first.status_code == 200 and first.headers["Cache-Control"] == "no-store"
    assert ece_decrypt(file_key, first.content) == plaintext
    assert requests.get(download, headers={"X-Auth-Token": client.auth_token}).status_code == 200
    third = requests.get(download, headers={"X-Auth-Token": client.auth_token})
    assert third.status_code == 410 and third.json() == {"error": "Download limit reached"}
    gone = requests.get(server.url(f"/api/exists/{upload_id}"))
    assert gone.status_code == 410 and gone.json() == {"exists": False, "reason": "limit_reached"}

    # The server only ever held ciphertext.
    for blob in server.blob_files():
        assert b"PLAINTEXT-MARKER" not in blob.read_bytes() and b"END-OF-SECRET-FILE" not in blob.read_bytes()
    stored = b"".join(path.read_bytes() for path in server.data.glob("minihost.sqlite*"))
    assert client.auth_token.encode() not in stored and client.owner_token.encode() not in stored


def test_a_single_request_upload_shares_its_path_with_the_uploader(server):
    """`POST /api/upload` with a raw body is skysend's upload, with a form the uploader's."""
    client = Client()
    file_key = hkdf(client.secret, client.salt, "skysend-file-encryption")
    plaintext = b"PLAINTEXT-MARKER " + os.urandom(2 * RECORD + 77) + b" END-OF-SECRET-FILE"
    ciphertext = ece_encrypt(file_key, plaintext)
    answer = requests.post(server.url("/api/upload"), data=ciphertext, headers=upload_headers(client, len(ciphertext)))
    assert answer.status_code == 201, answer.text
    file_id = answer.json()["id"]
    assert len(file_id) == 32 and answer.json() == {"id": file_id, "url": server.url(f"/#{file_id}")}
    info = requests.get(server.url(f"/api/info/{file_id}")).json()
    assert info["size"] == len(ciphertext) and info["maxDownloads"] == 2 and info["salt"] == b64url(client.salt)
    download = requests.get(server.url(f"/api/download/{file_id}"), headers={"X-Auth-Token": client.auth_token})
    assert download.status_code == 200 and ece_decrypt(file_key, download.content) == plaintext

    # Streamed without a Content-Length (chunked), as a browser's fetch of a stream sends it.
    streamed = requests.post(server.url("/api/upload"), data=iter([ciphertext[:1000], ciphertext[1000:]]),
                             headers=upload_headers(client, len(ciphertext)))
    assert streamed.status_code == 201, streamed.text
    assert requests.get(server.url(f"/api/info/{streamed.json()['id']}")).json()["size"] == len(ciphertext)

    # A body that disagrees with X-Content-Length, either way, leaves nothing behind.
    blobs = len(list(server.blob_files()))
    for declared, body in [(len(ciphertext) + 1, ciphertext), (len(ciphertext) - 1, ciphertext),
                           (len(ciphertext), iter([ciphertext[:-5]]))]:
        refused = requests.post(server.url("/api/upload"), data=body, headers=upload_headers(client, declared))
        assert refused.status_code == 400, (declared, refused.text)
        assert refused.json() == {"error": "Body size does not match declared content length"}
    bad = requests.post(server.url("/api/upload"), data=b"x", headers={"X-Salt": b64url(client.salt)})
    assert bad.status_code == 400 and bad.json()["error"] == "Invalid request headers"
    assert set(bad.json()["details"]) >= {"authToken", "ownerToken", "maxDownloads", "expireSec"}
    assert len(list(server.blob_files())) == blobs
    with sqlite3.connect(server.data / "minihost.sqlite") as db:
        count = db.execute("SELECT count(*) FROM minihost_uploads WHERE owner_kind = 'skysend'").fetchone()[0]
        orphans = db.execute("SELECT count(*) FROM minihost_skysend_files f LEFT JOIN minihost_uploads u "
                             "ON u.id = f.upload_id WHERE u.id IS NULL").fetchone()[0]
    assert count == 2 and orphans == 0

    # The same path with a form is the uploader's upload, in the uploader's words.
    form = requests.post(server.url("/api/upload"), files={"file": ("a.txt", b"hello")})
    assert form.status_code == 200 and form.json()["status"] == "success", form.text
    assert requests.get(form.json()["file_url_full"]).content == b"hello"


def test_upload_headers_and_sizes_are_checked(server):
    client = Client()

    def init(**headers):
        r = requests.post(server.url("/api/upload/init"), headers={**upload_headers(client, 1000), **headers})
        return r.status_code, r.json()

    status, body = init(**{"X-Salt": "", "X-Max-Downloads": "x"})
    assert status == 400 and body["error"] == "Invalid request headers" and set(body["details"]) == {"salt", "maxDownloads"}
    assert init(**{"X-Expire-Sec": "61"}) == (400, {"error": "Invalid expiry time. Must be one of the allowed options."})
    assert init(**{"X-Max-Downloads": "7"}) == (400, {"error": "Invalid download limit. Must be one of the allowed options."})
    assert init(**{"X-Salt": b64url(os.urandom(8))}) == (400, {"error": "Salt must be exactly 16 bytes"})
    assert init(**{"X-File-Count": "33"}) == (400, {"error": "Maximum 32 files per upload"})
    assert init(**{"X-Content-Length": str((2048 << 20) + 1)}) == (
        413, {"error": f"File size exceeds maximum of {2048 << 20} bytes"})
    assert init(**{"X-Has-Password": "true"}) == (
        400, {"error": "Password-protected uploads require X-Password-Salt and X-Password-Algo"})

    # Fewer bytes than declared: finalize refuses and the session stays open.
    upload_id = chunked_upload(server, client, os.urandom(1000))
    short = requests.post(server.url("/api/upload/init"), headers=upload_headers(client, 5000)).json()["id"]
    assert requests.post(server.url(f"/api/upload/{short}/chunk?index=0"), data=os.urandom(1000)).json() == {"bytesWritten": 1000}
    refused = requests.post(server.url(f"/api/upload/{short}/finalize"), headers={"X-Owner-Token": client.owner_token})
    assert refused.status_code == 400 and refused.json() == {"error": "Body size does not match declared content length"}
    assert requests.post(server.url(f"/api/upload/{short}/chunk?index=x"), data=b"1").json() == {
        "error": "Missing or invalid chunk index"}
    unknown = requests.post(server.url("/api/upload/" + "0" * 32 + "/chunk?index=0"), data=b"1")
    assert unknown.status_code == 404 and unknown.json() == {"error": "Upload session not found or expired"}
    assert requests.get(server.url("/api/info/" + "0" * 32)).json() == {"error": "Upload not found"}
    assert requests.get(server.url(f"/api/info/{upload_id}")).status_code == 404  # never finalized


def test_file_passwords_lock_out_and_the_owner_deletes(server):
    client = Client()
    upload_id = chunked_upload(server, client, os.urandom(5000), **{
        "X-Has-Password": "true", "X-Password-Salt": b64url(os.urandom(16)), "X-Password-Algo": "pbkdf2"})
    assert requests.post(server.url(f"/api/upload/{upload_id}/finalize"),
                         headers={"X-Owner-Token": client.owner_token}).status_code == 200
    url = server.url(f"/api/password/{upload_id}")
    assert requests.post(url, json={"authToken": client.auth_token}).json() == {"ok": True}
    for _ in range(10):
        assert requests.post(url, json={"authToken": b64url(os.urandom(32))}).json() == {"error": "Invalid password"}
    assert requests.post(url, json={"authToken": client.auth_token}).status_code == 429
    delete = server.url(f"/api/upload/{upload_id}")
    assert requests.delete(delete, headers={"X-Owner-Token": client.auth_token}).json() == {"error": "Invalid owner token"}
    assert requests.delete(delete, headers={"X-Owner-Token": client.owner_token}).json() == {"ok": True}
    assert requests.get(server.url(f"/api/info/{upload_id}")).status_code == 404
    assert server.blob_files() == []
