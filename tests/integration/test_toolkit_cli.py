"""The everyday `t3r1 admin` verbs (cli_toolkit.py), run in-process through
`t3r1_fed.cli.main` against the database of a running instance, with a second instance
where federation matters (a thread reaching a remote member, that member's reply and
vote coming back)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors.follows import follow
from t3r1_fed.cli import main
from t3r1_fed.context import Context
from t3r1_fed.coops.flags import flag
from t3r1_fed.coops.membership import group_actor, user_actor
from t3r1_fed.db.models import Follow, Object
from t3r1_fed.db.models_coops import Event, EventRsvp, Poll, PollOption
from tests.conftest import StartInstance
from tests.testrig import Instance, eventually

pytestmark = pytest.mark.federation


@dataclass
class Result:
    code: int
    out: str
    err: str


Cli = Callable[..., Awaitable[Result]]


@pytest.fixture
def t3r1(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """`await t3r1(inst, "admin", …)`: the command, pointed at `inst`'s database."""

    async def run(inst: Instance, *args: str) -> Result:
        s = inst.settings
        for key, value in (("DOMAIN", s.domain), ("SCHEME", "http"),
                           ("DATABASE_URL", s.database_url), ("LOG_LEVEL", "WARNING"),
                           ("ALLOW_PRIVATE_NETWORKS", "127.0.0.0/8"),
                           ("BACKOFF_SCALE", "0.002"), ("POLL_UPDATE_INTERVAL", "0")):
            monkeypatch.setenv(f"T3R1_{key}", value)
        capsys.readouterr()
        code = await asyncio.to_thread(main, ["--data-dir", str(s.data_dir), *args])
        out = capsys.readouterr()
        return Result(code, out.out.strip(), out.err.strip())

    return run


async def stored(inst: Instance, uri: str) -> Object | None:
    async with inst.session() as s:
        return (await s.execute(select(Object).where(Object.uri == uri))).scalar()


def ok(r: Result) -> str:
    assert r.code == 0, r.err
    return r.out


def refused(r: Result, why: str) -> None:
    assert r.code == 2, r
    assert r.err.startswith("t3r1: error:") and why in r.err, r.err


async def setup(instances: StartInstance) -> tuple[Instance, Instance]:
    a = await instances("127.0.0.2")
    b = await instances("127.0.0.3")
    for name in ("alice", "carol"):
        await a.create_user(name)
    await a.create_coop("syndicat", "alice")
    await b.create_user("bob")

    async def joins(ctx: Context, s: AsyncSession) -> None:
        await follow(ctx, s, "carol", f"syndicat@{a.domain}")

    await a.run(joins)

    async def bob_joins(ctx: Context, s: AsyncSession) -> None:
        await follow(ctx, s, "bob", f"syndicat@{a.domain}")

    await b.run(bob_joins)

    async def both() -> bool:
        async with a.session() as s:
            states = (await s.execute(select(Follow.state))).scalars().all()
            return list(states) == ["accepted", "accepted"]

    await eventually(both, what="carol and bob are members")
    return a, b


