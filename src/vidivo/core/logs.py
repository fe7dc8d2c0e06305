"""Server logging: uvicorn's own configuration, with secrets kept out of the log lines.

Browsers cannot set headers on a WebSocket, so signaling sockets carry their bearer token in
the query string, and e-mail verification links carry theirs too; uvicorn logs every request
line with its query string. Those values are replaced before any handler writes them."""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from uvicorn.config import LOGGING_CONFIG

SECRET_PARAMETER = re.compile(r"([?&](?:token|verify|access_token|refresh_token)=)[^&\s\"']+")
REDACTED = "[redacted]"


def redact(text: str) -> str:
    return SECRET_PARAMETER.sub(rf"\g<1>{REDACTED}", text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def server_logging_config() -> dict[str, Any]:
    """uvicorn's default logging, every handler filtered through `RedactSecrets`."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_secrets"] = {"()": RedactSecrets}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact_secrets")
    return config
