"""Meetings, pure parts: iCalendar escaping and folding (checked against a real RFC 5545
parser), Event documents we publish, and Event documents we read (Mobilizon, FEP-8a8e)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from icalendar import Calendar

from t3r1_fed.coops.events import EventError, PostalAddress, check_timezone, event_document
from t3r1_fed.coops.ical import IcsEvent, calendar, escape_text, fold
from t3r1_fed.handlers.events import html_to_lines
from t3r1_fed.inbox.events import parse_location, parse_online_url

START = datetime(2030, 3, 5, 17, 30, tzinfo=UTC)


def test_escape_text() -> None:
    assert escape_text("a,b;c\\d\ne\r\nf") == "a\\,b\\;c\\\\d\\ne\\nf"


def test_fold_counts_octets_and_keeps_characters_whole() -> None:
    line = "DESCRIPTION:" + "é" * 100
    folded = fold(line).encode()
    parts = folded.split(b"\r\n")
    assert len(parts) > 1
    assert all(len(p) <= 75 for p in parts)
    assert all(p.startswith(b" ") for p in parts[1:])
    for p in parts:
        p.decode("utf-8")  # no character cut in two
    assert folded.replace(b"\r\n ", b"").decode() == line
    assert fold("SHORT:x") == "SHORT:x"


def test_calendar_parses_with_a_real_rfc5545_parser() -> None:
    ev = IcsEvent(
        uid="https://a.example/o/1", start=START, end=START + timedelta(hours=2),
        summary="AG, section; nord", description="Ligne 1\nLigne 2, avec; tout\\" + "é" * 80,
        location="Bourse du travail, Paris", url="https://a.example/o/1",
        timezone="Europe/Paris", stamp=START, organizer_name='Alice "A"',
        organizer_uri="https://a.example/u/alice",
    )
    text = calendar([ev], name="Syndicat, nord")
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    cal = Calendar.from_ical(text)
    # An X- property is TEXT by default (RFC 5545 §3.8.8.2); the parser leaves it raw.
    assert str(cal["X-WR-CALNAME"]) == "Syndicat\\, nord"
    (vevent,) = cal.walk("VEVENT")
    assert str(vevent["SUMMARY"]) == "AG, section; nord"
    assert str(vevent["DESCRIPTION"]) == "Ligne 1\nLigne 2, avec; tout\\" + "é" * 80
    assert vevent.decoded("DTSTART") == START
    assert vevent.decoded("DTEND") == START + timedelta(hours=2)
    assert str(vevent["UID"]) == "https://a.example/o/1"
    assert str(vevent["LOCATION"]) == "Bourse du travail, Paris"


def test_html_to_lines_keeps_paragraphs() -> None:
    assert html_to_lines("<p>Un</p><p>Deux<br>Trois &amp; quatre</p>") == (
        "Un\nDeux\nTrois & quatre"
    )


def test_event_document_shape() -> None:
    doc = event_document(
        name="AG", description="Ordre du jour", start=START, end=None, timezone="Europe/Paris",
        place_name=None, address=PostalAddress("1 rue X", "75010", "Paris", None, "France"),
        online_url="https://visio.example/ag", capacity=30,
    )
    assert doc["type"] == "Event" and doc["startTime"] == "2030-03-05T17:30:00Z"
    assert "endTime" not in doc and doc["timezone"] == "Europe/Paris"
    assert doc["location"] == {
        "type": "Place", "name": "1 rue X, 75010, Paris, France",
        "address": {"type": "PostalAddress", "streetAddress": "1 rue X", "postalCode": "75010",
                    "addressLocality": "Paris", "addressCountry": "France"},
    }
    assert doc["isOnline"] is True and doc["attachment"][0]["href"] == "https://visio.example/ag"
    assert doc["maximumAttendeeCapacity"] == doc["remainingAttendeeCapacity"] == 30
    assert doc["participantCount"] == 0 and doc["joinMode"] == "free"


def test_timezones() -> None:
    assert check_timezone("America/Montreal") == "America/Montreal"
    assert check_timezone(None) is None
    for bad in ("Mars/Olympus", "../../etc/passwd"):
        with pytest.raises(EventError):
            check_timezone(bad)


def test_mobilizon_location(samples_dir: Path) -> None:
    doc = orjson.loads((samples_dir / "mobilizon/objects/event.json").read_bytes())
    assert parse_location(doc) == (
        "The Kenn Centre",
        "Devon Expressway, EX6 7TW, Teignbridge, England, United Kingdom",
    )
    assert parse_online_url(doc) is None  # isOnline false: the banner is not a link


def test_online_locations() -> None:
    mobilizon = {"isOnline": True, "attachment": [
        {"type": "Document", "url": "https://m.example/banner.jpg"},
        {"type": "Link", "name": "Website", "href": "https://visio.example/x"}]}
    assert parse_online_url(mobilizon) == "https://visio.example/x"
    fep = {"location": [{"type": "VirtualLocation", "url": "https://visio.example/y"}]}
    assert parse_online_url(fep) == "https://visio.example/y"
    assert parse_location(fep) == (None, None)
    assert parse_online_url({"isOnline": True, "attachment": [
        {"type": "Link", "href": "javascript:alert(1)"}]}) is None
    assert parse_location({"location": "Salle B"}) == ("Salle B", None)
    assert parse_location({"location": {"type": "Place", "name": "Salle C",
                                        "address": "2 rue Y"}}) == ("Salle C", "2 rue Y")
