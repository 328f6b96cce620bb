"""Structured logging: one line per event, as `key=value` pairs after the message."""

from __future__ import annotations

import logging
import os
import sys
import time

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class KeyValueFormatter(logging.Formatter):
    # The inbox and the delivery worker log one line per item: the timestamp's strftime
    # (the same for every line of a second) is kept instead of redone per line.
    _second: int | None = None
    _second_text = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        msec_format = self.default_msec_format
        if datefmt is not None or msec_format is None or self.converter is not time.localtime:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:
            self._second_text = time.strftime(self.default_time_format, time.localtime(second))
            self._second = second
        return msec_format % (self._second_text, record.msecs)

    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        extras = record.__dict__.keys() - _STANDARD
        if extras:
            fields = record.__dict__
            base += " " + " ".join(f"{k}={fields[k]!r}" for k in sorted(extras))
        return base


def setup_logging(level: str | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel((level or os.environ.get("T3R1_LOG_LEVEL") or "INFO").upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
