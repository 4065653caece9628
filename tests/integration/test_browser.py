"""Stored bytes are hostile content, proved in a real browser: an uploaded
page whose script calls an operator endpoint with the operator's cookie
must not run, or its request must not reach the server."""

import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import requests

from browser import Browser
from conftest import free_port, run_cli

OPERATOR_PASSWORD = "correct horse battery"


class Beacon:
    """A loopback HTTP server that counts the hits a script makes to it, and
    can serve a page with no protection at all (the positive control)."""

    def __init__(self, page=b""):
        self.hits = []
        beacon = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/page":
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.end_headers()
                    self.wfile.write(beacon.page)
                    return
                beacon.hits.append(self.path)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.page = page
        self.server = HTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def attack_page(beacon_url, server_base):
    """Tries everything a hostile upload would: call the operator API with
    the ambient cookie, and report home."""
    return f"""<!doctype html><html><head><title>hostile</title></head><body><h1 id="mark">hostile page</h1>
<script>
window.ran = true;
fetch("{server_base}/api/minihost/admin-purge-unhandled", {{method: "POST", credentials: "include",
  headers: {{"Content-Type": "application/json"}}, body: '{{"olderThanHours": 0}}'}}).catch(() => {{}});
fetch("/api/minihost/admin-purge-unhandled", {{method: "POST", credentials: "include",
  headers: {{"Content-Type": "application/json"}}, body: '{{"olderThanHours": 0}}'}}).catch(() => {{}});
new Image().src = "{beacon_url}/ran";
</script></body></html>""".encode()


def attack_svg(beacon_url):
    return f"""<svg xmlns="http://www.w3.org/2000/svg" onload="new Image().src='{beacon_url}/svg-ran'">
<script>fetch('/api/minihost/admin-purge-unhandled', {{method: 'POST', credentials: 'include'}});
new Image().src = '{beacon_url}/svg-script';</script><circle r="5"/></svg>""".encode()


@pytest.fixture
def browser():
    b = Browser()
    yield b
    b.close()


@pytest.fixture
def beacon():
    b = Beacon()
    yield b
    b.close()


def attack_setup(server, browser, beacon):
    """An operator signed in in the browser, an app upload a purge would
    take, and a published hostile page. Returns (credential, victim id, page URL)."""
    signed_in_operator(server, browser)
    credential = server.client()
    victim = server.upload(credential, b"an app's unhandled upload").json()["uploadId"]
    _, html_url = publish(server, credential, attack_page(beacon.url, server.base), "page.html", "text/html")
    return credential, victim, html_url


def assert_nothing_reached(server, beacon, victim):
    assert beacon.hits == []
    assert purge_attempts(server) == 0
    assert server.db("SELECT state FROM minihost_uploads WHERE id = ?", victim) == [("ready",)]


def signed_in_operator(server, browser):
    run_cli("admin", "create", "operator", "--password-stdin", data=server.data, stdin=OPERATOR_PASSWORD + "\n")
    r = requests.post(server.url("/api/minihost/admin-login"), json={"username": "operator", "password": OPERATOR_PASSWORD})
    cookie = r.cookies["minihost_admin"]
    browser.set_cookie(server.base + "/", "minihost_admin", cookie)


def publish(server, credential, data, name, content_type):
    upload_id = server.upload(credential, data, name=name, content_type=content_type).json()["uploadId"]
    r = requests.post(server.url("/api/minihost/publishing_upload"), headers=server.auth(credential),
                      json={"upload_id": upload_id, "status": "published"})
    return upload_id, r.json()["cache_url"]


def purge_attempts(server):
    return server.db("SELECT COUNT(*) FROM minihost_audit_log WHERE action = 'admin_purge_unhandled'")[0][0]


def test_the_harness_sees_a_script_that_runs(browser, beacon):
    """Positive control: the same page from a server with no protection runs
    its script and the beacon sees it, so the checks below can fail."""
    beacon.page = attack_page(beacon.url, "http://127.0.0.1:1")
    browser.open(beacon.url + "/page")
    assert browser.evaluate("window.ran === true") is True
    assert "/ran" in beacon.hits


def test_an_uploaded_page_cannot_act_with_the_operators_cookie(server, browser, beacon):
    credential, victim, html_url = attack_setup(server, browser, beacon)
    _, svg_url = publish(server, credential, attack_svg(beacon.url), "pic.svg", "image/svg+xml")
    _, sneaky_url = publish(server, credential, attack_page(beacon.url, server.base), "x.png", "image/png;x=,text/html")
    run_cli("user", "create", "alice", "--password-stdin", data=server.data, stdin="alice primary password\n")
    plain = requests.post(server.url("/api/basicHTMLUpload"), data={"username": "alice", "password": "alice primary password"},
                          files={"file": ("page.html", attack_page(beacon.url, server.base), "text/html")})
    raw = dict(line.split(": ", 1) for line in plain.text.splitlines())["Raw"]
    for url in [html_url, svg_url, sneaky_url, raw, server.url(f"/minihost/dashboard/admin-download?id={victim}&inline=1")]:
        browser.open(url)
        assert browser.evaluate("window.ran === true") is not True, url
    assert_nothing_reached(server, beacon, victim)
    time.sleep(1.2)  # nginx flushes its access log every second
    assert "admin-purge-unhandled" not in (server.data / "nginx" / "access.log").read_text()


def test_on_the_content_origin_pages_render_but_their_scripts_do_not_run(make_server, browser, beacon):
    content_origin = f"http://127.0.0.1:{free_port()}"
    server = make_server({"MINIHOST_CONTENT_ORIGIN": content_origin})
    credential, victim, html_url = attack_setup(server, browser, beacon)
    assert html_url.startswith(content_origin)
    browser.open(html_url)
    # The page is shown (inline, as on a user-content domain)...
    assert browser.evaluate("document.getElementById('mark') && document.getElementById('mark').textContent") \
        == "hostile page"
    # ...in a sandbox: no script ran, nothing reached the beacon or the server.
    assert browser.evaluate("window.ran === true") is not True
    _, svg_url = publish(server, credential, attack_svg(beacon.url), "pic.svg", "image/svg+xml")
    browser.open(svg_url)
    assert_nothing_reached(server, beacon, victim)