async def test_forum_news_polls_across_instances(instances: StartInstance, t3r1: Cli) -> None:
    a, b = await setup(instances)
    thread = ok(await t3r1(a, "admin", "thread", "alice", "syndicat", "Grève du 5",
                           "On en parle ici. #greve"))
    assert thread.startswith(f"{a.base}/o/")
    row = await eventually(lambda: stored(b, thread), what="thread on B")
    assert row is not None
    assert row.type == "Page" and "On en parle ici" in (row.content or "")

    # bob answers from B (a remote cooperative there): the reply reaches A's thread.
    answer = ok(await t3r1(b, "admin", "reply", "bob", thread, "Je serai là."))
    assert answer.startswith(f"{b.base}/o/")
    got = await eventually(lambda: stored(a, answer), what="bob's reply on A")
    assert got is not None
    root = await stored(a, thread)
    assert root is not None and got.in_reply_to == thread and got.thread_id == root.id
    refused(await t3r1(a, "admin", "reply", "carol", f"{a.base}/o/nope", "?"), "does not exist")
    refused(await t3r1(a, "admin", "thread", "alice", "syndicat", "  ", "x"), "title")
    refused(await t3r1(a, "admin", "thread", "nobody", "syndicat", "T", "x"), "nobody")

    news = ok(await t3r1(a, "admin", "news", "alice", "syndicat", "Le cortège part à 14 h.",
                         "--title", "Manif", "--cw", "politique", "--lang", "fr"))
    doc = orjson.loads((await stored(a, news)).raw)  # type: ignore[union-attr]
    assert doc["type"] == "Article" and doc["name"] == "Manif"
    assert doc["summary"] == "politique" and doc["sensitive"] is True
    assert "cortège" in doc["contentMap"]["fr"]
    await eventually(lambda: stored(b, news), what="news on B")
    refused(await t3r1(a, "admin", "news", "alice", "syndicat", "x", "--lang", "pas une"),
            "invalid language")
    refused(await t3r1(a, "admin", "news", "alice", "inconnue", "x"), "inconnue")

    # A consultation: opened by alice, voted on A (carol) and from B (bob).
    poll = ok(await t3r1(a, "admin", "poll", "alice", "syndicat", "On reconduit ?", "Oui",
                         "Non", "--ends", "2099-01-01T00:00:00+01:00"))
    await eventually(lambda: stored(b, poll), what="poll on B")
    assert ok(await t3r1(a, "admin", "vote", "carol", poll, "Oui")) == f"1 vote sent: {poll}"
    assert ok(await t3r1(a, "admin", "vote", "carol", poll, "Oui")).startswith("already")
    refused(await t3r1(a, "admin", "vote", "carol", poll, "Non"), "single choice")
    refused(await t3r1(a, "admin", "vote", "carol", poll, "Peut-être"), "no such option")
    ok(await t3r1(b, "admin", "vote", "bob", poll, "Non"))
    refused(await t3r1(b, "admin", "vote", "bob", poll, "Non"), "already voted")

    async def counts() -> dict[str, int]:
        async with a.session() as s:
            o = (await s.execute(select(Object).where(Object.uri == poll))).scalar_one()
            q = select(PollOption.name, PollOption.votes).where(PollOption.poll_id == o.id)
            return {n: v for n, v in (await s.execute(q)).all()}

    async def both_counted() -> bool:
        return await counts() == {"Oui": 1, "Non": 1}

    await eventually(both_counted, what="both votes counted on A")
    async with a.session() as s:
        o = (await s.execute(select(Object).where(Object.uri == poll))).scalar_one()
        p = await s.get(Poll, o.id)
        assert p is not None and p.closes_at == datetime(2098, 12, 31, 23, tzinfo=UTC)
    refused(await t3r1(a, "admin", "poll", "alice", "syndicat", "Q ?", "Seule"), "2 to")
    refused(await t3r1(a, "admin", "poll", "alice", "syndicat", "Q ?", "A", "B", "--ends",
                       "2099-01-01"), "offset")
    refused(await t3r1(a, "admin", "vote", "carol", f"{a.base}/o/none", "Oui"), "no such poll")


