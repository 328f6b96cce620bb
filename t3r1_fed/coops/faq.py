"""A cooperative's FAQ: `Article`s (question = `name`, answer = `content`) in its `faq`
collection, a publicly appendable collection (FEP-400e).

- A member publishes an entry with `create_in_coop`; the object carries
  `target: {OrderedCollection faq, attributedTo: group}`. When the cooperative accepts it
  (local or remote author alike, `on_accept` below) it files it at the end of the FAQ and
  sends `Add{object, target: faq}` to its followers (and to a remote author's server).
- The author, and the cooperative's moderators and admins, edit an entry (`Update`,
  announced by the group). Entries by remote authors are only edited at their origin.
- Moderators reorder the FAQ (positions; the group sends `Update{OrderedCollection faq}`
  listing the ids in order) and remove entries: `Remove{object, target: faq}`. A removal
  withdraws the entry from the FAQ (`removed_at`) but does not delete the Article: it is
  its author's, and only its author deletes it (`Delete`). Receivers do the same.
- Search is case- and accent-insensitive ("greve" finds "grève") and done in Python over
  one cooperative's entries (see `fold`): portable across SQLite and PostgreSQL without
  the `unaccent` extension or a derived column that remote updates would have to keep in
  sync; a FAQ has tens to hundreds of entries, capped at MAX_SCAN rows per search.
"""

from __future__ import annotations

import unicodedata
from typing import Any, Final

import orjson
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors.documents import register_group_collection
from t3r1_fed.context import Context
from t3r1_fed.coops.editing import EditError, group_of, next_position, publish_edit
from t3r1_fed.coops.posting import PostRefused, create_in_coop, on_accept
from t3r1_fed.coops.redistribute import group_audience
from t3r1_fed.coops.roles import coop_of, is_moderator, role_of
from t3r1_fed.db.models import Actor, Coop, Object, utcnow
from t3r1_fed.outbox.publish import followers_of, publish
from t3r1_fed.vocab.markdown import MAX_MARKDOWN_CHARS, markdown_source, render_markdown
from t3r1_fed.vocab.normalize import id_of
from t3r1_fed.vocab.sanitize import plain_text

register_group_collection("faq")

KIND: Final = "faq"
MAX_QUESTION_CHARS: Final = 512
MAX_SCAN: Final = 5000
MAX_ORDERED_ITEMS: Final = 1000
# Letters NFKD does not decompose, spelled as people type them without the ligature.
_LIGATURES: Final = str.maketrans({"œ": "oe", "æ": "ae", "ø": "o", "đ": "d", "ł": "l"})


class FaqError(EditError):
    """A FAQ operation that is not allowed or not valid; the message says why."""


def faq_url(group: Actor) -> str:
    return f"{group.uri}/faq"


def faq_target(group: Actor) -> dict[str, str]:
    """The abbreviated collection an entry names as its FEP-400e `target`."""
    return {"type": "OrderedCollection", "id": faq_url(group), "attributedTo": group.uri}


