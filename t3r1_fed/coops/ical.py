"""iCalendar (RFC 5545) export of meetings: pure, rows in, text out.

Written by hand rather than with a library: an export of VEVENTs needs only three rules
done right, and they are a few lines each —
- TEXT escaping (§3.3.11): backslash, semicolon and comma escaped, newlines as `\\n`;
- line folding (§3.1): lines longer than 75 octets folded with CRLF + one space, never
  inside a UTF-8 sequence;
- CRLF line ends.
Times are written in UTC (`DTSTART:20261205T170000Z`, §3.3.5 form 2), which needs no
VTIMEZONE component; the meeting's IANA zone is kept as `X-T3R1-TIMEZONE` (and in the
ActivityPub `timezone`) for clients that display local time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

PRODID = "-//t3r1-fed//Reunions//FR"
MAX_OCTETS = 75


@dataclass(frozen=True)
class IcsEvent:
    uid: str
    start: datetime
    end: datetime | None
    summary: str
    description: str
    location: str | None
    url: str | None
    timezone: str | None
    stamp: datetime
    organizer_name: str | None = None
    organizer_uri: str | None = None


def escape_text(value: str) -> str:
    """RFC 5545 §3.3.11 TEXT escaping."""
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return value.replace("\r\n", "\\n").replace("\r", "\\n").replace("\n", "\\n")


def fold(line: str) -> str:
    """RFC 5545 §3.1: at most 75 octets per physical line, continuation lines start with
    a space (which counts in their 75); never split a multi-byte character."""
    out: list[str] = []
    current, size, limit = "", 0, MAX_OCTETS
    for ch in line:
        n = len(ch.encode("utf-8"))
        if size + n > limit:
            out.append(current)
            current, size, limit = "", 0, MAX_OCTETS - 1
        current += ch
        size += n
    out.append(current)
    return "\r\n ".join(out)


def utc_stamp(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _param(value: str) -> str:
    """A parameter value: quoted, with the characters RFC 5545 forbids removed."""
    return '"' + value.replace('"', "").replace("\r", " ").replace("\n", " ") + '"'


def vevent(ev: IcsEvent) -> list[str]:
    lines = [
        "BEGIN:VEVENT",
        f"UID:{ev.uid}",
        f"DTSTAMP:{utc_stamp(ev.stamp)}",
        f"DTSTART:{utc_stamp(ev.start)}",
    ]
    if ev.end is not None:
        lines.append(f"DTEND:{utc_stamp(ev.end)}")
    lines.append(f"SUMMARY:{escape_text(ev.summary)}")
    if ev.description:
        lines.append(f"DESCRIPTION:{escape_text(ev.description)}")
    if ev.location:
        lines.append(f"LOCATION:{escape_text(ev.location)}")
    if ev.url:
        lines.append(f"URL:{ev.url}")
    if ev.organizer_uri:
        cn = f";CN={_param(ev.organizer_name)}" if ev.organizer_name else ""
        lines.append(f"ORGANIZER{cn}:{ev.organizer_uri}")
    if ev.timezone:
        lines.append(f"X-T3R1-TIMEZONE:{escape_text(ev.timezone)}")
    lines.append("STATUS:CONFIRMED")
    lines.append("END:VEVENT")
    return lines


def calendar(events: Iterable[IcsEvent], *, name: str | None = None) -> str:
    """A VCALENDAR holding `events`, CRLF-terminated and folded."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
    ]
    if name:
        lines.append(f"X-WR-CALNAME:{escape_text(name)}")
    for ev in events:
        lines.extend(vevent(ev))
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)