async def test_events_moderation_flags_profiles_directory(
    instances: StartInstance, t3r1: Cli
) -> None:
    a = await instances("127.0.0.2")
    for name in ("alice", "carol"):
        await a.create_user(name)
    await a.create_coop("syndicat", "alice")

    ev = ok(await t3r1(a, "admin", "event", "alice", "syndicat", "Assemblée générale",
                       "--start", "2030-01-10T18:00", "--end", "2030-01-10T20:00",
                       "--tz", "Europe/Paris", "--place", "Bourse du travail",
                       "--address", "3 rue du Château-d'Eau, Paris",
                       "--online", "https://visio.example/ag"))
    async with a.session() as s:
        o = (await s.execute(select(Object).where(Object.uri == ev))).scalar_one()
        e = await s.get(Event, o.id)
        assert e is not None and e.start_time == datetime(2030, 1, 10, 17, tzinfo=UTC)
        assert e.timezone == "Europe/Paris" and e.online_url == "https://visio.example/ag"
        assert e.location_name == "Bourse du travail" and "Château" in (e.location_address or "")
    refused(await t3r1(a, "admin", "event", "alice", "syndicat", "AG", "--start",
                       "2030-01-10T18:00", "--tz", "Mars/Olympus"), "unknown timezone")
    refused(await t3r1(a, "admin", "event", "alice", "syndicat", "AG", "--start",
                       "2030-01-10T18:00"), "--tz")
    refused(await t3r1(a, "admin", "event", "alice", "syndicat", "AG", "--start",
                       "2030-01-10T18:00Z", "--end", "2030-01-10T17:00Z"), "end after")

    async def rsvps() -> list[str]:
        async with a.session() as s:
            return list((await s.execute(select(EventRsvp.state))).scalars())

    assert ok(await t3r1(a, "admin", "rsvp", "carol", ev)) == f"taking part (accepted): {ev}"
    assert await rsvps() == ["accepted"]
    assert ok(await t3r1(a, "admin", "rsvp", "carol", ev, "--leave")).startswith("no longer")
    assert await rsvps() == []
    refused(await t3r1(a, "admin", "rsvp", "carol", ev, "--leave"), "not taking part")
    refused(await t3r1(a, "admin", "rsvp", "carol", f"{a.base}/o/x"), "no such meeting")

    # Moderation of a thread and a reply.
    thread = ok(await t3r1(a, "admin", "thread", "carol", "syndicat", "Sujet", "Texte"))
    answer = ok(await t3r1(a, "admin", "reply", "carol", thread, "Une réponse"))
    refused(await t3r1(a, "admin", "moderate", "lock", "syndicat", thread, "--by", "carol"),
            "moderator")
    assert ok(await t3r1(a, "admin", "moderate", "lock", "syndicat", thread, "--by", "alice",
                         "--reason", "on se calme")) == f"locked: {thread}"
    refused(await t3r1(a, "admin", "reply", "carol", thread, "Encore"), "locked")
    refused(await t3r1(a, "admin", "moderate", "lock", "syndicat", thread, "--by", "alice"),
            "already locked")
    ok(await t3r1(a, "admin", "moderate", "unlock", "syndicat", thread, "--by", "alice"))
    ok(await t3r1(a, "admin", "reply", "carol", thread, "Encore"))
    ok(await t3r1(a, "admin", "moderate", "pin", "syndicat", thread, "--by", "alice"))
    assert (await stored(a, thread)).pinned_at is not None  # type: ignore[union-attr]
    ok(await t3r1(a, "admin", "moderate", "unpin", "syndicat", thread, "--by", "alice"))
    ok(await t3r1(a, "admin", "moderate", "remove", "syndicat", thread, "--by", "alice",
                  "--reason", "hors sujet"))
    row = await stored(a, thread)
    assert row is not None and row.removed_at is not None and row.removed_reason == "hors sujet"
    refused(await t3r1(a, "admin", "moderate", "remove", "syndicat", answer, "--by", "alice"),
            "not a thread")
    ok(await t3r1(a, "admin", "moderate", "restore", "syndicat", thread, "--by", "alice"))
    assert (await stored(a, thread)).removed_at is None  # type: ignore[union-attr]
    assert ok(await t3r1(a, "admin", "moderate", "delete", "syndicat", answer, "--by", "alice",
                         "--reason", "spam")) == f"deleted: {answer}"
    assert (await stored(a, answer)).deleted_at is not None  # type: ignore[union-attr]
    refused(await t3r1(a, "admin", "moderate", "delete", "syndicat", answer, "--by", "alice"),
            "no such post")
    refused(await t3r1(a, "admin", "moderate", "pin", "inconnue", thread, "--by", "alice"),
            "inconnue")

    # Reports, for moderators only.
    assert ok(await t3r1(a, "admin", "flags", "syndicat", "--by", "alice")) == "no open report"

    async def report(ctx: Context, s: AsyncSession) -> None:
        await flag(ctx, s, await user_actor(s, "carol"), await group_actor(s, "syndicat"),
                   [thread], "propos   injurieux")

    await a.run(report)
    listed = ok(await t3r1(a, "admin", "flags", "syndicat", "--by", "alice")).split("\t")
    assert listed[1] == "open" and listed[3] == f"{a.base}/u/carol"
    assert listed[4] == thread and listed[5] == "propos injurieux"
    refused(await t3r1(a, "admin", "flags", "syndicat", "--by", "carol"), "moderators")
    refused(await t3r1(a, "admin", "resolve-flag", "syndicat", listed[0], "--by", "carol"),
            "moderators")
    refused(await t3r1(a, "admin", "resolve-flag", "syndicat", "999999", "--by", "alice"),
            "no such report")
    assert ok(await t3r1(a, "admin", "resolve-flag", "syndicat", listed[0], "--by", "alice")) \
        == f"report {listed[0]} resolved"
    assert ok(await t3r1(a, "admin", "flags", "syndicat", "--by", "alice")) == "no open report"
    assert ok(await t3r1(a, "admin", "flags", "syndicat", "--by", "alice", "--all")) \
        .split("\t")[1] == "resolved"

    # Profiles (opt-in fields) and the directory.
    out = ok(await t3r1(a, "admin", "profile", "carol", "--structure", "CGT Cheminots",
                        "--show-structure", "--skills", "droit du travail, négociation",
                        "--mandate", "secrétaire", "--listed"))
    assert "listed in the directory" in out and "mandate\tsecrétaire\t(hidden)" in out
    assert "published: Structure" in out and "Mandat" not in out
    found = ok(await t3r1(a, "admin", "directory", "carol"))
    assert found.startswith(f"member\tcarol@{a.domain}\t")
    assert "CGT Cheminots" in found and "secrétaire" not in found and "négociation" not in found
    assert ok(await t3r1(a, "admin", "directory", "--structure", "cheminots")).count(
        "\n") == 0
    ok(await t3r1(a, "admin", "profile", "carol", "--no-listed"))
    assert ok(await t3r1(a, "admin", "directory", "carol")) == "nothing found"
    coops = ok(await t3r1(a, "admin", "directory", "synd", "--kind", "coop"))
    assert coops.startswith(f"coop\tsyndicat@{a.domain}\t")
    refused(await t3r1(a, "admin", "directory", "x", "--hashtag", "!!"), "invalid hashtag")
    refused(await t3r1(a, "admin", "profile", "carol", "--structure", "x" * 1000), "longer")