def fold(text: str) -> str:
    """Case- and accent-insensitive form for search: "Grève" and "GREVE" → "greve"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold().translate(_LIGATURES))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _check_text(question: str, answer: str) -> tuple[str, str]:
    question, answer = question.strip(), answer.strip()
    if not question or not answer:
        raise FaqError("a FAQ entry needs a question and an answer")
    if len(question) > MAX_QUESTION_CHARS:
        raise FaqError(f"question longer than {MAX_QUESTION_CHARS} characters")
    if len(answer) > MAX_MARKDOWN_CHARS:
        raise FaqError(f"answer longer than {MAX_MARKDOWN_CHARS} characters")
    return question, answer


def _fields(question: str, answer: str) -> dict[str, Any]:
    return {
        "name": question,
        "content": render_markdown(answer),
        "source": markdown_source(answer),
    }


def entries_query(group_id: int) -> Select[Any]:
    """Live FAQ entries of a cooperative, in FAQ order."""
    return (
        select(Object)
        .where(
            Object.group_id == group_id,
            Object.kind == KIND,
            Object.removed_at.is_(None),
            Object.deleted_at.is_(None),
        )
        .order_by(Object.position.asc(), Object.id.asc())
    )


async def list_faq(session: AsyncSession, group: Actor) -> list[Object]:
    rows = (await session.execute(entries_query(group.id).limit(MAX_SCAN))).scalars()
    return [r for r in rows if isinstance(r, Object)]


async def search_faq(session: AsyncSession, group: Actor, query: str) -> list[Object]:
    """Entries whose question or answer contains every word of `query` (folded)."""
    words = fold(query).split()
    if not words:
        return []
    found = []
    for entry in await list_faq(session, group):
        text = fold(f"{entry.name or ''} {plain_text(entry.content or '')}")
        if all(w in text for w in words):
            found.append(entry)
    return found


async def add_entry(
    ctx: Context, session: AsyncSession, author: Actor, group: Actor, question: str, answer: str
) -> Object:
    """A member adds a question and its answer (plain text or Markdown) to the FAQ."""
    coop = await coop_of(session, group)
    question, answer = _check_text(question, answer)
    if await role_of(session, group.id, author.id) is None:
        raise FaqError("only members of the cooperative may add to its FAQ")
    article = {"type": "Article", **_fields(question, answer), "kind": KIND,
               "target": faq_target(group)}
    return await create_in_coop(ctx, session, author, group, coop, article, kind=KIND)


@on_accept
async def file_entry(
    ctx: Context, session: AsyncSession, group: Actor, coop: Coop, obj: Object, author: Actor
) -> None:
    """A post the cooperative accepted names its FAQ as `target`: file it and send `Add`."""
    raw = orjson.loads(obj.raw)
    if not isinstance(raw, dict) or id_of(raw.get("target")) != faq_url(group):
        return
    if await role_of(session, group.id, author.id) is None:
        raise PostRefused("only members of the cooperative may add to its FAQ")
    obj.kind = KIND
    obj.position = await next_position(session, group.id, KIND)
    to, cc = group_audience(group, coop)
    add = {
        "id": ctx.uris.activity(),
        "type": "Add",
        "actor": group.uri,
        "object": obj.uri,
        "target": faq_target(group),
        "position": obj.position,  # our term: receivers keep the FAQ order
        "to": to,
        "cc": cc,
    }
    recipients = await followers_of(session, group.id)
    if not author.local:
        recipients.append(author)
    await publish(ctx, session, group, add, recipients=recipients, public=not coop.private)


async def _entry(session: AsyncSession, uri: str) -> Object:
    row = (await session.execute(select(Object).where(Object.uri == uri))).scalar()
    if row is None or row.kind != KIND or row.deleted_at is not None or row.removed_at:
        raise FaqError("no such FAQ entry")
    return row


async def edit_entry(
    ctx: Context,
    session: AsyncSession,
    editor: Actor,
    entry_uri: str,
    question: str,
    answer: str,
) -> Object:
    """The author or a moderator rewrites an entry; the change goes out as an `Update`."""
    row = await _entry(session, entry_uri)
    group, _ = await group_of(session, row)
    if row.author_id != editor.id and not await is_moderator(session, group.id, editor.id):
        raise FaqError("only the entry's author and the cooperative's moderators may edit it")
    if not row.local:
        raise FaqError("an entry written on another server is edited by its author there")
    question, answer = _check_text(question, answer)
    await publish_edit(ctx, session, editor, row, _fields(question, answer))
    return row


async def remove_entry(
    ctx: Context, session: AsyncSession, moderator: Actor, entry_uri: str, reason: str = ""
) -> None:
    """A moderator withdraws an entry from the FAQ (the Article itself stays its author's)."""
    row = await _entry(session, entry_uri)
    group, coop = await group_of(session, row)
    if not await is_moderator(session, group.id, moderator.id):
        raise FaqError("only the cooperative's moderators may remove FAQ entries")
    row.removed_at = utcnow()
    row.removed_reason = reason.strip() or None
    to, cc = group_audience(group, coop)
    remove: dict[str, Any] = {
        "id": ctx.uris.activity(),
        "type": "Remove",
        "actor": group.uri,
        "object": row.uri,
        "target": faq_target(group),
        "to": to,
        "cc": cc,
    }
    if row.removed_reason:
        remove["summary"] = row.removed_reason
    recipients = await followers_of(session, group.id)
    if not row.local:
        author = (await session.execute(select(Actor).where(Actor.id == row.author_id))).scalar()
        recipients += [author] if author is not None else []
    await publish(ctx, session, group, remove, recipients=recipients, public=not coop.private)


async def reorder_faq(
    ctx: Context, session: AsyncSession, moderator: Actor, group: Actor, order: list[str]
) -> list[Object]:
    """A moderator sets the FAQ order: `order` lists every live entry's id once."""
    coop = await coop_of(session, group)
    if not await is_moderator(session, group.id, moderator.id):
        raise FaqError("only the cooperative's moderators may reorder the FAQ")
    entries = {e.uri: e for e in await list_faq(session, group)}
    if len(order) != len(set(order)) or set(order) != set(entries):
        raise FaqError("the new order must list every FAQ entry exactly once")
    for position, uri in enumerate(order, start=1):
        entries[uri].position = position
    to, cc = group_audience(group, coop)
    update = {
        "id": ctx.uris.activity(),
        "type": "Update",
        "actor": group.uri,
        "object": {
            "id": faq_url(group),
            "type": "OrderedCollection",
            "attributedTo": group.uri,
            "totalItems": len(order),
            "orderedItems": order[:MAX_ORDERED_ITEMS],
        },
        "to": to,
        "cc": cc,
    }
    await publish(
        ctx, session, group, update,
        recipients=await followers_of(session, group.id), public=not coop.private,
    )
    return [entries[uri] for uri in order]
