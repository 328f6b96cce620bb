"""Consultations: `Question` polls (FEP-9967, Mastodon's format), as a service API.

A local member opens a poll in a cooperative through `create_in_coop(kind="poll")` plus
`polls`/`poll_options` rows: `oneOf` (single choice) or `anyOf` (several), each option a
`Note` with `name` and `replies.totalItems`, `endTime` and `votersCount`.

A vote is Mastodon's: `Create{Note{name: <option>, inReplyTo: <question>, to: <author>}}`
to the question's author, one Note per chosen option. We count one vote per option per
voter, at most one option for `oneOf`, none after closing.

Results are published by re-publishing the Question with its counts: `Update{Question}`
by the author to its followers and the remote voters, announced by the cooperative. They
are throttled like Mastodon's: a counted vote sends the counts at once unless an Update
went out less than `poll_update_interval` seconds ago; then the poll is left
`results_dirty` and the worker's maintenance pass (`flush_poll_results`) sends them later.
A poll is closed once its time has passed — when someone votes, when results are read,
and by the maintenance pass (`close_due_polls`) — and closing sends a final Update
carrying `closed` with the final counts. Closing and flushing claim the poll row with one
UPDATE … WHERE (closed_at IS NULL / results_dirty) RETURNING, so any number of worker
processes send each Update once. Receivers already treat `endTime` as the closing time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.coops.kinds import on_ingest
from t3r1_fed.coops.posting import PostRefused, coop_for_actor, create_in_coop
from t3r1_fed.coops.redistribute import announce_update, now_iso
from t3r1_fed.db.models import Actor, Coop, Object, utcnow
from t3r1_fed.db.models_coops import Poll, PollOption, PollVote
from t3r1_fed.outbox.publish import followers_of, publish
from t3r1_fed.vocab.normalize import InvalidObject, parse_object
from t3r1_fed.vocab.sanitize import text_to_html
from t3r1_fed.vocab.shapes import MAX_POLL_OPTION_CHARS, MAX_POLL_OPTIONS

MAX_QUESTION = 2000


class PollError(ValueError):
    """A consultation action that cannot be done; the message says why."""


@dataclass(frozen=True)
class Results:
    options: list[tuple[str, int]]
    voters_count: int
    multiple: bool
    closes_at: datetime | None
    closed: bool


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _option(name: str, votes: int) -> dict[str, Any]:
    return {"type": "Note", "name": name, "replies": {"type": "Collection", "totalItems": votes}}


async def create_poll(
    ctx: Context,
    session: AsyncSession,
    author: Actor,
    group: Actor,
    coop: Coop,
    *,
    question: str,
    options: Sequence[str],
    multiple: bool = False,
    closes_at: datetime | None = None,
) -> Object:
    """A local member opens a consultation in a local cooperative."""
    question = question.strip()
    if not question or len(question) > MAX_QUESTION:
        raise PollError(f"a question of 1 to {MAX_QUESTION} characters is needed")
    names = [o.strip() for o in options]
    if not 2 <= len(names) <= MAX_POLL_OPTIONS:
        raise PollError(f"a poll has 2 to {MAX_POLL_OPTIONS} options")
    if any(not n or len(n) > MAX_POLL_OPTION_CHARS for n in names):
        raise PollError(f"options are 1 to {MAX_POLL_OPTION_CHARS} characters")
    if len(set(names)) != len(names):
        raise PollError("options must differ")
    if closes_at is not None and (closes_at.tzinfo is None or closes_at <= utcnow()):
        raise PollError("the closing time must be in the future (with a timezone)")
    doc: dict[str, Any] = {
        "type": "Question",
        "content": text_to_html(question),
        "anyOf" if multiple else "oneOf": [_option(n, 0) for n in names],
        "votersCount": 0,
    }
    if closes_at is not None:
        doc["endTime"] = iso(closes_at)
    try:
        row = await create_in_coop(ctx, session, author, group, coop, doc, kind="poll")
    except PostRefused as e:
        raise PollError(str(e)) from e
    session.add(Poll(object_id=row.id, multiple=multiple, closes_at=closes_at, voters_count=0))
    session.add_all(
        PollOption(poll_id=row.id, position=i, name=n, votes=0) for i, n in enumerate(names)
    )
    await session.flush()
    return row


async def poll_of(session: AsyncSession, obj: Object) -> Poll:
    poll = await session.get(Poll, obj.id)
    if poll is None or obj.deleted_at is not None:
        raise PollError("not a poll")
    return poll


async def _options(session: AsyncSession, obj: Object) -> list[PollOption]:
    q = select(PollOption).where(PollOption.poll_id == obj.id).order_by(PollOption.position)
    return list((await session.execute(q)).scalars())


def is_closed(poll: Poll, obj: Object, now: datetime | None = None) -> bool:
    if poll.closed_at is not None:
        return True
    if poll.closes_at is not None and poll.closes_at <= (now or utcnow()):
        return True
    return "closed" in orjson.loads(obj.raw)


async def results(ctx: Context, session: AsyncSession, obj: Object) -> Results:
    """Counts per option (ours, or as last published by the origin for a remote poll)."""
    poll = await poll_of(session, obj)
    await close_if_due(ctx, session, obj)
    opts = await _options(session, obj)
    return Results(
        [(o.name, o.votes) for o in opts],
        poll.voters_count,
        poll.multiple,
        poll.closes_at,
        is_closed(poll, obj),
    )


# ---- counting (local polls) --------------------------------------------------------------------


async def record_votes(
    session: AsyncSession, obj: Object, voter: Actor, choices: Sequence[tuple[str, str | None]]
) -> int:
    """Count `choices` (option name, vote id) of `voter` on our poll; returns how many were
    counted. Refuses them all if the poll is closed, an option is unknown, or `oneOf` would
    get a second vote; a repeated option is skipped (Mastodon resends on retry)."""
    poll = await poll_of(session, obj)
    if is_closed(poll, obj):
        raise PollError("this poll is closed")
    by_name = {o.name: o for o in await _options(session, obj)}
    picked = [by_name.get(name) for name, _ in choices]
    if not picked or any(o is None for o in picked):
        raise PollError("no such option")
    q = select(PollVote.position).where(PollVote.poll_id == obj.id, PollVote.actor_id == voter.id)
    already = set((await session.execute(q)).scalars())
    new = [
        (o, uri)
        for o, (_, uri) in zip(picked, choices, strict=True)
        if o is not None and o.position not in already
    ]
    new = list({o.position: (o, uri) for o, uri in new}.values())
    if not poll.multiple and len(already) + len(new) > 1:
        raise PollError("this poll takes a single choice")
    for option, uri in new:
        session.add(PollVote(poll_id=obj.id, actor_id=voter.id, position=option.position, uri=uri))
        option.votes += 1
    if new and not already:
        poll.voters_count += 1
    await session.flush()
    return len(new)


async def _recount(session: AsyncSession, obj: Object, poll: Poll) -> list[PollOption]:
    """Our poll's counters recomputed from its votes (concurrent counting by several
    workers may have raced on the counters; the vote rows are the truth)."""
    opts = await _options(session, obj)
    if not obj.local:
        return opts
    per = select(PollVote.position, func.count()).where(PollVote.poll_id == obj.id)
    counts: dict[int, int] = {
        pos: n for pos, n in (await session.execute(per.group_by(PollVote.position))).all()
    }
    for o in opts:
        o.votes = counts.get(o.position, 0)
    voters = select(func.count(func.distinct(PollVote.actor_id))).where(
        PollVote.poll_id == obj.id
    )
    poll.voters_count = (await session.execute(voters)).scalar_one()
    return opts


async def _refresh_document(session: AsyncSession, obj: Object, poll: Poll, closed: bool) -> None:
    doc = orjson.loads(obj.raw)
    opts = await _recount(session, obj, poll)
    doc["anyOf" if poll.multiple else "oneOf"] = [_option(o.name, o.votes) for o in opts]
    doc["votersCount"] = poll.voters_count
    doc["updated"] = now_iso()
    if closed:
        doc["closed"] = iso(poll.closes_at or utcnow())
    obj.raw = orjson.dumps(doc).decode()
    obj.updated = utcnow()


async def publish_results(
    ctx: Context, session: AsyncSession, obj: Object, *, closed: bool = False
) -> None:
    """Re-publish our Question with its counts: Update by the author (to its followers and
    the remote voters), announced by the cooperative."""
    poll = await poll_of(session, obj)
    await _refresh_document(session, obj, poll, closed)
    author = await session.get(Actor, obj.author_id)
    assert author is not None
    doc = orjson.loads(obj.raw)
    doc.pop("@context", None)
    update = {
        "id": ctx.uris.activity(),
        "type": "Update",
        "actor": author.uri,
        "object": doc,
        "to": doc.get("to", []),
        "cc": doc.get("cc", []),
    }
    voters = (
        select(Actor)
        .join(PollVote, PollVote.actor_id == Actor.id)
        .where(PollVote.poll_id == obj.id, Actor.local.is_(False))
    )
    # A poll of a private cooperative reaches members through the group only.
    public = obj.visibility in {"public", "unlisted"}
    recipients = {a.id: a for a in await followers_of(session, author.id)} if public else {}
    recipients.update({a.id: a for a in (await session.execute(voters)).scalars()})
    group = await session.get(Actor, obj.group_id) if obj.group_id else None
    coop = await coop_for_actor(session, group.id) if group else None
    await publish(ctx, session, author, update, recipients=list(recipients.values()), public=public)
    if group is not None and coop is not None:
        await announce_update(ctx, session, group, coop, update)


# ---- closing and throttled results: claims on the poll row ----------------------------------


def _live_local() -> Any:
    return select(Object.id).where(Object.local.is_(True), Object.deleted_at.is_(None))


async def _claim(
    session: AsyncSession,
    where: Sequence[ColumnElement[bool]],
    values: Mapping[str, Any],
    *,
    object_id: int | None = None,
    limit: int = 100,
) -> list[int]:
    """Set `values` on the polls matching `where` (one poll, or a batch skipping rows
    other workers hold) and return their ids: the caller that gets an id back is the only
    one to send that Update. The conditions are checked again by the UPDATE itself, so a
    row claimed and committed meanwhile by another worker is not claimed twice."""
    if object_id is not None:
        target: ColumnElement[bool] = Poll.object_id == object_id
    else:
        inner = (
            select(Poll.object_id)
            .where(*where, Poll.object_id.in_(_live_local()))
            .order_by(Poll.object_id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        target = Poll.object_id.in_(inner.scalar_subquery())
    stmt = (
        update(Poll)
        .where(target, *where)
        .values(**values)
        .returning(Poll.object_id)
        .execution_options(synchronize_session="fetch")
    )
    return list((await session.execute(stmt)).scalars())


def _due_to_close(now: datetime) -> list[ColumnElement[bool]]:
    return [Poll.closed_at.is_(None), Poll.closes_at.is_not(None), Poll.closes_at <= now]


def _due_to_flush(ctx: Context, now: datetime) -> list[ColumnElement[bool]]:
    last_ok = now - timedelta(seconds=ctx.settings.poll_update_interval)
    return [
        Poll.results_dirty.is_(True),
        Poll.closed_at.is_(None),
        (Poll.results_sent_at.is_(None)) | (Poll.results_sent_at <= last_ok),
    ]


def _sent(now: datetime, **more: Any) -> dict[str, Any]:
    return {"results_dirty": False, "results_sent_at": now, **more}


async def close_if_due(ctx: Context, session: AsyncSession, obj: Object) -> bool:
    """Close our poll once its time has passed: final Update with `closed` and the final
    counts. True if closed now (by this call)."""
    await poll_of(session, obj)
    if not obj.local or obj.deleted_at is not None:
        return False
    now = utcnow()
    if not await _claim(session, _due_to_close(now), _sent(now, closed_at=now),
                        object_id=obj.id):
        return False
    await publish_results(ctx, session, obj, closed=True)
    return True


async def close_due_polls(ctx: Context, session: AsyncSession, *, limit: int = 100) -> int:
    """Close local polls whose time has passed (at most `limit`); returns how many this
    call closed. Safe to run in several workers at once."""
    now = utcnow()
    ids = await _claim(session, _due_to_close(now), _sent(now, closed_at=now), limit=limit)
    for oid in ids:
        obj = await session.get(Object, oid)
        assert obj is not None
        await publish_results(ctx, session, obj, closed=True)
    return len(ids)


async def results_changed(ctx: Context, session: AsyncSession, obj: Object) -> bool:
    """The counts of our poll changed: send them now, unless an Update went out less than
    `poll_update_interval` seconds ago — then they wait, marked dirty, for
    `flush_poll_results`. True if sent now."""
    await session.execute(
        update(Poll)
        .where(Poll.object_id == obj.id)
        .values(results_dirty=True)
        .execution_options(synchronize_session="fetch")
    )
    now = utcnow()
    if not await _claim(session, _due_to_flush(ctx, now), _sent(now), object_id=obj.id):
        return False
    await publish_results(ctx, session, obj)
    return True


async def flush_poll_results(ctx: Context, session: AsyncSession, *, limit: int = 100) -> int:
    """Send the counts held back by the throttle (open polls whose last Update is old
    enough); returns how many polls were updated."""
    now = utcnow()
    ids = await _claim(session, _due_to_flush(ctx, now), _sent(now), limit=limit)
    for oid in ids:
        obj = await session.get(Object, oid)
        assert obj is not None
        await publish_results(ctx, session, obj)
    return len(ids)


# ---- voting by local members --------------------------------------------------------------------


async def vote(
    ctx: Context, session: AsyncSession, voter: Actor, obj: Object, choices: Sequence[str]
) -> int:
    """A local member votes. Our poll: counted and re-published. A remote poll: one vote
    Note per choice sent to its author (Mastodon's format), remembered so we don't vote
    twice; the author's Update brings the counts."""
    poll = await poll_of(session, obj)
    if not choices:
        raise PollError("choose at least one option")
    if obj.local:
        await close_if_due(ctx, session, obj)
        counted = await record_votes(session, obj, voter, [(c, None) for c in choices])
        if counted:
            await results_changed(ctx, session, obj)
        return counted
    if is_closed(poll, obj):
        raise PollError("this poll is closed")
    names = {o.name: o for o in await _options(session, obj)}
    if any(c not in names for c in choices):
        raise PollError("no such option")
    q = (
        select(func.count())
        .select_from(PollVote)
        .where(PollVote.poll_id == obj.id, PollVote.actor_id == voter.id)
    )
    if (await session.execute(q)).scalar_one():
        raise PollError("already voted")
    if not poll.multiple and len(set(choices)) > 1:
        raise PollError("this poll takes a single choice")
    author = await session.get(Actor, obj.author_id)
    assert author is not None
    for name in dict.fromkeys(choices):
        note_id = ctx.uris.object()
        note = {
            "id": note_id,
            "type": "Note",
            "name": name,
            "attributedTo": voter.uri,
            "inReplyTo": obj.uri,
            "to": [author.uri],
        }
        create = {
            "id": ctx.uris.activity(),
            "type": "Create",
            "actor": voter.uri,
            "object": note,
            "to": [author.uri],
        }
        session.add(
            PollVote(poll_id=obj.id, actor_id=voter.id, position=names[name].position, uri=note_id)
        )
        await publish(ctx, session, voter, create, recipients=[author], public=False)
    await session.flush()
    return len(set(choices))


# ---- remote Question documents ------------------------------------------------------------------


@on_ingest("Question")
async def ingest_question(
    ctx: Context, session: AsyncSession, row: Object, raw: Mapping[str, Any]
) -> None:
    """Keep `polls`/`poll_options` rows for a remote Question, counts as its author
    publishes them (a Create, or an Update re-publishing the results)."""
    try:
        parsed = parse_object(raw).poll
    except InvalidObject:
        return
    if parsed is None:
        return
    row.kind = "poll"
    await session.flush()
    poll = await session.get(Poll, row.id)
    if poll is None:
        poll = Poll(object_id=row.id, voters_count=0)
        session.add(poll)
    poll.multiple, poll.closes_at = parsed.multiple, parsed.end_time
    opts = await _options(session, row)
    if [o.name for o in opts] != [o.name for o in parsed.options]:
        await session.execute(delete(PollOption).where(PollOption.poll_id == row.id))
        opts = [
            PollOption(poll_id=row.id, position=i, name=o.name, votes=0)
            for i, o in enumerate(parsed.options)
        ]
        session.add_all(opts)
    for mine, theirs in zip(opts, parsed.options, strict=True):
        mine.votes = theirs.votes or 0
    if parsed.voters_count is not None:
        poll.voters_count = parsed.voters_count
    elif not parsed.multiple:  # single choice: one vote per voter
        poll.voters_count = sum(o.votes for o in opts)
    await session.flush()
