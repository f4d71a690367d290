"""Preview URLs: `sandbox.get_host(port)` reaches a port inside the sandbox through the local
backend, as on E2B, with the unchanged e2b SDK against `boxsmith backend serve` over real HTTP.

Python's resolver does not resolve `*.localhost` here (glibc without libnss-myhostname), so the
Python clients connect to 127.0.0.1:<backend port> and send the preview host as their Host
header (`_get`); curl resolves `*.localhost` itself and opens the real URL, with no DNS set up.

Marked `docker`: templates are built on the real engine, sandboxes are containers.
"""

from __future__ import annotations

import json
import shlex
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2b import Sandbox, Template
from websockets.sync.client import connect

from tests.browser import artifacts, chromium
from tests.helpers import Backend, cli, serving_backend

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[1]
HTTP_PORT, WS_PORT = 8000, 8765
CLOSED = "The sandbox is running but port is not open"

# A stdlib HTTP server: / answers a greeting, /host the Host header it saw, /headers all of
# them, /echo the POSTed body; /stream writes a line, then waits for /tmp/go before the rest.
SERVER = r"""
import json, os, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, body, kind="text/plain"):
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_GET(self):
        if self.path == "/host":
            return self.answer(self.headers["Host"].encode())
        if self.path == "/headers":
            return self.answer(json.dumps(dict(self.headers)).encode(), "application/json")
        if self.path == "/stream":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.chunk(b"first\n")
            for _ in range(1200):
                if os.path.exists("/tmp/go"):
                    break
                time.sleep(0.05)
            self.chunk(b"second\n")
            self.chunk(b"third\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        self.answer(b"hello from the sandbox\n")

    def do_POST(self):
        self.answer(b"echo: " + self.rfile.read(int(self.headers["Content-Length"])))

ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
"""

# A stdlib WebSocket echo server: the handshake, then text frames echoed until a close.
WS_SERVER = r"""
import base64, hashlib, socketserver, struct

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        headers = {}
        self.rfile.readline()
        while (line := self.rfile.readline().strip()):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        key = headers["sec-websocket-key"].encode()
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        reply = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        reply += b"Sec-WebSocket-Accept: " + accept + b"\r\n"
        if "sec-websocket-protocol" in headers:
            chosen = headers["sec-websocket-protocol"].split(",")[0].strip()
            reply += b"Sec-WebSocket-Protocol: " + chosen.encode() + b"\r\n"
        self.wfile.write(reply + b"\r\n")
        while True:
            first, second = self.rfile.read(2)
            opcode, size = first & 0x0F, second & 0x7F
            if size == 126:
                size = struct.unpack(">H", self.rfile.read(2))[0]
            elif size == 127:
                size = struct.unpack(">Q", self.rfile.read(8))[0]
            mask = self.rfile.read(4) if second & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(size)))
            if opcode == 8:
                self.wfile.write(b"\x88\x02\x03\xe8")
                return
            if opcode == 1:
                out = b"echo: " + data
                if len(out) < 126:
                    head = bytes([0x81, len(out)])
                else:
                    head = bytes([0x81, 126]) + struct.pack(">H", len(out))
                self.wfile.write(head + out)

class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True

Server(("0.0.0.0", 8765), Echo).serve_forever()
"""


def _get(
    backend: Backend, host: str, path: str = "/", *, headers: dict[str, str] | None = None
) -> httpx.Response:
    """GET `path` of a preview host, sent to the backend's address with `host` as Host."""
    with httpx.Client(timeout=30, trust_env=False) as client:
        return client.get(f"{backend.url}{path}", headers={"Host": host, **(headers or {})})


def _serve(sandbox: Sandbox) -> None:
    """Start the HTTP and WebSocket servers in `sandbox` and wait until both listen."""
    sandbox.files.write("/tmp/server.py", SERVER)
    sandbox.files.write("/tmp/ws_server.py", WS_SERVER)
    sandbox.commands.run("python3 /tmp/server.py", background=True)
    sandbox.commands.run("python3 /tmp/ws_server.py", background=True)
    probe = (
        "import socket, time\n"
        "for port in (8000, 8765):\n"
        "    for _ in range(200):\n"
        "        try: socket.create_connection(('127.0.0.1', port), 1).close(); break\n"
        "        except OSError: time.sleep(0.05)\n"
        "    else: raise SystemExit(f'port {port} did not open')\n"
    )
    sandbox.files.write("/tmp/probe.py", probe)
    sandbox.commands.run("python3 /tmp/probe.py", timeout=30)


