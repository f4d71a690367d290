"""`SandboxSessionSync`: the sandbox tool (`boxsmith.sandbox.SandboxSession`) without asyncio.

Import it as `boxsmith.sandbox.SandboxSessionSync`; it runs the async session on a private event
loop in a background thread, so results, retries, logging and cleanup are the same code.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any, Self, TypeVar

from boxsmith.sandbox._results import CodeResult
from boxsmith.sandbox._session import DRAIN_TIMEOUT, SandboxSession

__all__ = ["SandboxSessionSync"]

T = TypeVar("T")


class SandboxSessionSync:
    """`SandboxSession` for code without asyncio: `with SandboxSessionSync(...) as box:`.

    It takes `SandboxSession`'s arguments and runs that session on a private event loop in a
    background thread, so results, retries, logging and cleanup are the same code, and it also
    works where the calling thread already runs a loop (a notebook). Ctrl-C cancels the call in
    flight, the block's exit still kills the sandbox.
    """

    def __init__(self, template: str | None = None, **options: Any) -> None:
        self.session = SandboxSession(template, **options)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def sandbox_id(self) -> str | None:
        """The sandbox's id once created (kept after close)."""
        return self.session.sandbox_id

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def open(self) -> Self:
        """Start the loop and create the sandbox; prefer `with`."""
        if self._loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="boxsmith-sandbox", daemon=True)
            thread.start()
            self._loop, self._thread = loop, thread
        try:
            self._call(self.session.open())
        except BaseException:
            self._stop()
            raise
        return self

    def close(self) -> None:
        """Kill the sandbox and stop the loop; safe to call twice."""
        if self._loop is None:
            return
        try:
            self._call(self.session.close())
        finally:
            self._stop()

    def write_files(self, files: Mapping[str, str | bytes]) -> list[str]:
        """See `SandboxSession.write_files`."""
        return self._call(self.session.write_files(files))

    def run_code(
        self,
        code: str,
        language: str = "python",
        *,
        timeout: float | None = 60,
        cwd: str | None = None,
        envs: Mapping[str, str] | None = None,
    ) -> CodeResult:
        """See `SandboxSession.run_code`."""
        return self._call(
            self.session.run_code(code, language, timeout=timeout, cwd=cwd, envs=envs)
        )

    def upload(self, local_path: str | os.PathLike[str], remote_path: str) -> str:
        """See `SandboxSession.upload`."""
        return self._call(self.session.upload(local_path, remote_path))

    def download(self, remote_path: str, local_path: str | os.PathLike[str]) -> Path:
        """See `SandboxSession.download`."""
        return self._call(self.session.download(remote_path, local_path))

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            coro.close()
            raise RuntimeError("the sandbox session is not open; use `with` or `open()`")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # Ctrl-C lands here; `_stop` waits for the cancelled call to unwind
            raise

    def _stop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        # a cancelled call may still be killing what it created: let every task finish first
        asyncio.run_coroutine_threadsafe(_drain(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


async def _drain() -> None:
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    if others:
        _, stuck = await asyncio.wait(others, timeout=DRAIN_TIMEOUT)
        for task in stuck:
            task.cancel()
