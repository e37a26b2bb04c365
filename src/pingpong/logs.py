"""Logging: JSON lines for machines (the default), plain text for people."""

from __future__ import annotations

import json
import logging
import sys

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_RECORD_FIELDS = {*vars(logging.makeLogRecord({})), "message", "asctime", "taskName"}


class TextFormatter(logging.Formatter):
    """The message, then the fields a JSON line would carry (request id, old
    and new values, ...) as ``name=<JSON>``: a text line says as much, and a
    value cannot forge a line (JSON escapes control characters)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS}
        line = super().formatMessage(record)
        for name, value in fields.items():
            line += f" {name}={json.dumps(value, default=str, separators=(',', ':'))}"
        return line


def configure(fmt: str = "json", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(TextFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
