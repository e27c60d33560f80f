"""The server's logging: uvicorn's set-up, with credentials masked on every handler.

uvicorn's access log (and its WebSocket "[accepted]" line) write the request's query
string, where a WebSocket client puts ``?token=``; a traceback may quote a header or a
body. So every record that reaches a handler of ours is masked first: query values of
every parameter not known to be harmless, the value after an ``Authorization`` scheme,
and ``name=value`` / ``"name": "value"`` pairs of credential names (session and CSRF
cookies, tokens, passwords). Masking is by shape, so it also covers a credential that
reaches a log line some new way.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from uvicorn.config import LOGGING_CONFIG

MASK = "[redacted]"

# Query parameters the API defines that carry no secret; every other one is masked.
PLAIN_PARAMS = frozenset({"after", "before", "since", "limit", "chat", "q", "search", "cursor"})
SECRET_NAMES = (
    "sessionid|csrftoken|x-csrftoken|token|access_token|authorization|password"  # noqa: S105
    "|password_confirm|new_password|old_password|current_password|secret"
)

_QUERY_PAIR = re.compile(r"(?P<lead>[?&;])(?P<name>[^=&;\s\"'#?]+)=(?P<value>[^&;\s\"'#]*)")
_SCHEME = re.compile(r"\b(?P<scheme>Token|Bearer|Basic)\s+(?P<value>[^\s\"',;]+)", re.I)
_NAMED = re.compile(
    # name=value, "name": "value", and a header as a tuple of bytes: (b'name', b'value')
    rf"(?P<name>\b(?:{SECRET_NAMES})\b[\"']?\s*[:=,]\s*(?:b?[\"'])?)(?P<value>[^\s\"',;&}})]+)",
    re.I,
)


def redact(text: str) -> str:
    def query(match: re.Match[str]) -> str:
        if match["name"].lower() in PLAIN_PARAMS or not match["value"]:
            return match[0]
        return f"{match['lead']}{match['name']}={MASK}"

    text = _QUERY_PAIR.sub(query, text)
    text = _SCHEME.sub(lambda m: f"{m['scheme']} {MASK}", text)
    return _NAMED.sub(lambda m: f"{m['name']}{MASK}", text)


class RedactCredentials(logging.Filter):
    """Masks a record's arguments, message and traceback text with :func:`redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Argument by argument first: uvicorn's access formatter unpacks the arguments.
        if isinstance(record.args, tuple):
            record.args = tuple(_masked(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _masked(arg) for key, arg in record.args.items()}
        record.msg = _masked(record.msg)
        message = record.getMessage()
        masked = redact(message)
        if masked != message and record.name != "uvicorn.access":
            record.msg, record.args = masked, ()  # a credential split across arguments
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def _masked(value: object) -> object:
    return redact(value) if isinstance(value, str) else value


def log_config() -> dict[str, Any]:
    """uvicorn's default logging set-up, plus the mask on its handlers and a handler
    for our own loggers (chatcore.http, chatcore.ws, ...)."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact": {"()": f"{__name__}.RedactCredentials"}}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact"]
    config["loggers"]["chatcore"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    config["loggers"]["adapters"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config
