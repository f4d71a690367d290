"""The engine boundary's errors, and the one place foreign exceptions become them.

`translated(action)` re-raises docker-py's, requests' and urllib3's exceptions as `EngineError` (or
the class given), naming what was being done, chained with `from`. Every `Engine` call goes
through it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import docker.errors
import requests.exceptions
import urllib3.exceptions

from boxsmith.errors import BoxsmithError

__all__ = [
    "FOREIGN",
    "HINT",
    "BuildFailed",
    "EngineError",
    "EngineUnavailable",
    "reason",
    "translated",
]

HINT = "run `scripts/docker-up` (as root on Debian it installs and starts dockerd)"
# urllib3's own errors reach us from streamed responses (a build's), which requests does not wrap.
FOREIGN = (
    docker.errors.DockerException,
    requests.exceptions.RequestException,
    urllib3.exceptions.HTTPError,
)


class EngineError(BoxsmithError):
    """A Docker engine call failed (exit 3)."""


class EngineUnavailable(EngineError):
    """No Docker engine answers, or it is too old for boxsmith (exit 3)."""


class BuildFailed(EngineError):
    """`docker build` or an import failed (exit 3).

    Attributes:
        step: the last `Step n/m : INSTRUCTION` line before the failure ("" when unknown).
        tail: the last lines of build output.
        reason: the engine's error text.
    """

    def __init__(
        self,
        message: str,
        hint: str = "",
        *,
        step: str = "",
        tail: tuple[str, ...] = (),
        reason: str = "",
    ) -> None:
        super().__init__(message, hint)
        self.step = step
        self.tail = tail
        self.reason = reason


def reason(exc: BaseException) -> str:
    """The first line of a foreign exception's text (docker's explanation when it has one)."""
    if isinstance(exc, docker.errors.APIError) and exc.explanation:
        text = str(exc.explanation)
    else:
        text = str(exc) or type(exc).__name__
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


@contextlib.contextmanager
def translated(action: str, error: type[EngineError] = EngineError) -> Iterator[None]:
    """Re-raise docker's, requests' and urllib3's exceptions as boxsmith's, naming the action."""
    try:
        yield
    except FOREIGN as exc:
        raise error(f"{action}: {reason(exc)}", HINT) from exc
