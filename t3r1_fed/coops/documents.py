"""Collaborative documents: Markdown written together by a cooperative's members.

A document is an `Article` (kind "document") with `name`, `content` (the rendered,
sanitised HTML), `source: {content: <markdown>, mediaType: "text/markdown"}` (as Lemmy
and Mastodon carry sources), our `kind: "document"`, `version` (1, 2 …) and `editedBy`
(who saved that version). Every save stores a `document_versions` row and sends
`Update{Article}` with a new `updated`, announced by the cooperative.

Concurrency is optimistic: a save names the version it started from (`base`); if another
save happened since, it is refused with DocumentConflict (the UI merges and retries). Two
saves racing on the same base meet the (object_id, version) unique constraint: one wins,
the other gets the same conflict.

Receivers keep the history too (`keep_remote_version`): an Article marked
`kind: "document"` with a Markdown `source` adds a version row whenever it is stored or
updated from its origin. Members of *this* instance edit documents of local cooperatives;
a remote member cannot, since an `Update` is only accepted from the object's author.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.coops.editing import EditError, group_of, publish_edit
from t3r1_fed.coops.kinds import on_ingest
from t3r1_fed.coops.posting import create_in_coop
from t3r1_fed.coops.roles import coop_of, role_of
from t3r1_fed.db.models import Actor, Object
from t3r1_fed.db.models_coops import DocumentVersion
from t3r1_fed.federation.hosts import host_of
from t3r1_fed.federation.resolver import ResolveError, get_actor
from t3r1_fed.vocab.markdown import (
    MARKDOWN_MEDIA_TYPE,
    MAX_MARKDOWN_CHARS,
    markdown_source,
    render_markdown,
)
from t3r1_fed.vocab.normalize import id_of

KIND: Final = "document"
# Documents being restored from their origin in this task (see _restore_latest).
_REFRESHING: ContextVar[frozenset[str]] = ContextVar("documents_refreshing",
                                                     default=frozenset())
MAX_TITLE_CHARS: Final = 512
MAX_NOTE_CHARS: Final = 500


class DocumentError(EditError):
    """A document operation that is not allowed or not valid; the message says why."""


class DocumentConflict(DocumentError):
    """Someone saved the document since the version this save started from."""

    def __init__(self, base: int, latest: int) -> None:
        super().__init__(
            f"the document changed since version {base} (now version {latest}): "
            "merge your changes into the latest version and save again"
        )
        self.base = base
        self.latest = latest


@dataclass(frozen=True)
class Version:
    version: int
    author: str  # actor URI
    summary: str | None
    created_at: datetime


@dataclass(frozen=True)
class DocumentDiff:
    v1: int
    v2: int
    unified: str  # `diff -u` text
    lines: list[tuple[str, str]]  # (" " | "-" | "+", line): every line, marked


def _check(title: str, markdown: str) -> tuple[str, str]:
    title = title.strip()
    if not title:
        raise DocumentError("a document needs a title")
    if len(title) > MAX_TITLE_CHARS:
        raise DocumentError(f"title longer than {MAX_TITLE_CHARS} characters")
    if len(markdown) > MAX_MARKDOWN_CHARS:
        raise DocumentError(f"document longer than {MAX_MARKDOWN_CHARS} characters")
    return title, markdown


def _fields(title: str, markdown: str, version: int, editor: Actor) -> dict[str, Any]:
    return {
        "name": title,
        "content": render_markdown(markdown),
        "source": markdown_source(markdown),
        "kind": KIND,
        "version": version,
        "editedBy": editor.uri,
    }


async def _require_member(session: AsyncSession, group_id: int, actor: Actor) -> None:
    if await role_of(session, group_id, actor.id) is None:
        raise DocumentError("only members of the cooperative may edit its documents")


async def create_document(
    ctx: Context,
    session: AsyncSession,
    author: Actor,
    group: Actor,
    title: str,
    markdown: str,
    summary: str | None = None,
) -> Object:
    """A member starts a document (version 1) in a local cooperative."""
    coop = await coop_of(session, group)
    title, markdown = _check(title, markdown)
    await _require_member(session, group.id, author)
    article = {"type": "Article", **_fields(title, markdown, 1, author)}
    row = await create_in_coop(ctx, session, author, group, coop, article, kind=KIND)
    session.add(DocumentVersion(object_id=row.id, version=1, markdown=markdown,
                                author_id=author.id, summary=_note(summary)))
    await session.flush()
    return row


def _note(summary: str | None) -> str | None:
    return (summary or "").strip()[:MAX_NOTE_CHARS] or None


async def document(session: AsyncSession, uri: str) -> Object:
    row = (await session.execute(select(Object).where(Object.uri == uri))).scalar()
    if row is None or row.kind != KIND or row.deleted_at is not None:
        raise DocumentError("no such document")
    return row


async def latest_version(session: AsyncSession, doc: Object) -> int:
    q = select(func.max(DocumentVersion.version)).where(DocumentVersion.object_id == doc.id)
    return int((await session.execute(q)).scalar() or 0)


async def save_document(
    ctx: Context,
    session: AsyncSession,
    editor: Actor,
    doc_uri: str,
    markdown: str,
    *,
    base: int,
    title: str | None = None,
    summary: str | None = None,
) -> int:
    """A member saves a new version made from version `base`; returns the new number."""
    row = await document(session, doc_uri)
    if not row.local:
        raise DocumentError("a document written on another server is edited there")
    group, _ = await group_of(session, row)
    await _require_member(session, group.id, editor)
    title, markdown = _check(title if title is not None else row.name or "", markdown)
    latest = await latest_version(session, row)
    if base != latest:
        raise DocumentConflict(base, latest)
    new = latest + 1
    try:
        async with session.begin_nested():
            session.add(DocumentVersion(object_id=row.id, version=new, markdown=markdown,
                                        author_id=editor.id, summary=_note(summary)))
    except IntegrityError:
        raise DocumentConflict(base, await latest_version(session, row)) from None
    await publish_edit(ctx, session, editor, row, _fields(title, markdown, new, editor))
    return new


async def history(session: AsyncSession, doc: Object) -> list[Version]:
    """Every version of a document, oldest first."""
    q = (
        select(DocumentVersion, Actor.uri)
        .join(Actor, Actor.id == DocumentVersion.author_id)
        .where(DocumentVersion.object_id == doc.id)
        .order_by(DocumentVersion.version)
    )
    return [Version(v.version, uri, v.summary, v.created_at)
            for v, uri in (await session.execute(q)).all()]


async def version_text(session: AsyncSession, doc: Object, version: int) -> str:
    q = select(DocumentVersion.markdown).where(
        DocumentVersion.object_id == doc.id, DocumentVersion.version == version
    )
    text = (await session.execute(q)).scalar()
    if text is None:
        raise DocumentError(f"no version {version} of this document")
    return text


def diff_texts(a: str, b: str, v1: int, v2: int) -> DocumentDiff:
    old, new = a.splitlines(), b.splitlines()
    unified = "\n".join(
        difflib.unified_diff(old, new, f"version {v1}", f"version {v2}", lineterm="")
    )
    marks = {" ": " ", "-": "-", "+": "+"}
    lines = [(marks[d[0]], d[2:]) for d in difflib.ndiff(old, new) if d[0] in marks]
    return DocumentDiff(v1, v2, unified, lines)


async def diff(session: AsyncSession, doc: Object, v1: int, v2: int) -> DocumentDiff:
    """What changed from version `v1` to version `v2` (unified and line by line)."""
    return diff_texts(
        await version_text(session, doc, v1), await version_text(session, doc, v2), v1, v2
    )


@on_ingest("Article")
async def keep_remote_version(
    ctx: Context, session: AsyncSession, row: Object, raw: Mapping[str, Any]
) -> None:
    """A remote document stored or updated from its origin: keep the version it carries."""
    source = raw.get("source")
    kind = raw.get("kind", raw.get("t3r1:kind"))
    if kind != KIND or not isinstance(source, Mapping):
        return
    markdown = source.get("content")
    if source.get("mediaType") != MARKDOWN_MEDIA_TYPE or not isinstance(markdown, str):
        return
    row.kind = KIND
    await session.flush()  # a new row needs its id
    number = raw.get("version")
    latest = await latest_version(session, row)
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        number = latest + 1
    exists = (
        await session.execute(
            select(DocumentVersion.id).where(
                DocumentVersion.object_id == row.id, DocumentVersion.version == number
            )
        )
    ).first()
    if exists is None:
        session.add(DocumentVersion(object_id=row.id, version=number,
                                    markdown=markdown[:MAX_MARKDOWN_CHARS],
                                    author_id=await _editor_id(ctx, session, row, raw)))
    if number < latest:
        await _restore_latest(ctx, session, row)


async def _restore_latest(ctx: Context, session: AsyncSession, row: Object) -> None:
    """An older version arrived after a newer one (deliveries are unordered) and was just
    applied to the row: put the origin's current state back (one refetch, not recursive)."""
    from t3r1_fed.inbox.objects import Refused, fetch_remote_object, upsert_object

    refreshing = _REFRESHING.get()
    if row.uri in refreshing:
        return
    token = _REFRESHING.set(refreshing | {row.uri})
    try:
        fresh, raw = await fetch_remote_object(ctx, session, row.uri)
        await upsert_object(ctx, session, fresh, raw)
    except Refused:
        pass  # the origin is unreachable now: the next update will correct the row
    finally:
        _REFRESHING.reset(token)


async def _editor_id(
    ctx: Context, session: AsyncSession, row: Object, raw: Mapping[str, Any]
) -> int:
    """`editedBy` if it is an actor of the document's own host, else the author."""
    editor = id_of(raw.get("editedBy"))
    try:
        same_host = editor is not None and host_of(editor) == host_of(row.uri)
    except ValueError:
        same_host = False
    if editor and same_host:
        try:
            return (await get_actor(ctx, session, editor)).id
        except ResolveError:
            pass  # the editor is unavailable: the version is credited to the author
    return row.author_id