@pytest.fixture(scope="module")
def python_template(backend: Backend) -> str:
    """python:3.11-slim as a template, nothing added."""
    name = f"preview-py-{uuid.uuid4().hex[:8]}"
    Template.build(Template().from_image("python:3.11-slim"), name)
    return name


@pytest.fixture(scope="module")
def web(python_template: str) -> Iterator[Sandbox]:
    """A public sandbox serving HTTP on 8000 and a WebSocket echo on 8765."""
    sandbox = Sandbox.create(python_template, timeout=600)
    try:
        _serve(sandbox)
        yield sandbox
    finally:
        sandbox.kill()


def test_create_answers_a_domain_that_resolves_to_loopback(backend: Backend, web: Sandbox) -> None:
    assert web.sandbox_domain == f"localhost:{backend.port}"
    assert web.get_host(HTTP_PORT) == f"{HTTP_PORT}-{web.sandbox_id}.localhost:{backend.port}"
    assert Sandbox.get_info(web.sandbox_id).sandbox_domain == f"localhost:{backend.port}"
    assert Sandbox.connect(web.sandbox_id).get_host(3000) == web.get_host(3000)
    assert web.traffic_access_token is None  # public ports, as on E2B by default


def test_get_post_and_the_host_the_server_saw(backend: Backend, web: Sandbox) -> None:
    host = web.get_host(HTTP_PORT)
    got = _get(backend, host)
    assert (got.status_code, got.text) == (200, "hello from the sandbox\n")
    assert _get(backend, host, "/host").text == host
    sent = _get(backend, host, "/headers", headers={"X-Forwarded-For": "10.1.2.3"}).json()
    seen = {name.lower(): value for name, value in sent.items()}
    assert seen["x-forwarded-for"] == "10.1.2.3, 127.0.0.1"
    assert (seen["x-forwarded-proto"], seen["x-forwarded-host"]) == ("http", host)
    assert "connection" not in seen or seen["connection"] != "Upgrade"
    with httpx.Client(timeout=30, trust_env=False) as client:
        posted = client.post(f"{backend.url}/echo", content=b"ping body", headers={"Host": host})
    assert (posted.status_code, posted.text) == (200, "echo: ping body")


def test_curl_opens_the_real_preview_url_without_dns_setup(web: Sandbox) -> None:
    url = f"http://{web.get_host(HTTP_PORT)}/"
    done = subprocess.run(
        ["curl", "-sS", "--noproxy", "*", "--max-time", "30", url],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "hello from the sandbox\n"), done.stderr


def test_a_streamed_answer_flows_chunk_by_chunk(backend: Backend, web: Sandbox) -> None:
    web.commands.run("rm -f /tmp/go")
    host = web.get_host(HTTP_PORT)
    with (
        httpx.Client(timeout=30, trust_env=False) as client,
        client.stream("GET", f"{backend.url}/stream", headers={"Host": host}) as response,
    ):
        assert response.status_code == 200
        lines = response.iter_lines()
        # the server holds the rest until /tmp/go exists: a buffering proxy never shows this
        # line, and the read times out after 30 s instead
        assert next(lines) == "first"
        web.files.write("/tmp/go", "")
        assert list(lines) == ["second", "third"]


def test_a_websocket_round_trip(backend: Backend, web: Sandbox) -> None:
    sock = socket.create_connection(("127.0.0.1", backend.port), timeout=30)
    uri = f"ws://{web.get_host(WS_PORT)}/chat"  # the Host header; the socket goes to the backend
    with connect(uri, sock=sock, subprotocols=["echo.v1"], open_timeout=30) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "echo.v1"
        ws.send("hello")
        assert ws.recv(timeout=30) == "echo: hello"
        ws.send("again")
        assert ws.recv(timeout=30) == "echo: again"


def test_a_port_nothing_listens_on(backend: Backend, web: Sandbox) -> None:
    got = _get(backend, web.get_host(9))
    assert got.status_code == 502
    assert got.json() == {"sandboxId": web.sandbox_id, "message": CLOSED, "port": 9}
    page = _get(backend, web.get_host(9), headers={"User-Agent": "Mozilla/5.0 (X11; Linux)"})
    assert (page.status_code, page.headers["content-type"]) == (502, "text/html; charset=utf-8")
    assert "<title>Closed Port Error</title>" in page.text
    assert (
        f"The sandbox {web.sandbox_id} is running but there&#x27;s no service running on port 9."
        in page.text
    )
    assert "Connection refused on port 9" in page.text
    assert "<img" not in page.text  # self-contained: nothing fetched from elsewhere
    assert "http" not in page.text
    # envd's port is the backend itself here: not routed through a preview host
    envd = _get(backend, web.get_host(49983))
    assert (envd.status_code, envd.json()["message"]) == (502, CLOSED)


