"""A fake of E2B cloud's template API at the HTTP boundary, for publish tests: the routes the
installed e2b SDK calls, with E2B's state (templates, builds, tags assigned once a build is
ready)."""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Call", "FakeE2B"]


@dataclass
class FakeBuild:
    """One build on the fake: its tags are assigned once it is ready, as E2B does."""

    template_id: str
    build_id: str
    tags: list[str]
    status: str = "waiting"  # -> building (started) -> ready (its log read)
    log: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Call:
    """One request to the fake: its route, path (with query), key, path parameters and body."""

    route: str
    path: str
    key: str
    params: dict[str, str]
    body: Any


_ROUTES = (  # (method, path, route): the paths the installed SDK calls (e2b/api/client/api/)
    ("POST", r"/v3/templates", "request"),
    ("GET", r"/templates/aliases/(?P<name>[^/]+)", "alias"),
    ("GET", r"/templates/(?P<tid>[^/]+)/tags", "tags"),
    ("GET", r"/templates/(?P<tid>[^/]+)/files/(?P<hash>[^/]+)", "files"),
    ("PUT", r"/upload/(?P<tid>[^/]+)/(?P<hash>[^/]+)", "upload"),
    ("POST", r"/v2/templates/(?P<tid>[^/]+)/builds/(?P<bid>[^/]+)", "start"),
    ("GET", r"/templates/(?P<tid>[^/]+)/builds/(?P<bid>[^/]+)/status", "status"),
)


def _route(method: str, path: str) -> tuple[str, dict[str, str]]:
    """The route of a request and its path parameters, unquoted; ("unknown", {}) otherwise."""
    for want, pattern, route in _ROUTES:
        found = re.fullmatch(pattern, urllib.parse.urlsplit(path).path)
        if want == method and found:
            return route, {k: urllib.parse.unquote(v) for k, v in found.groupdict().items()}
    return "unknown", {}


