"""The directory (annuaire): members' profiles and cooperatives, searchable.

A member's profile (`profiles`) holds their structure, mandate, skills and contact; each
field is shown only if its `show_*` flag is set, and the member appears in the directory
only if `listed`. Opted-in fields are also published in the Person actor document as
Mastodon `PropertyValue` fields (`attachment`), under French names.

Cooperatives: local public ones and known remote groups (not private ones). Search by
name, structure, skill and hashtag, accent- and case-insensitive ("Fédération" matches
"federation"): text is folded in Python, identically on SQLite and PostgreSQL, over
bounded candidate sets (`MAX_SCAN` rows of each kind).
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors.documents import actor_document
from t3r1_fed.context import Context
from t3r1_fed.db.models import Actor, Coop, Object
from t3r1_fed.db.models_coops import ObjectTag, Profile
from t3r1_fed.outbox.publish import followers_of, publish

MAX_SCAN: Final = 10_000
MAX_FIELD_CHARS: Final = 255
MAX_CONTACT_CHARS: Final = 500
MAX_SKILLS: Final = 30
MAX_SKILL_CHARS: Final = 64
# Profile fields in the order and with the French names they are published under.
FIELDS: Final = (
    ("structure", "Structure"),
    ("mandate", "Mandat"),
    ("skills", "Compétences"),
    ("contact", "Contact"),
)
_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae", "ß": "ss"})


class DirectoryError(ValueError):
    """A profile change or a search that is not acceptable; the message says why."""


def fold(text: str | None) -> str:
    """Lowercase, accents and ligatures removed, spaces collapsed: 'Fédération' → 'federation'."""
    decomposed = unicodedata.normalize("NFKD", (text or "").casefold().translate(_LIGATURES))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.split())


def tag_key(text: str | None) -> str:
    """A hashtag's comparable form: folded, without '#', letters and digits only."""
    return re.sub(r"[^0-9a-z]", "", fold(text))


def split_skills(skills: str | list[str] | None) -> list[str]:
    items = skills.split(",") if isinstance(skills, str) else list(skills or [])
    out: dict[str, str] = {}
    for item in items:
        skill = " ".join(str(item).split())
        if not skill:
            continue
        if len(skill) > MAX_SKILL_CHARS:
            raise DirectoryError(f"a skill is at most {MAX_SKILL_CHARS} characters")
        out.setdefault(fold(skill), skill)
    if len(out) > MAX_SKILLS:
        raise DirectoryError(f"at most {MAX_SKILLS} skills")
    return list(out.values())


# ---- profiles -----------------------------------------------------------------------------


async def get_profile(session: AsyncSession, member: Actor) -> Profile:
    """The member's own profile (every field, opted in or not); created empty if needed."""
    if not member.local or member.type != "Person":
        raise DirectoryError("profiles are for local members")
    row = (await session.execute(select(Profile).where(Profile.actor_id == member.id))).scalar()
    if row is None:
        row = Profile(actor_id=member.id, show_structure=False, show_mandate=False,
                      show_skills=False, show_contact=False, listed=False)
        session.add(row)
        await session.flush()
    return row


_UNSET: Any = object()


async def update_profile(
    ctx: Context,
    session: AsyncSession,
    member: Actor,
    *,
    structure: str | None = _UNSET,
    mandate: str | None = _UNSET,
    skills: str | list[str] | None = _UNSET,
    contact: str | None = _UNSET,
    show_structure: bool | None = None,
    show_mandate: bool | None = None,
    show_skills: bool | None = None,
    show_contact: bool | None = None,
    listed: bool | None = None,
) -> Profile:
    """The member edits their profile; only the arguments given change. Followers get an
    `Update` of the actor so their servers refetch the published fields."""
    row = await get_profile(session, member)
    for name, value, cap in (("structure", structure, MAX_FIELD_CHARS),
                             ("mandate", mandate, MAX_FIELD_CHARS),
                             ("contact", contact, MAX_CONTACT_CHARS)):
        if value is _UNSET:
            continue
        text = " ".join(str(value or "").split()) if name != "contact" else str(value or "")
        if len(text.strip()) > cap:
            raise DirectoryError(f"{name} longer than {cap} characters")
        setattr(row, name, text.strip() or None)
    if skills is not _UNSET:
        row.skills = ", ".join(split_skills(skills)) or None
    for name, flag in (("show_structure", show_structure), ("show_mandate", show_mandate),
                       ("show_skills", show_skills), ("show_contact", show_contact),
                       ("listed", listed)):
        if flag is not None:
            setattr(row, name, bool(flag))
    await session.flush()
    doc = await person_document(ctx, session, member)
    update = {"id": ctx.uris.activity(), "type": "Update", "actor": member.uri,
              "object": {k: v for k, v in doc.items() if k != "@context"},
              "to": ["https://www.w3.org/ns/activitystreams#Public"]}
    await publish(ctx, session, member, update, recipients=await followers_of(session, member.id))
    return row


def shown_fields(profile: Profile | None) -> list[tuple[str, str]]:
    """(French name, value) of the fields the member opted to show, in FIELDS order."""
    if profile is None:
        return []
    out = []
    for name, label in FIELDS:
        value = getattr(profile, name)
        if value and getattr(profile, f"show_{name}"):
            out.append((label, value))
    return out