def test_a_killed_or_unknown_sandbox_is_not_found(backend: Backend, python_template: str) -> None:
    sandbox = Sandbox.create(python_template, timeout=120)
    host = sandbox.get_host(HTTP_PORT)
    sandbox.kill()
    got = _get(backend, host)
    assert got.status_code == 502
    assert got.json() == {
        "sandboxId": sandbox.sandbox_id,
        "message": "The sandbox was not found",
        "code": 502,
    }
    unknown = "i" + "0" * 20
    got = _get(backend, f"{HTTP_PORT}-{unknown}.localhost:{backend.port}")
    assert (got.status_code, got.json()["sandboxId"]) == (502, unknown)


def test_private_traffic_needs_the_traffic_token(backend: Backend, python_template: str) -> None:
    sandbox = Sandbox.create(python_template, timeout=300, network={"allow_public_traffic": False})
    try:
        token = sandbox.traffic_access_token
        assert isinstance(token, str)
        assert len(token) >= 32
        assert Sandbox.connect(sandbox.sandbox_id).traffic_access_token == token
        _serve(sandbox)
        host = sandbox.get_host(HTTP_PORT)
        secured = "Sandbox is secured with traffic access token."
        missing = _get(backend, host)
        assert missing.status_code == 403
        assert missing.json() == {
            "sandboxId": sandbox.sandbox_id,
            "message": f"{secured} Token header 'e2b-traffic-access-token' is missing",
            "code": 403,
        }
        wrong = _get(backend, host, headers={"e2b-traffic-access-token": token[::-1]})
        assert (wrong.status_code, wrong.json()["message"]) == (
            403,
            f"{secured} Provided token in header 'e2b-traffic-access-token' is invalid",
        )
        right = _get(backend, host, headers={"e2b-traffic-access-token": token})
        assert (right.status_code, right.text) == (200, "hello from the sandbox\n")
        # the token is the proxy's: the sandbox's server never sees it
        seen = _get(backend, host, "/headers", headers={"e2b-traffic-access-token": token})
        assert "e2b-traffic-access-token" not in {k.lower() for k in seen.json()}
    finally:
        sandbox.kill()


def test_connection_cap_and_domain_override(tmp_path: Path) -> None:
    env = {"BOXSMITH_BACKEND_MAX_PROXY_CONNECTIONS": "1", "BOXSMITH_BACKEND_DOMAIN": "box.test"}
    with serving_backend(tmp_path, env) as limited:
        name = f"preview-cap-{uuid.uuid4().hex[:8]}"
        Template.build(Template().from_image("python:3.11-slim"), name)
        sandbox = Sandbox.create(name, timeout=300)
        try:
            host = sandbox.get_host(HTTP_PORT)
            assert host == f"{HTTP_PORT}-{sandbox.sandbox_id}.box.test"
            _serve(sandbox)
            with (
                httpx.Client(timeout=30, trust_env=False) as client,
                client.stream("GET", f"{limited.url}/stream", headers={"Host": host}) as held,
            ):
                lines = held.iter_lines()
                assert next(lines) == "first"  # one connection open, held by the server
                refused = _get(limited, host)
                assert refused.status_code == 503
                assert refused.json()["code"] == 503
                assert "BOXSMITH_BACKEND_MAX_PROXY_CONNECTIONS" in refused.json()["message"]
                sandbox.files.write("/tmp/go", "")
                assert list(lines) == ["second", "third"]
            assert _get(limited, host).status_code == 200
            _a_client_leaving_a_silent_server_frees_its_slot(limited, sandbox, host)
        finally:
            sandbox.kill()


# accepts connections (the kernel completes them) and never reads or answers
SILENT = (
    "import socket, time; s = socket.socket(); s.bind(('0.0.0.0', 8001)); s.listen(); "
    "time.sleep(10**6)"
)