class FakeE2B:
    """E2B's template API with state, at the HTTP wire, as the installed SDK calls it.

    Modelled on E2B's documented behaviour (docs/e2b.md): `POST /v3/templates` makes the
    template (or finds it by name) and a `waiting` build that will carry the name's tag
    (`default` without one) and the extra tags; `GET /templates/{id}/files/{hash}` says whether
    those files are there, else where to upload them; `POST /v2/templates/{id}/builds/{build}`
    starts the build; its status is `building` until its log was read (`logsOffset` past the
    end), then `ready`, and only then are its tags assigned (the latest assignment of a tag
    wins); `GET /templates/{id or name}/tags` lists the tags, `GET /templates/aliases/{name}`
    finds the template; 404 for what is not there. `failures` answers the first requests of a
    route with those codes instead (before any state changes).
    """

    def __init__(self, failures: dict[str, list[int]]) -> None:
        self.failures = {route: list(codes) for route, codes in failures.items()}
        self.seen: list[tuple[str, str, str]] = []  # (route, path, X-API-KEY)
        self.templates: dict[str, str] = {}  # name -> template id
        self.builds: dict[str, FakeBuild] = {}  # build id -> build, in request order
        self.tags: dict[str, dict[str, tuple[str, str]]] = {}  # template id -> tag -> (build, at)
        self.files: set[tuple[str, str]] = set()  # (template id, files hash) uploaded
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def count(self, route: str) -> int:
        return sum(r == route for r, _, _ in self.seen)

    def tagged(self, name: str) -> dict[str, str]:
        """Tag -> build id of template `name`, as the fake holds them now."""
        tags = self.tags.get(self.templates.get(name, ""), {})
        return {tag: build for tag, (build, _) in tags.items()}

    def _answer(self, call: Call) -> tuple[int, Any]:
        with self.lock:
            self.seen.append((call.route, call.path, call.key))
            if self.failures.get(call.route):
                code = self.failures[call.route].pop(0)
                return code, {"code": code, "message": f"fake {call.route} failure"}
            if call.route != "upload" and not call.key:
                return 401, {"code": 401, "message": "missing X-API-KEY"}
            handler = getattr(self, f"_{call.route}")
            answer: tuple[int, Any] = handler(call)
            return answer

    # the routes, under the lock: (status code, JSON body or None)

    def _request(self, call: Call) -> tuple[int, Any]:
        name, _sep, tag = str(call.body.get("name") or call.body.get("alias")).partition(":")
        tid = self.templates.setdefault(name, f"tpl-{name}")
        tags = list(dict.fromkeys([tag or "default", *call.body.get("tags", [])]))
        build_id = f"0b9f7a9e-0000-4000-8000-{len(self.builds) + 1:012d}"
        self.builds[build_id] = FakeBuild(tid, build_id, tags)
        return 202, {
            "templateID": tid,
            "buildID": build_id,
            "public": False,
            "names": [f"{name}:{t}" for t in tags],
            "tags": tags,
            "aliases": [name],
        }

    def _template_id(self, ref: str) -> str | None:
        return self.templates.get(ref) or (ref if ref in self.templates.values() else None)

    def _alias(self, call: Call) -> tuple[int, Any]:
        tid = self.templates.get(call.params["name"])
        if tid is None:
            return 404, {"code": 404, "message": f"template '{call.params['name']}' not found"}
        return 200, {"templateID": tid, "public": False}

    def _tags(self, call: Call) -> tuple[int, Any]:
        tid = self._template_id(call.params["tid"])
        if tid is None:
            return 404, {"code": 404, "message": "template not found"}
        tags = self.tags.get(tid, {})
        return 200, [
            {"tag": tag, "buildID": build, "createdAt": at} for tag, (build, at) in tags.items()
        ]

    def _files(self, call: Call) -> tuple[int, Any]:
        tid, files_hash = call.params["tid"], call.params["hash"]
        if tid not in self.templates.values():
            return 404, {"code": 404, "message": "template not found"}
        if (tid, files_hash) in self.files:
            return 201, {"present": True}
        return 201, {"present": False, "url": f"{self.url}/upload/{tid}/{files_hash}"}

    def _upload(self, call: Call) -> tuple[int, Any]:
        self.files.add((call.params["tid"], call.params["hash"]))
        return 200, None

    def _build(self, params: dict[str, str]) -> FakeBuild | None:
        build = self.builds.get(params["bid"])
        return build if build is not None and build.template_id == params["tid"] else None

    def _start(self, call: Call) -> tuple[int, Any]:
        build = self._build(call.params)
        if build is None:
            return 404, {"code": 404, "message": "build not found"}
        if build.status != "waiting":
            return 400, {"code": 400, "message": f"build is {build.status}, not waiting"}
        build.status, build.log = "building", ["built"]
        return 202, None

    def _status(self, call: Call) -> tuple[int, Any]:
        build = self._build(call.params)
        if build is None:
            return 404, {"code": 404, "message": "build not found"}
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(call.path).query)
        offset = int(query.get("logsOffset", ["0"])[0])
        if build.status == "building" and offset >= len(build.log):
            build.status = "ready"  # the tags move to a build once it is ready
            at = datetime.now(UTC).isoformat()
            for tag in build.tags:
                self.tags.setdefault(build.template_id, {})[tag] = (build.build_id, at)
        entries = [
            {"timestamp": datetime.now(UTC).isoformat(), "level": "info", "message": line}
            for line in build.log[offset:]
        ]
        return 200, {
            "templateID": build.template_id,
            "buildID": build.build_id,
            "status": build.status,
            "logs": [],
            "logEntries": entries,
        }

    def _unknown(self, call: Call) -> tuple[int, Any]:
        return 404, {"code": 404, "message": f"the fake has no route {call.path}"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                route, params = _route(self.command, self.path)
                body = json.loads(raw) if raw and route in ("request", "start") else None
                key = self.headers.get("X-API-KEY", "")
                code, answer = fake._answer(Call(route, self.path, key, params, body))
                data = b"" if answer is None else json.dumps(answer).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def __enter__(self) -> FakeE2B:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