async def profile_attachment(session: AsyncSession, actor: Actor) -> list[dict[str, str]]:
    """Opted-in profile fields as Mastodon `PropertyValue`s (value is escaped HTML)."""
    if not actor.local or actor.type != "Person":
        return []
    row = (await session.execute(select(Profile).where(Profile.actor_id == actor.id))).scalar()
    return [{"type": "PropertyValue", "name": label, "value": html.escape(value)}
            for label, value in shown_fields(row)]


async def person_document(ctx: Context, session: AsyncSession, actor: Actor) -> dict[str, Any]:
    """The actor document with the profile fields (as served at the actor's id)."""
    doc = actor_document(actor, ctx.uris)
    fields = await profile_attachment(session, actor)
    if fields:
        doc["attachment"] = fields
    return doc


# ---- search -------------------------------------------------------------------------------


@dataclass
class Entry:
    """One directory result: a member (only opted-in fields) or a cooperative."""

    kind: str  # member | coop
    uri: str
    username: str
    domain: str
    name: str
    local: bool
    url: str | None = None
    summary: str | None = None
    fields: dict[str, str] = field(default_factory=dict)  # French name → value
    tags: list[str] = field(default_factory=list)  # hashtags that matched (coops)


def _matches(needle: str | None, *haystack: str | None) -> bool:
    return not needle or any(needle in fold(h) for h in haystack if h)


async def _tag_groups(session: AsyncSession, key: str) -> dict[int, list[str]]:
    """Group actor id → tags (as stored) carried by its live objects, matching `key`."""
    tags = [t for t in (await session.execute(select(ObjectTag.tag).distinct().limit(MAX_SCAN)))
            .scalars() if tag_key(t) == key]
    if not tags:
        return {}
    q = (
        select(Object.group_id, ObjectTag.tag)
        .join(ObjectTag, ObjectTag.object_id == Object.id)
        .where(ObjectTag.tag.in_(tags), Object.group_id.is_not(None),
               Object.deleted_at.is_(None), Object.removed_at.is_(None))
        .distinct()
    )
    out: dict[int, list[str]] = {}
    for gid, tag in (await session.execute(q)).all():
        if gid is not None:
            out.setdefault(gid, []).append(tag)
    return out


async def _members(
    session: AsyncSession, q: str, structure: str, skill: str, tag: str
) -> list[Entry]:
    rows = (await session.execute(
        select(Actor, Profile).join(Profile, Profile.actor_id == Actor.id)
        .where(Profile.listed.is_(True), Actor.local.is_(True), Actor.deleted_at.is_(None))
        .limit(MAX_SCAN)
    )).all()
    out = []
    for actor, profile in rows:
        shown = dict(shown_fields(profile))
        skills = split_skills(shown.get("Compétences"))
        if not _matches(q, actor.name, actor.username):
            continue
        if structure and not _matches(structure, shown.get("Structure")):
            continue
        if skill and not any(skill in fold(s) for s in skills):
            continue
        if tag and tag not in {tag_key(s) for s in skills}:
            continue
        out.append(Entry("member", actor.uri, actor.username, actor.domain,
                         actor.name or actor.username, True, actor.url, None, shown))
    return out


async def _coops(session: AsyncSession, q: str, structure: str, tag: str) -> list[Entry]:
    tagged = await _tag_groups(session, tag) if tag else {}
    if tag and not tagged:
        return []
    query = (
        select(Actor).outerjoin(Coop, Coop.actor_id == Actor.id)
        .where(Actor.type == "Group", Actor.deleted_at.is_(None),
               or_(and_(Actor.local.is_(True), Coop.private.is_(False)),
                   and_(Actor.local.is_(False),
                        or_(Actor.discoverable.is_(True),
                            Actor.manually_approves_followers.is_(False)))))
    )
    if tag:
        query = query.where(Actor.id.in_(list(tagged)))
    out = []
    for actor in (await session.execute(query.limit(MAX_SCAN))).scalars():
        if not _matches(q, actor.name, actor.username):
            continue
        if structure and not _matches(structure, actor.name, actor.username, actor.summary):
            continue
        out.append(Entry("coop", actor.uri, actor.username, actor.domain,
                         actor.name or actor.username, actor.local, actor.url, actor.summary,
                         tags=sorted(tagged.get(actor.id, []))))
    return out


async def search(
    session: AsyncSession,
    query: str | None = None,
    *,
    structure: str | None = None,
    skill: str | None = None,
    hashtag: str | None = None,
    kind: str | None = None,
    limit: int = 50,
) -> list[Entry]:
    """Members and cooperatives matching every criterion given (accent-insensitive).

    `query`: name or username; `structure`: a member's structure, a cooperative's name or
    description; `skill`: a member's skill (members only); `hashtag`: cooperatives whose
    posts carry it, members with it as a skill. `kind`: 'member', 'coop' or None (both).
    Local results first, then by name.
    """
    if kind not in (None, "member", "coop"):
        raise DirectoryError("kind must be 'member' or 'coop'")
    q, st, sk = fold(query), fold(structure), fold(skill)
    tag = tag_key(hashtag)
    if hashtag and not tag:
        raise DirectoryError("invalid hashtag")
    found: list[Entry] = []
    if kind in (None, "member"):
        found += await _members(session, q, st, sk, tag)
    if kind in (None, "coop") and not sk:
        found += await _coops(session, q, st, tag)
    found.sort(key=lambda e: (not e.local, fold(e.name), e.uri))
    return found[: max(1, min(limit, 200))]
