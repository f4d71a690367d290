"""The e2b SDK's template calls that publish makes, against one target: the one place they enter.

`TemplateApi` holds the target's SDK parameters with the SDK's own retries off (publish decides each
retry, and logs it once: `boxsmith._internal.retry`). A 404 where publish asks whether something
exists is an answer (`None`, `"unknown"`), not an error; every other failure is the SDK's exception,
which the caller retries or reports. Importing this module imports e2b (about 0.5 s): the publisher
imports it only when there is something to build.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from e2b import AuthenticationException
from e2b import Template as SdkTemplate
from e2b.api import encode_path_param, handle_api_exception
from e2b.api.client.api.templates import get_templates_aliases_alias
from e2b.api.client_sync import get_api_client
from e2b.connection_config import ConnectionConfig
from e2b.exceptions import TemplateException
from e2b.template.types import BuildInfo, TemplateBuildStatusResponse

from boxsmith._internal.publish.plan import PublishUnit
from boxsmith._internal.render import DOCKERFILE
from boxsmith._internal.retry import http_status

__all__ = ["TemplateApi", "hint", "state_of", "step_name"]


class TemplateApi:
    """The template API of one target (see the module doc)."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params: dict[str, Any] = {**params, "retries": 0}

    def template(self, unit: PublishUnit) -> Any:
        """The SDK template of the rendered folder: its Dockerfile, start and ready command."""
        dockerfile = (unit.folder / DOCKERFILE).read_text(encoding="utf-8")
        template: Any = SdkTemplate(file_context_path=str(unit.folder)).from_dockerfile(dockerfile)
        if unit.start_cmd:  # E2B's default ready command for a start command alone: sleep 20
            return template.set_start_cmd(unit.start_cmd, unit.ready_cmd or "sleep 20")
        if unit.ready_cmd:
            return template.set_ready_cmd(unit.ready_cmd)
        return template

    def request(
        self, template: Any, unit: PublishUnit, tags: list[str], on_log: Callable[[Any], None]
    ) -> BuildInfo:
        """Request the build, upload the COPY sources, start it (one call of the SDK)."""
        info: BuildInfo = SdkTemplate.build_in_background(
            template,
            unit.name,
            tags=tags,
            cpu_count=unit.cpu_count,
            memory_mb=unit.memory_mb,
            on_build_logs=on_log,
            **self.params,
        )
        return info

    def status(self, info: BuildInfo, offset: int) -> TemplateBuildStatusResponse:
        """The build's status and its log entries from `offset` on."""
        status: TemplateBuildStatusResponse = SdkTemplate.get_build_status(
            info, logs_offset=offset, **self.params
        )
        return status

    def state(self, info: BuildInfo) -> str:
        """The status of a build the target may or may not know ("unknown" when it does not)."""
        try:
            status = self.status(info, 0)
        except Exception as exc:
            if http_status(exc) == 404:
                return "unknown"
            raise
        return state_of(status)

    def tags(self, name: str) -> list[tuple[str, str]] | None:
        """(tag, build id) of every tag of template `name`; None when there is no such template."""
        try:
            tags = SdkTemplate.get_tags(name, **self.params)
        except Exception as exc:
            if http_status(exc) == 404:  # no template of that name: nothing published yet
                return None
            raise
        return [(str(t.tag), str(t.build_id)) for t in tags]

    def template_id(self, name: str) -> str:
        """The target's id of template `name` (the SDK's alias lookup answers it)."""
        client = get_api_client(ConnectionConfig(**self.params))
        answer = get_templates_aliases_alias.sync_detailed(
            alias=encode_path_param(name), client=client
        )
        parsed = answer.parsed
        if answer.status_code >= 300 or parsed is None or not hasattr(parsed, "template_id"):
            raise handle_api_exception(answer, TemplateException)
        return str(parsed.template_id)


def state_of(status: TemplateBuildStatusResponse) -> str:
    """`waiting`, `building`, `ready` or `error`."""
    return str(getattr(status.status, "value", status.status))


def hint(exc: Exception) -> str:
    """What to do about an SDK error, where boxsmith knows."""
    if isinstance(exc, AuthenticationException):
        return "the target refused the API key: check E2B_API_KEY (and E2B_DOMAIN)"
    return ""


def step_name(template: Any, step: str | None) -> str:
    """`build step 5 (RUN make)`: E2B's reason.step counts the SDK's instructions from 1."""
    if not step:
        return "build"
    if not step.isdigit():
        return f"build step {step}"  # base, finalize
    # the SDK keeps its instruction list private: name the instruction when it is there
    items = getattr(getattr(template, "_template", None), "_instructions", None)
    item = items[int(step) - 1] if isinstance(items, list) and 0 < int(step) <= len(items) else None
    if not isinstance(item, dict):
        return f"build step {step}"
    kind = getattr(item.get("type"), "value", item.get("type"))
    args = " ".join(str(a) for a in item.get("args", []) if a)
    return f"build step {step} ({kind} {args})"
