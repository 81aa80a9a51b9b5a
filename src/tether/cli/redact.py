"""A logging filter that keeps secrets out of every log line, at every level.

Access logs print URLs (a ``?token=`` in one), and the websockets and HTTP libraries
print request headers at debug level (``Authorization: Bearer ...``). The CLI puts this
filter on its log handler, so it sees every record of every library."""

from __future__ import annotations

import logging
import re

_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[^\s'\",;]+"),
    re.compile(r"(?i)(\b(?:tether_studio_token|token|access_token|resume_secret)=)[^&\s'\";]+"),
    re.compile(r"(?i)([\"'](?:token|resume_secret|authorization)[\"']\s*:\s*[\"'])[^\"']+"),
]
MASK = "***"


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: list[str] | None = None) -> None:
        super().__init__()
        self._secrets = [s for s in (secrets or []) if s]

    def add(self, secret: str | None) -> None:
        if secret:
            self._secrets.append(secret)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + MASK, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record: let the handler report it as it would
            return True
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text = self.redact(str(exc))
            if text != str(exc):  # the traceback would repeat the secret: keep the words
                record.exc_info = None
                record.msg, record.args = f"{clean} ({type(exc).__name__}: {text})", None
        return True
