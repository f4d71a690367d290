"""A BackendDeveloperAgent on `boxsmith.sandbox`: the pattern from the E2B integration notes.

The agent takes a task (files to write and a command that checks them), runs it in a fresh
sandbox created with the user's and team's ids as metadata, and returns a report. The "plan" is
given code, not an LLM call, so the run is deterministic.

Run it against E2B or the local backend (`boxsmith backend serve`) with `E2B_API_KEY`, and for the
local one `E2B_API_URL` and `E2B_SANDBOX_URL`; the template (with python3) comes from
`BOXSMITH_SANDBOX_TEMPLATE`:

    python examples/backend_agent.py
"""

from __future__ import annotations

import asyncio
import sys
import textwrap
from dataclasses import dataclass, field

from boxsmith.sandbox import SandboxSession


@dataclass(frozen=True)
class Task:
    """Files to write into the sandbox and a bash command that proves they work."""

    title: str
    files: dict[str, str]
    check: str
    timeout: float = 60


@dataclass(frozen=True)
class Report:
    """What the agent did: pass or fail, the check's output and where it ran."""

    title: str
    passed: bool
    output: str
    sandbox_id: str | None
    seconds: float
    errors: list[str] = field(default_factory=list)

    def format(self) -> str:
        """The report as the agent prints it."""
        verdict = "PASS" if self.passed else "FAIL"
        head = f"{verdict} {self.title} ({self.seconds:.1f}s, sandbox {self.sandbox_id})"
        return "\n".join([head, *self.errors, self.output.rstrip()])


class BackendDeveloperAgent:
    """Writes a task's files into a sandbox, runs its check and reports; the sandbox never leaks."""

    def __init__(
        self,
        template: str | None = None,
        user_id: str = "",
        team_id: str = "",
        access_token: str | None = None,
    ) -> None:
        self.template, self.user_id, self.team_id = template, user_id, team_id
        # as in the notes: team headers only when there is a team and a token
        self.headers = (
            {"X-Supabase-Team": team_id, "X-Supabase-Token": access_token}
            if team_id and access_token
            else {}
        )

    async def execute_task(self, task: Task) -> Report:
        """Run one task in its own sandbox and report on it."""
        async with SandboxSession(
            self.template,
            user_id=self.user_id,
            team_id=self.team_id,
            metadata={"task": task.title[:60]},
            timeout=600,
            headers=self.headers,
        ) as box:
            await box.write_files(task.files)
            result = await box.run_code(task.check, "bash", timeout=task.timeout)
        return Report(
            title=task.title,
            passed=result.ok,
            output=result.stdout + result.stderr,
            sandbox_id=box.sandbox_id,
            seconds=result.seconds,
            errors=[result.error] if result.error else [],
        )


HANDLER = '''\
"""A JSON HTTP handler on the standard library (no framework)."""

import json
from http.server import BaseHTTPRequestHandler


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            self._send(200, {"status": "ok"})
        else:
            self._send(404, {"error": f"no route {self.path}"})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._send(200, {"echo": json.loads(body or b"null")})

    def _send(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass
'''

TEST = """\
import json
import threading
import unittest
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer

from handler import Handler


class HandlerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()
        cls.url = f"http://127.0.0.1:{cls.server.server_address[1]}"

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()

    def test_health(self):
        with urllib.request.urlopen(self.url + "/health") as response:
            self.assertEqual(json.load(response), {"status": "ok"})

    def test_echo(self):
        request = urllib.request.Request(self.url + "/echo", data=b'{"n": 42}', method="POST")
        with urllib.request.urlopen(request) as response:
            self.assertEqual(json.load(response), {"echo": {"n": 42}})

    def test_unknown_route_is_404(self):
        with self.assertRaises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(self.url + "/nope")
        self.assertEqual(caught.exception.code, 404)


if __name__ == "__main__":
    unittest.main()
"""

HANDLER_TASK = Task(
    title="a plain-Python JSON HTTP handler and its test",
    files={"service/handler.py": HANDLER, "service/test_handler.py": TEST},
    check=textwrap.dedent("""\
        cd ~/service
        python3 -m unittest -v test_handler 2>&1
    """),
)


def main() -> int:
    """Run the handler task once; exit 0 when its tests pass."""
    agent = BackendDeveloperAgent(user_id="example-user", team_id="example-team")
    report = asyncio.run(agent.execute_task(HANDLER_TASK))
    print(report.format())
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
