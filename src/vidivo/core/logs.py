"""Server logging: one configuration for `serve` (uvicorn's loggers included) and `worker`,
in text or JSON lines, with secrets kept out and each line tied to its request and call.

Browsers cannot set headers on a WebSocket, so signaling sockets carry their bearer token in
the query string, and e-mail verification links carry theirs too; uvicorn logs every request
line with its query string. Those values are replaced before any handler writes them.

The request id and the call session id live in context variables: whatever is logged while
a request or a call's billing is handled carries them, without being passed around."""

from __future__ import annotations

import copy
import logging
import logging.config
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.orjson import OrjsonFormatter
from uvicorn.config import LOGGING_CONFIG

from vidivo.core.config import LogFormat, Settings

SECRET_PARAMETER = re.compile(r"([?&](?:token|verify|access_token|refresh_token)=)[^&\s\"']+")
REDACTED = "[redacted]"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
call_session_id: ContextVar[str | None] = ContextVar("call_session_id", default=None)


def redact(text: str) -> str:
    return SECRET_PARAMETER.sub(rf"\g<1>{REDACTED}", text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


class LogContext(logging.Filter):
    """Stamps the record with the request and call session being handled, when there are."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (current_request := request_id.get()) is not None:
            record.request_id = current_request
        if (current_session := call_session_id.get()) is not None:
            record.session_id = current_session
        return True


@contextmanager
def logged_call_session(session_id: str) -> Iterator[None]:
    """Everything logged inside carries `session_id`."""
    token = call_session_id.set(session_id)
    try:
        yield
    finally:
        call_session_id.reset(token)


class JsonLines(OrjsonFormatter):
    """timestamp (ISO 8601, UTC), level, logger, message, then request_id, session_id and
    exception where there are; any `extra=` a caller passed follows."""

    def __init__(self) -> None:
        super().__init__(
            ["levelname", "name", "message"],
            rename_fields={
                "levelname": "level",
                "name": "logger",
                "exc_info": "exception",
                "stack_info": "stack",
            },
            # uvicorn passes a coloured copy of its message along; the plain one is enough.
            reserved_attrs=[*RESERVED_ATTRS, "color_message", "taskName"],
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["timestamp"] = datetime.fromtimestamp(record.created, tz=UTC)  # the first key
        super().add_fields(log_data, record, message_dict)


def logging_config(settings: Settings) -> dict[str, Any]:
    """uvicorn's default logging plus the root logger's, every handler filtered through
    `RedactSecrets` and `LogContext`; in JSON, every formatter is `JsonLines`."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["plain"] = {"format": TEXT_FORMAT}
    config["handlers"]["plain"] = {
        "formatter": "plain",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    config["root"] = {"handlers": ["plain"], "level": settings.log_level.upper()}
    if settings.log_format == LogFormat.JSON:
        config["formatters"] = {name: {"()": JsonLines} for name in config["formatters"]}
    config.setdefault("filters", {}).update(
        redact_secrets={"()": RedactSecrets}, log_context={"()": LogContext}
    )
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).extend(["redact_secrets", "log_context"])
    return config


def configure_logging(settings: Settings) -> dict[str, Any]:
    """Apply the configuration to this process; returned for uvicorn, which applies it again."""
    config = logging_config(settings)
    logging.config.dictConfig(config)
    return config
