"""Local actors: members (Person), cooperatives (Group) and the instance actor (Application)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.db.models import Actor, Coop, CoopRole, User
from t3r1_fed.federation.keys import generate_rsa_keypair
from t3r1_fed.uris import Uris

# Same shape Mastodon accepts for local usernames; cooperatives share the namespace because
# both are reachable as acct:name@domain.
NAME_RE = re.compile(r"^[a-z0-9_](?:[a-z0-9_.-]{0,62}[a-z0-9_])?$")
OPENNESS = ("open", "moderated", "invite_only")
RESERVED = frozenset(
    {"actor", "inbox", "admin", "api", "oauth", "well-known", "nodeinfo", "u", "c"}
)


class ActorError(ValueError):
    """A local actor cannot be created or found; the message is for the operator."""


def check_name(name: str) -> str:
    name = name.strip().lower()
    if not NAME_RE.match(name) or name in RESERVED:
        raise ActorError(
            f"invalid name {name!r}: 1–64 characters a-z 0-9 _ . -, not starting or ending "
            "with . or -, and not a reserved word"
        )
    return name


async def _name_taken(session: AsyncSession, domain: str, name: str) -> bool:
    q = select(Actor.id).where(
        Actor.local.is_(True), Actor.username == name, Actor.domain == domain
    )
    return (await session.execute(q)).first() is not None


async def _new_actor(
    session: AsyncSession,
    uris: Uris,
    domain: str,
    *,
    uri: str,
    type_: str,
    username: str,
    name: str | None,
    manually_approves: bool = False,
    discoverable: bool = True,
) -> Actor:
    private_pem, public_pem = await asyncio.to_thread(generate_rsa_keypair)
    actor = Actor(
        uri=uri,
        local=True,
        type=type_,
        username=username,
        domain=domain,
        name=name,
        inbox=uris.sub(uri, "inbox"),
        outbox=uris.sub(uri, "outbox"),
        shared_inbox=uris.shared_inbox,
        followers_url=uris.sub(uri, "followers"),
        following_url=uris.sub(uri, "following"),
        key_id=uris.key_id(uri),
        public_key_pem=public_pem,
        private_key_pem=private_pem,
        manually_approves_followers=manually_approves,
        discoverable=discoverable,
        url=uris.profile(username) if type_ != "Application" else uris.base + "/",
    )
    session.add(actor)
    await session.flush()
    return actor


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return f"scrypt$16384$8$1${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        algo, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if algo != "scrypt":
        return False
    got = hashlib.scrypt(
        password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
    )
    return hmac.compare_digest(got.hex(), digest)


async def ensure_instance_actor(session: AsyncSession, uris: Uris, domain: str) -> Actor:
    actor = (await session.execute(select(Actor).where(Actor.uri == uris.instance_actor))).scalar()
    if actor is None:
        actor = await _new_actor(
            session,
            uris,
            domain,
            uri=uris.instance_actor,
            type_="Application",
            username=domain,
            name=domain,
            manually_approves=True,
            discoverable=False,
        )
        # The instance actor follows and is followed only through instance links.
    return actor


async def create_user(
    session: AsyncSession,
    uris: Uris,
    domain: str,
    username: str,
    password: str,
    *,
    admin: bool = False,
    display_name: str | None = None,
) -> User:
    username = check_name(username)
    if len(password) < 8:
        raise ActorError("password must have at least 8 characters")
    if await _name_taken(session, domain, username):
        raise ActorError(f"the name {username!r} is already taken")
    actor = await _new_actor(
        session,
        uris,
        domain,
        uri=uris.user(username),
        type_="Person",
        username=username,
        name=display_name or username,
    )
    pw_hash = await asyncio.to_thread(hash_password, password)
    user = User(actor_id=actor.id, username=username, password_hash=pw_hash, is_admin=admin)
    session.add(user)
    await session.flush()
    return user


async def create_coop(
    session: AsyncSession,
    uris: Uris,
    domain: str,
    name: str,
    owner: str,
    *,
    openness: str = "open",
    private: bool = False,
    title: str | None = None,
    summary: str | None = None,
) -> Coop:
    name = check_name(name)
    if openness not in OPENNESS:
        raise ActorError(f"openness must be one of {', '.join(OPENNESS)}")
    if await _name_taken(session, domain, name):
        raise ActorError(f"the name {name!r} is already taken")
    owner_user = await get_user(session, owner)
    actor = await _new_actor(
        session,
        uris,
        domain,
        uri=uris.coop(name),
        type_="Group",
        username=name,
        name=title or name,
        manually_approves=private or openness != "open",
        discoverable=not private,
    )
    actor.featured_url = uris.sub(actor.uri, "featured")
    actor.summary = summary
    coop = Coop(actor_id=actor.id, name=name, openness=openness, private=private)
    session.add(coop)
    session.add(CoopRole(coop_actor_id=actor.id, actor_id=owner_user.actor_id, role="admin"))
    await session.flush()
    return coop


async def get_user(session: AsyncSession, username: str) -> User:
    user = (await session.execute(select(User).where(User.username == username.lower()))).scalar()
    if user is None:
        raise ActorError(f"no local user {username!r}")
    return user


async def get_coop(session: AsyncSession, name: str) -> tuple[Coop, Actor]:
    row = (
        await session.execute(
            select(Coop, Actor)
            .join(Actor, Actor.id == Coop.actor_id)
            .where(Coop.name == name.lower())
        )
    ).first()
    if row is None:
        raise ActorError(f"no cooperative {name!r}")
    return row[0], row[1]


async def local_actor_by_name(session: AsyncSession, domain: str, name: str) -> Actor | None:
    q = select(Actor).where(
        Actor.local.is_(True),
        Actor.username == name.lower(),
        Actor.domain == domain,
        Actor.type != "Application",
        Actor.deleted_at.is_(None),
    )
    return (await session.execute(q)).scalar()
