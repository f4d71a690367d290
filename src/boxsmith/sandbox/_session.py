"""Sandboxes for agent code: create one from a template, write files, run code, always clean up.

`SandboxSession` is an async context manager over the e2b SDK's `AsyncSandbox`;
`SandboxSessionSync` runs the same session on a private event loop for callers without asyncio.
Both work against E2B and against `boxsmith backend serve` (the `E2B_*` environment variables).

What they promise:
- The sandbox is killed when the block ends: normally, on an exception (which propagates), on
  cancellation, also while the create request is in flight, and on Ctrl-C in the sync wrapper.
  A kill that fails is logged, never raised over the block's own exception.
- Create is retried on transient failures (`is_transient`) with exponential backoff and jitter.
  Every attempt of one session sends the same idempotency key, so a retry after a lost answer
  does not make a second sandbox where the API honours the key.
- `run_code` returns a `CodeResult`; a non-zero exit, a missing interpreter and a timeout are
  results, not exceptions. Failures of the SDK become `SandboxError` (exit code 3), chained.
- Every call logs one line on the `boxsmith.sandbox` logger: operation, sandbox id, duration and
  outcome (INFO; WARNING for a retried create attempt or a failed kill).
- When `close` returns, and when a create fails, no thread of the SDK is still handing a result
  to the event loop, so a script may end right after the block (`_teardown.settle`).

The results live in `_results`, the retry loop in `_retry`, logging and error translation in
`_calls`, the kill and the wait after it in `_teardown`.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from e2b import (
    AsyncSandbox,
    AuthenticationException,
    CommandExitException,
    NotFoundException,
    TimeoutException,
)
from e2b.sandbox.filesystem.filesystem import WriteEntry

from boxsmith._internal.retry import RetryPolicy, is_transient
from boxsmith.sandbox._calls import SDK_ERRORS, logged, translated
from boxsmith.sandbox._results import EXIT_NOT_FOUND, EXIT_TIMED_OUT, CodeResult, SandboxError
from boxsmith.sandbox._retry import DEFAULT_RETRY, with_retries
from boxsmith.sandbox._teardown import kill, settle, wait_through_cancel

__all__ = ["DEFAULT_TEMPLATE", "DRAIN_TIMEOUT", "LANGUAGES", "TEMPLATE_ENV", "SandboxSession"]

TEMPLATE_ENV = "BOXSMITH_SANDBOX_TEMPLATE"
DEFAULT_TEMPLATE = "base"  # the SDK's own default template
LANGUAGES = {"python": ("python3", ".py"), "javascript": ("node", ".js"), "bash": ("bash", ".sh")}
DRAIN_TIMEOUT = 90.0  # a cancelled create (60 s request timeout) and its kill


class SandboxSession:
    """One sandbox for the length of an `async with` block.

    Example:
        async with SandboxSession("my-template", user_id="u1", team_id="t1") as box:
            await box.write_files({"app.py": "print(6 * 7)"})
            result = await box.run_code("print(6 * 7)")

    Args:
        template: template name or id; default `$BOXSMITH_SANDBOX_TEMPLATE`, else "base".
        metadata: stored on the sandbox (and shown by `Sandbox.list`).
        user_id: added to metadata as `userID`.
        team_id: added to metadata as `teamID`.
        timeout: sandbox lifetime in seconds; E2B kills it then even if nobody does.
        headers: extra headers on every E2B API request (the SDK's `api_headers`).
        envs: environment variables inside the sandbox.
        api_key: default `$E2B_API_KEY`.
        api_url: default `$E2B_API_URL` or E2B's.
        sandbox_url: default `$E2B_SANDBOX_URL` or E2B's.
        retry: how create is retried on transient failures.
        env: the environment to read `BOXSMITH_SANDBOX_TEMPLATE` from (default `os.environ`).
    """

    def __init__(
        self,
        template: str | None = None,
        *,
        metadata: Mapping[str, str] | None = None,
        user_id: str | None = None,
        team_id: str | None = None,
        timeout: int = 600,
        headers: Mapping[str, str] | None = None,
        envs: Mapping[str, str] | None = None,
        api_key: str | None = None,
        api_url: str | None = None,
        sandbox_url: str | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        env: Mapping[str, str] | None = None,
    ) -> None:
        environ = os.environ if env is None else env
        self.template = template or environ.get(TEMPLATE_ENV) or DEFAULT_TEMPLATE
        self.metadata = dict(metadata or {})
        if user_id is not None:
            self.metadata["userID"] = user_id
        if team_id is not None:
            self.metadata["teamID"] = team_id
        self.timeout, self.envs, self.retry = timeout, dict(envs or {}), retry
        api = {"api_key": api_key, "api_url": api_url, "sandbox_url": sandbox_url}
        self._api: dict[str, Any] = {k: v for k, v in api.items() if v is not None}
        if headers:
            self._api["api_headers"] = dict(headers)
        self.sandbox_id: str | None = None  # kept after close, for reports
        self._sandbox: AsyncSandbox | None = None

    @property
    def sandbox(self) -> AsyncSandbox:
        """The SDK's sandbox, for what this class does not wrap; only while open."""
        if self._sandbox is None:
            raise RuntimeError("the sandbox session is not open; use `async with` or `open()`")
        return self._sandbox

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def open(self) -> Self:
        """Create the sandbox (retrying transient failures); prefer `async with`."""
        if self._sandbox is not None:
            raise RuntimeError("the sandbox session is already open")
        key = uuid.uuid4().hex  # one per session: every retry asks for the same sandbox
        with logged(f"create template={self.template}") as call:
            try:
                sandbox = await with_retries(
                    lambda: self._create_once(key), self.retry, what=f"create {self.template}"
                )
            except SDK_ERRORS as exc:
                await settle()  # the failed create's last answer may still be on its way in
                raise self._create_error(exc) from exc
            call.sandbox_id = sandbox.sandbox_id
        self._sandbox, self.sandbox_id = sandbox, sandbox.sandbox_id
        return self

    async def _create_once(self, key: str) -> AsyncSandbox:
        task = asyncio.ensure_future(
            AsyncSandbox.create(
                self.template,
                timeout=self.timeout,
                metadata=self.metadata,
                envs=self.envs,
                idempotency_key=key,
                **self._api,
            )
        )
        if await wait_through_cancel(task):
            # cancelled while the request was in flight: whatever it made must not outlive us
            if not task.cancelled() and task.exception() is None:
                await wait_through_cancel(asyncio.ensure_future(kill(task.result())))
            raise asyncio.CancelledError
        return task.result()

    def _create_error(self, exc: BaseException) -> SandboxError:
        base = f"could not create a sandbox from template {self.template!r}"
        if isinstance(exc, AuthenticationException):
            return SandboxError(f"{base}: {exc}", hint="check E2B_API_KEY (or pass api_key=)")
        if isinstance(exc, NotFoundException):
            return SandboxError(
                f"{base}: it does not exist ({exc})",
                hint=f"build and publish it first, or set {TEMPLATE_ENV} to one that exists",
            )
        if is_transient(exc):
            return SandboxError(
                f"{base} after {self.retry.attempts} attempts: {type(exc).__name__}: {exc}",
                hint="the service is busy or unreachable; try again later",
            )
        return SandboxError(f"{base}: {type(exc).__name__}: {exc}")

    async def close(self) -> None:
        """Kill the sandbox; safe to call twice, finishes the kill even when cancelled."""
        sandbox, self._sandbox = self._sandbox, None
        if sandbox is None:
            return
        if await wait_through_cancel(asyncio.ensure_future(kill(sandbox))):
            raise asyncio.CancelledError

    async def write_files(self, files: Mapping[str, str | bytes]) -> list[str]:
        """Write `{path: text or bytes}` (relative paths are under the user's home).

        Returns:
            The absolute paths written, in order.
        """
        sandbox = self.sandbox
        entries = [WriteEntry(path=path, data=data) for path, data in files.items()]
        with (
            logged(f"write_files count={len(entries)}", sandbox.sandbox_id),
            translated("write_files"),
        ):
            infos = await sandbox.files.write_files(entries)
        return [info.path for info in infos]

    async def run_code(
        self,
        code: str,
        language: str = "python",
        *,
        timeout: float | None = 60,
        cwd: str | None = None,
        envs: Mapping[str, str] | None = None,
    ) -> CodeResult:
        """Run `code` with the language's interpreter (python3, node or bash) from a file.

        Args:
            code: the program text, written to a file in /tmp (no shell quoting involved).
            language: "python", "javascript" or "bash".
            timeout: seconds before the process is killed (a result with exit code 124);
                None or 0 for no limit.
            cwd: working directory; default the user's home.
            envs: extra environment variables for this run.

        Raises:
            ValueError: for a language not in `LANGUAGES`.
            SandboxError: when the sandbox cannot be reached (not for the code's own failures).
        """
        if language not in LANGUAGES:
            raise ValueError(f"unknown language {language!r}; expected one of {sorted(LANGUAGES)}")
        interpreter, suffix = LANGUAGES[language]
        sandbox = self.sandbox
        path = f"/tmp/boxsmith-{uuid.uuid4().hex[:12]}{suffix}"
        missing = f"boxsmith: {interpreter}: interpreter not found"
        command = (
            f"command -v {interpreter} >/dev/null 2>&1 || "
            f"{{ echo {shlex.quote(missing)} >&2; exit {EXIT_NOT_FOUND}; }}; {interpreter} {path}"
        )
        with logged(f"run_code {language}", sandbox.sandbox_id) as call:
            with translated(f"run_code {language}"):
                await sandbox.files.write(path, code)
            exit_code, out, err = await self._command(
                command, language, call.started, timeout=timeout, cwd=cwd, envs=envs
            )
            seconds = time.monotonic() - call.started
            error = None
            if exit_code == EXIT_NOT_FOUND and err.strip() == missing:
                error = f"{interpreter} is not installed in this sandbox (template {self.template})"
            elif exit_code != 0 and timeout and seconds >= timeout:
                exit_code, error = EXIT_TIMED_OUT, f"timed out after {timeout:g}s"
            elif exit_code != 0:
                error = f"{interpreter} exited with code {exit_code}"
            call.outcome = f"exit={exit_code}" + (f" ({error})" if error else "")
        return CodeResult(out, err, exit_code, error, seconds)

    async def _command(
        self,
        command: str,
        language: str,
        started: float,
        *,
        timeout: float | None,
        cwd: str | None,
        envs: Mapping[str, str] | None,
    ) -> tuple[int, str, str]:
        """Run `command` to its end: (exit code, stdout, stderr); past `timeout`, exit code 124."""
        stdout: list[str] = []
        stderr: list[str] = []
        try:
            run = await self.sandbox.commands.run(
                command,
                timeout=timeout,
                cwd=cwd,
                envs=dict(envs) if envs else None,
                on_stdout=stdout.append,
                on_stderr=stderr.append,
            )
        except CommandExitException as exc:
            return exc.exit_code, exc.stdout, exc.stderr
        except TimeoutException as exc:  # E2B ends a stream past its deadline this way
            if not timeout or time.monotonic() - started < timeout:
                raise SandboxError(f"run_code {language} failed: {exc}") from exc
            return EXIT_TIMED_OUT, "".join(stdout), "".join(stderr)
        except SDK_ERRORS as exc:
            raise SandboxError(f"run_code {language} failed: {exc}") from exc
        return run.exit_code, run.stdout, run.stderr

    async def upload(self, local_path: str | os.PathLike[str], remote_path: str) -> str:
        """Copy a local file into the sandbox (streamed); return the absolute remote path."""
        sandbox = self.sandbox
        with (
            logged(f"upload {remote_path}", sandbox.sandbox_id),
            translated(f"upload to {remote_path}"),
            Path(local_path).open("rb") as stream,
        ):
            info = await sandbox.files.write(remote_path, stream)
        return info.path

    async def download(self, remote_path: str, local_path: str | os.PathLike[str]) -> Path:
        """Copy a sandbox file to `local_path` atomically (temp file + rename); return the path."""
        sandbox = self.sandbox
        with (
            logged(f"download {remote_path}", sandbox.sandbox_id),
            translated(f"download of {remote_path}"),
        ):
            data = await sandbox.files.read(remote_path, format="bytes")
        target = Path(local_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            temp.write_bytes(bytes(data))
            temp.replace(target)
        finally:
            temp.unlink(missing_ok=True)
        return target
