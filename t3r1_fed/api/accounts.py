"""Mastodon client API, accounts: read an account, look it up, its statuses, its followers
and follows; follow, unfollow, relationships. Search is api/search.py, follow requests
api/follow_requests.py; their routes are registered here (one feature module).

A cooperative is an account with `group: true`: following it is joining it (its openness
decides), its statuses are its redistributions (its boosts), its followers are its members
— hidden, for a private cooperative, from anyone who is not a member.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import BigInteger, and_, cast, exists, func, null, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from t3r1_fed.api import entities, relationships, statuses_view
from t3r1_fed.api.pagination import Page, page_params, with_link
from t3r1_fed.api.routing import add, get
from t3r1_fed.api.viewer import (
    NOT_FOUND,
    Viewer,
    account_id,
    actor_or_404,
    flag,
    id_list,
    optional_viewer,
    params,
    required_viewer,
)
from t3r1_fed.appkeys import CTX
from t3r1_fed.coops.access import is_member
from t3r1_fed.coops.roles import is_moderator
from t3r1_fed.db.models import Actor, Coop, Follow, Object, Share
from t3r1_fed.db.models_coops import Media, ObjectTag
from t3r1_fed.httputil import json_response
from t3r1_fed.oauth.auth import json_exc

ACCOUNT = r"/api/v1/accounts/{id:\d+}"
FOLLOW_SCOPE = "write:follows"


# ---- one account --------------------------------------------------------------------------


async def get_account(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    async with ctx.sessions() as s:
        await optional_viewer(request, s, "read:accounts")
        actor = await actor_or_404(s, account_id(request))
        return json_response(await entities.account(s, ctx.settings, actor))


async def find_by_acct(session: AsyncSession, local_domain: str, acct: str) -> Actor | None:
    """A known account from `name`, `@name`, `name@host` or `@name@host` (no network)."""
    name, _, host = acct.strip().lstrip("@").partition("@")
    if not name or "@" in host:
        return None
    host = host.lower()
    if not host or host == local_domain.lower():
        cond = and_(Actor.local.is_(True), Actor.username == name.lower())
    else:
        # Usernames are case-insensitive (as Mastodon's); the domain index narrows first.
        cond = and_(Actor.local.is_(False), Actor.domain == host,
                    func.lower(Actor.username) == name.lower())
    q = (select(Actor)
         .where(cond, Actor.deleted_at.is_(None), Actor.type != "Application")
         .order_by(Actor.id).limit(1))
    return (await session.execute(q)).scalar()


async def lookup(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    async with ctx.sessions() as s:
        await optional_viewer(request, s, "read:accounts")
        actor = await find_by_acct(s, ctx.settings.domain, request.query.get("acct", ""))
        if actor is None:
            raise json_exc(web.HTTPNotFound, NOT_FOUND)
        return json_response(await entities.account(s, ctx.settings, actor))


# ---- an account's statuses ------------------------------------------------------------------


def _bounded(col: Any, page: Page) -> list[Any]:
    conds = []
    if page.max_id is not None:
        conds.append(col < page.max_id)
    if page.lower is not None:
        conds.append(col > page.lower)
    return conds


async def status_refs(
    session: AsyncSession, actor: Actor, page: Page, values: Any
) -> list[statuses_view.StatusRef]:
    """Posts by `actor` merged with its boosts (a cooperative's redistributions), newest
    first, with Mastodon's filters. Visibility is checked at rendering."""
    only_media = flag(values, "only_media", False)
    exclude_replies = flag(values, "exclude_replies", False)
    exclude_reblogs = flag(values, "exclude_reblogs", False)
    pinned = flag(values, "pinned", False)
    tagged = values.get("tagged", "").strip().lstrip("#").lower()

    def object_filters(o: Any) -> list[Any]:
        conds = [o.deleted_at.is_(None), o.removed_at.is_(None),
                 o.kind.in_(statuses_view.STATUS_KINDS)]
        if only_media:
            conds.append(exists().where(Media.object_id == o.id))
        if tagged:
            conds.append(exists().where(ObjectTag.object_id == o.id, ObjectTag.tag == tagged))
        return conds

    no_share = cast(null(), BigInteger).label("share_id")
    if pinned:
        # A cooperative's featured posts (pinned by its moderators); a person's own pins.
        owner = Object.group_id == actor.id if actor.type == "Group" else and_(
            Object.author_id == actor.id, Object.group_id.is_(None))
        sel = select(Object.sid.label("sid"), Object.id.label("object_id"), no_share).where(
            owner, Object.pinned_at.is_not(None), *object_filters(Object))
        parts = [sel]
    else:
        own = select(Object.sid.label("sid"), Object.id.label("object_id"), no_share).where(
            Object.author_id == actor.id, *object_filters(Object))
        if exclude_replies:
            # Mastodon keeps self-replies (threads) when replies are excluded.
            parent = aliased(Object)
            own = own.where(or_(
                Object.in_reply_to.is_(None),
                exists().where(parent.uri == Object.in_reply_to,
                               parent.author_id == actor.id),
            ))
        parts = [own]
        if not exclude_reblogs:
            shared = aliased(Object)
            parts.append(
                select(Share.sid.label("sid"), Share.object_id.label("object_id"),
                       Share.id.label("share_id"))
                .join(shared, shared.id == Share.object_id)
                .where(Share.actor_id == actor.id, *object_filters(shared))
            )
    u = union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
    q = select(u.c.sid, u.c.object_id, u.c.share_id).where(*_bounded(u.c.sid, page))
    q = q.order_by(u.c.sid.asc() if page.ascending else u.c.sid.desc()).limit(page.limit)
    rows = list((await session.execute(q)).all())
    if page.ascending:
        rows.reverse()
    return [statuses_view.StatusRef(int(sid), int(oid), None if sh is None else int(sh))
            for sid, oid, sh in rows]


async def account_statuses(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    page = page_params(request)
    async with ctx.sessions() as s:
        viewer = await optional_viewer(request, s, "read:statuses")
        actor = await actor_or_404(s, account_id(request))
        refs = await status_refs(s, actor, page, request.query)
        docs = await statuses_view.render(ctx, s, viewer.actor if viewer else None, refs,
                                          filter_context="account")
    # Links follow the rows read, not the rows shown, so hidden statuses do not stop paging.
    return with_link(request, json_response(docs), [r.sid for r in refs])


# ---- followers and following ----------------------------------------------------------------


async def hidden_members(session: AsyncSession, group: Actor, viewer: Viewer | None) -> bool:
    """A private cooperative's members are seen only by its members and moderators."""
    coop = (await session.execute(select(Coop).where(Coop.actor_id == group.id))).scalar()
    if coop is None or not coop.private:
        return False
    if viewer is None:
        return True
    return not (await is_member(session, group.id, viewer.actor.id)
                or await is_moderator(session, group.id, viewer.actor.id))


async def _follow_page(
    request: web.Request, *, followers: bool
) -> web.Response:
    ctx = request.app[CTX]
    page = page_params(request, default=40, maximum=80)
    async with ctx.sessions() as s:
        viewer = await optional_viewer(request, s, "read:accounts")
        actor = await actor_or_404(s, account_id(request))
        if followers and await hidden_members(s, actor, viewer):
            return json_response([])
        mine, theirs = (Follow.followee_id, Follow.follower_id) if followers else (
            Follow.follower_id, Follow.followee_id)
        q = (select(Follow.id, Actor).join(Actor, Actor.id == theirs)
             .where(mine == actor.id, Follow.state == "accepted", Actor.deleted_at.is_(None),
                    *_bounded(Follow.id, page)))
        if not followers and (viewer is None or viewer.actor.id != actor.id):
            # Membership of a private cooperative is private: shown to its members only.
            private = select(Coop.actor_id).where(Coop.private.is_(True))
            if viewer is not None:
                seen = select(Follow.followee_id).where(
                    Follow.follower_id == viewer.actor.id, Follow.state == "accepted")
                private = private.where(Coop.actor_id.not_in(seen))
            q = q.where(theirs.not_in(private))
        q = q.order_by(Follow.id.asc() if page.ascending else Follow.id.desc()).limit(page.limit)
        rows = list((await s.execute(q)).all())
        if page.ascending:
            rows.reverse()
        docs = await entities.account_list(s, ctx.settings, [a for _, a in rows])
    return with_link(request, json_response(docs), [fid for fid, _ in rows])


async def account_followers(request: web.Request) -> web.Response:
    return await _follow_page(request, followers=True)


async def account_following(request: web.Request) -> web.Response:
    return await _follow_page(request, followers=False)


async def familiar_followers(request: web.Request) -> web.Response:
    """For each `id[]`: the accounts the viewer follows that follow it (Mastodon 3.5)."""
    ctx = request.app[CTX]
    async with ctx.sessions() as s:
        viewer = await required_viewer(request, s, "read:follows")
        mine = select(Follow.followee_id).where(
            Follow.follower_id == viewer.actor.id, Follow.state == "accepted")
        out = []
        for aid in id_list(request.query)[:40]:
            target = (await s.execute(select(Actor).where(
                Actor.id == aid, Actor.deleted_at.is_(None)))).scalar()
            if target is None:
                continue
            accounts: list[dict[str, Any]] = []
            if not await hidden_members(s, target, viewer):
                rows = list((await s.execute(
                    select(Actor).join(Follow, Follow.follower_id == Actor.id)
                    .where(Follow.followee_id == aid, Follow.state == "accepted",
                           Actor.id.in_(mine), Actor.deleted_at.is_(None))
                    .order_by(Follow.id.desc()).limit(40)
                )).scalars())
                accounts = await entities.account_list(s, ctx.settings, rows)
            out.append({"id": str(aid), "accounts": accounts})
    return json_response(out)


async def featured_tags(request: web.Request) -> web.Response:
    """Featured hashtags do not exist here (instance `max_featured_tags` is 0)."""
    ctx = request.app[CTX]
    async with ctx.sessions() as s:
        await optional_viewer(request, s, "read:accounts")
        await actor_or_404(s, account_id(request))
    return json_response([])


# ---- follow, unfollow, relationships --------------------------------------------------------


async def follow(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    values = await params(request)
    reblogs = flag(values, "reblogs")
    notify = flag(values, "notify")
    async with ctx.sessions() as s, s.begin():
        viewer = await required_viewer(request, s, FOLLOW_SCOPE)
        target = await actor_or_404(s, account_id(request))
        if target.id == viewer.actor.id or target.type == "Application":
            raise json_exc(web.HTTPNotFound, NOT_FOUND)  # Mastodon: following_not_possible?
        try:
            await relationships.follow(ctx, s, viewer.actor, viewer.user.username, target,
                                       reblogs=reblogs, notify=notify)
        except relationships.FollowRefused as e:
            raise json_exc(web.HTTPForbidden, str(e)) from None
        doc = await relationships.relationship(s, viewer.actor, target)
    return json_response(doc)


async def unfollow(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    async with ctx.sessions() as s, s.begin():
        viewer = await required_viewer(request, s, FOLLOW_SCOPE)
        target = await actor_or_404(s, account_id(request))
        await relationships.unfollow(ctx, s, viewer.actor, viewer.user.username, target)
        doc = await relationships.relationship(s, viewer.actor, target)
    return json_response(doc)


async def account_relationships(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    async with ctx.sessions() as s:
        viewer = await required_viewer(request, s, "read:follows")
        ids = id_list(request.query)[:100]
        return json_response(await relationships.relationships(s, viewer.actor, ids))


def routes(router: web.UrlDispatcher) -> None:
    from t3r1_fed.api import credentials, follow_requests, search

    credentials.routes(router)
    get(router, "/api/v1/accounts/lookup", lookup)
    get(router, "/api/v1/accounts/relationships", account_relationships)
    get(router, "/api/v1/accounts/familiar_followers", familiar_followers)
    search.routes(router)
    follow_requests.routes(router)
    get(router, ACCOUNT, get_account)
    get(router, ACCOUNT + "/statuses", account_statuses)
    get(router, ACCOUNT + "/followers", account_followers)
    get(router, ACCOUNT + "/following", account_following)
    get(router, ACCOUNT + "/featured_tags", featured_tags)
    add(router, "POST", ACCOUNT + "/follow", follow)
    add(router, "POST", ACCOUNT + "/unfollow", unfollow)
