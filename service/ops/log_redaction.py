"""Credentials never reach the logs: a filter on uvicorn's loggers masks the values of
`key`, `ticket`, `token` and `handoff` query parameters (`?ticket=***`).

Installed by create_app and `python -m service` (idempotent). Keys are no longer accepted
in URLs at all; this is the second line, for whatever a client sends anyway.
"""

from __future__ import annotations

import logging
import re

SECRET_PARAMS = ("key", "ticket", "token", "handoff")
LOGGERS = ("uvicorn.access", "uvicorn.error")
_NAMES = "|".join(SECRET_PARAMS)
_PATTERN = re.compile(rf"([?&;](?:{_NAMES})=)[^&;\s\"']*", re.IGNORECASE)


def redact(text: str) -> str:
    """text with every secret query parameter's value replaced by ***."""
    return _PATTERN.sub(r"\1***", text) if "=" in text else text


class RedactSecrets(logging.Filter):
    """Rewrites a record's message and string arguments (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


def install_redaction(names: tuple[str, ...] = LOGGERS) -> None:
    """Add the filter to uvicorn's loggers once (logging.config keeps a logger's filters)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
