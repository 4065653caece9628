"""The shipped deployment as it runs in production: the workers as one system
user under systemd's UMask=0027, on a socket made the way minihost.socket
makes it, and nginx's workers as another user, with the production nginx
config. The documented layout (README, "Deploy") is that nginx's user joins
the service's group; before it does, nginx can't read a blob."""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

from conftest import BIN, free_port, sha256

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


def sh(*args, **kwargs):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs)


@pytest.fixture
def users():
    assert os.geteuid() == 0, "this test creates system users: run it as root (CI does)"
    suffix = secrets.token_hex(3)
    service, web = f"mhsvc{suffix}", f"mhweb{suffix}"
    for name in (service, web):
        sh("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group", name)
    yield service, web
    for name in (web, service):
        subprocess.run(["userdel", name], capture_output=True)
        subprocess.run(["groupdel", name], capture_output=True)


def test_nginx_as_another_user_serves_blobs_written_under_umask_0027(users):
    service, web = users
    base = Path(tempfile.mkdtemp(prefix="minihost-layout-", dir="/tmp"))
    base.chmod(0o755)
    processes = []
    try:
        # As systemd's StateDirectory= and RuntimeDirectory= would make them.
        data = base / "lib" / "minihost"
        data.mkdir(parents=True)
        shutil.chown(data, service, service)
        data.chmod(0o750)
        run_dir = base / "run"
        run_dir.mkdir()
        # As minihost.socket makes it: owned by the service, group www-data (here: web), 0660.
        socket_path = run_dir / "minihost.sock"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(socket_path))
        listener.listen(64)
        shutil.chown(socket_path, service, web)
        socket_path.chmod(0o660)
        fd = listener.fileno()
        serve_log = open(base / "serve.log", "w+")
        serve = subprocess.Popen(
            ["bash", "-c", f'exec 3<&{fd} {fd}<&-; umask 0027; exec "$@"', "bash",
             "setpriv", f"--reuid={service}", f"--regid={service}", "--init-groups", "--inh-caps=-all",
             str(BIN), "serve", "--data", str(data), "--workers", "8"],
            pass_fds=(fd,), env={**os.environ, "LISTEN_FDS": "1", "MINIHOST_PUBLIC_ORIGIN": "https://files.test"},
            stdout=serve_log, stderr=subprocess.STDOUT, start_new_session=True)
        processes.append(serve)
        listener.close()

        cert, key = base / "cert.pem", base / "key.pem"
        sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=files.test",
           "-keyout", str(key), "-out", str(cert))
        https_port = free_port()
        site = sh(str(BIN), "nginx-config", "--ssl-certificate", str(cert), "--ssl-certificate-key", str(key),
                  "--http-listen", f"127.0.0.1:{free_port()}", "--https-listen", f"127.0.0.1:{https_port}",
                  "--socket", str(socket_path), "--blob-root", str(data / "blobs"), "--server-name", "files.test").stdout
        prefix = base / "nginx"
        prefix.mkdir()
        (prefix / "site.conf").write_text(site)
        (prefix / "nginx.conf").write_text(f"""
daemon off; master_process on; worker_processes 1; user {web};
pid {prefix}/nginx.pid; error_log {prefix}/error.log warn;
events {{}}
http {{
  client_body_temp_path {prefix}/cb; fastcgi_temp_path {prefix}/fc; proxy_temp_path {prefix}/pr;
  uwsgi_temp_path {prefix}/uw; scgi_temp_path {prefix}/sc; access_log off;
  include {prefix}/site.conf;
}}
""")
        nginx = subprocess.Popen([shutil.which("nginx") or "/usr/sbin/nginx", "-p", str(prefix), "-c",
                                  str(prefix / "nginx.conf"), "-e", str(prefix / "error.log")],
                                 start_new_session=True)
        processes.append(nginx)
        base_url = f"https://127.0.0.1:{https_port}"

        def get(path, **kwargs):
            return requests.get(base_url + path, verify=False, headers={"Host": "files.test", **kwargs.pop("headers", {})},
                                timeout=10, **kwargs)

        deadline = time.time() + 20
        while True:
            try:
                if get("/api/health").status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.time() > deadline:
                serve_log.seek(0)
                raise AssertionError("no health answer:\n" + serve_log.read() + (prefix / "error.log").read_text())
            time.sleep(0.1)

        credential = sh("setpriv", f"--reuid={service}", f"--regid={service}", "--init-groups", str(BIN), "client",
                        "create", "app", "--scopes", "upload,download", "--data", str(data)).stdout.strip().splitlines()[-1]
        payload = os.urandom(200_000)
        up = requests.post(base_url + "/api/minihost/upload", verify=False, timeout=30,
                           headers={"Host": "files.test", "Authorization": f"Bearer {credential}"},
                           files={"file": ("a.bin", payload)})
        assert up.status_code == 200, up.text
        upload_id = up.json()["uploadId"]
        blob = data / "blobs" / up.json()["sha256"][:2] / up.json()["sha256"][2:4] / up.json()["sha256"]
        assert blob.stat().st_mode & 0o777 == 0o640 and blob.owner() == service
        auth = {"Authorization": f"Bearer {credential}"}

        # nginx's user outside the service's group: the shipped umask keeps the blob from it.
        assert get(f"/api/minihost/download?id={upload_id}", headers=auth).status_code == 403

        # The documented step: nginx's user joins the service's group.
        sh("usermod", "-aG", service, web)
        os.kill(nginx.pid, signal.SIGHUP)  # new nginx workers take the new group list
        deadline = time.time() + 10
        while True:
            r = get(f"/api/minihost/download?id={upload_id}", headers=auth)
            if r.status_code == 200 or time.time() > deadline:
                break
            time.sleep(0.2)
        assert r.status_code == 200 and sha256(r.content) == sha256(payload)
        assert r.headers["X-Content-Type-Options"] == "nosniff"

        # The group reaches blobs and nothing else: the database and the key stay the service's.
        for private in ["minihost.sqlite", "secret.key"]:
            denied = subprocess.run(["setpriv", f"--reuid={web}", f"--regid={web}", "--init-groups", "cat",
                                     str(data / private)], capture_output=True)
            assert denied.returncode != 0, f"{private} is readable by nginx's user"
        assert subprocess.run(["setpriv", f"--reuid={web}", f"--regid={web}", "--init-groups", "cat", str(blob)],
                              capture_output=True).stdout == payload
    finally:
        for process in processes:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.kill(process.pid, signal.SIGKILL)
                    process.wait()
        shutil.rmtree(base, ignore_errors=True)