def _a_client_leaving_a_silent_server_frees_its_slot(
    limited: Backend, sandbox: Sandbox, host: str
) -> None:
    """With one proxied connection allowed: a client that gives up on a port whose server never
    answers gives its connection back (the proxy hears it leave before any answer)."""
    sandbox.commands.run(f"python3 -c {shlex.quote(SILENT)}", background=True)
    wait = "import socket; socket.create_connection(('127.0.0.1', 8001), 1).close()"
    sandbox.commands.run(  # until the silent server listens
        f"for i in $(seq 100); do python3 -c {shlex.quote(wait)} 2>/dev/null && exit; "
        "sleep 0.05; done; exit 1",
        timeout=30,
    )
    with (
        httpx.Client(timeout=1, trust_env=False) as client,
        pytest.raises(httpx.ReadTimeout),  # held by the server: the client gives up and closes
    ):
        client.get(f"{limited.url}/", headers={"Host": sandbox.get_host(8001)})
    # the backend hears the close on its own time: until it has, the one slot is taken (503)
    for _ in range(100):
        answer = _get(limited, host)
        if answer.status_code != 503:
            break
        time.sleep(0.1)
    assert answer.status_code == 200, answer.text


def test_only_the_sandboxes_domain_reaches_their_ports(backend: Backend, web: Sandbox) -> None:
    """A name other than the sandboxes' domain (a DNS-rebinding page, say) is not routed."""
    port = backend.url.rsplit(":", 1)[1]
    for other in (f"evil.example:{port}", "evil.example", f"localhost.evil.example:{port}"):
        foreign = f"{HTTP_PORT}-{web.sandbox_id}.{other}"
        answer = _get(backend, foreign)
        assert answer.status_code == 404, (foreign, answer.status_code, answer.text[:200])
        assert "no route" in answer.json()["message"]
    assert _get(backend, web.get_host(HTTP_PORT)).status_code == 200


# the title Streamlit gives an app that sets no page_title (the bundled one does not)
STREAMLIT_TITLE = "Streamlit"
# the bundled templates, their app's port and a path that answers 200 once it runs
BUNDLED = {
    "streamlit-developer:1.0.1": (8501, "/_stcore/health"),
    "gradio-developer:1.0.1": (7860, "/"),
    "python-data-311:1.1.0": (49999, "/api"),
}


def test_bundled_templates_answer_through_their_preview_url(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(REPO / "template_specs", tmp_path / "template_specs")
    assert cli(tmp_path, "render").code == 0
    monkeypatch.setenv("BOXSMITH_BACKEND_DIR", str(backend.data))
    monkeypatch.setenv("BOXSMITH_BACKEND_PORT", str(backend.port))
    names = [ref.split(":")[0] for ref in BUNDLED]
    published = cli(tmp_path, "publish", *names, "--target", "local")
    assert published.code == 0, published.err
    for ref, (port, path) in BUNDLED.items():
        sandbox = Sandbox.create(ref, timeout=600)
        try:
            got = _get(backend, sandbox.get_host(port), path)
            assert got.status_code == 200, (ref, got.status_code, got.text[:500])
            if ref.startswith("streamlit"):
                _streamlit_stream_opens(backend, sandbox.get_host(port))
                _streamlit_page_renders(sandbox.get_host(port))
        finally:
            sandbox.kill()


def _streamlit_stream_opens(backend: Backend, host: str) -> None:
    """Streamlit's own WebSocket (`/_stcore/stream`) opens through the preview host."""
    sock = socket.create_connection(("127.0.0.1", backend.port), timeout=30)
    origin = {"Origin": f"http://{host}"}
    with connect(f"ws://{host}/_stcore/stream", sock=sock, additional_headers=origin) as ws:
        assert ws.protocol.state.name == "OPEN"


def _streamlit_page_renders(host: str) -> None:
    """Headless Chromium opens the real preview URL (it resolves `*.localhost` itself), the
    app renders over its WebSocket and the page has the app's title; the screenshot is kept
    in the test artifacts."""
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        answer = page.goto(f"http://{host}/", wait_until="load", timeout=60_000)
        assert answer is not None
        assert answer.status == 200
        # the script's output arrives over /_stcore/stream: through the proxy's WebSocket
        page.get_by_text("Hello, world").wait_for(state="visible", timeout=60_000)
        page.screenshot(path=artifacts() / "preview-streamlit.png", full_page=True)
        assert page.title() == STREAMLIT_TITLE
        assert errors == []


def test_status_lists_the_new_settings(backend: Backend) -> None:
    info = json.loads((backend.data / "server.json").read_text())
    assert info["limits"]["max_proxy_connections"] == 256
    assert info["limits"]["domain"] == f"localhost:{backend.port}"
