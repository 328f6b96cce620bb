"""Mastodon lists: `/api/v1/lists`, their accounts, and `/api/v1/accounts/:id/lists`.

A list belongs to one user and only that user sees it (404 otherwise, as Mastodon). An
account can be added only if the owner follows it or has asked to (a pending follow, as
Mastodon's follow requests), or is the owner. Unfollowing removes an account from the
owner's lists, as in Mastodon (`ListAccount` belongs to the follow): deleting a Follow
through the ORM deletes the memberships it allowed (`_drop_from_lists`), and memberships
left without a follow by bulk deletes are ignored when read and purged on the next add.
The list timeline (api/timelines.py) reads `list_member_ids`.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web
from sqlalchemy import Connection, delete, event, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.api import entities
from t3r1_fed.api.pagination import page_params, with_link
from t3r1_fed.api.railsparams import as_bool, as_list, as_str, read_params
from t3r1_fed.api.routing import add, get
from t3r1_fed.api.viewer import NOT_FOUND, Viewer, account_id, actor_or_404, required_viewer
from t3r1_fed.appkeys import CTX
from t3r1_fed.db.models import Actor, Follow, User
from t3r1_fed.db.models_api import UserList, UserListAccount
from t3r1_fed.httputil import json_response
from t3r1_fed.oauth.auth import json_exc

REPLIES_POLICIES: Final = ("followed", "list", "none")
MAX_LISTS: Final = 50  # Mastodon's List::PER_ACCOUNT_LIMIT
MAX_TITLE: Final = 255  # the column's size
MAX_ADD: Final = 100  # account_ids per request
READ, WRITE = "read:lists", "write:lists"


def _invalid(message: str) -> web.HTTPException:
    return json_exc(web.HTTPUnprocessableEntity, f"Validation failed: {message}")


def _followed(owner_actor_id: int, *, accepted_only: bool = False) -> Any:
    """SQL condition: the list member is the owner or followed by the owner."""
    follow = exists().where(
        Follow.follower_id == owner_actor_id, Follow.followee_id == UserListAccount.actor_id,
        *([Follow.state == "accepted"] if accepted_only else []),
    )
    return or_(UserListAccount.actor_id == owner_actor_id, follow)


async def owned_list(session: AsyncSession, user_id: int, list_id: int) -> UserList | None:
    if not 0 < list_id < (1 << 63):  # beyond BIGINT: no such list (and no DB error)
        return None
    return (await session.execute(
        select(UserList).where(UserList.id == list_id, UserList.user_id == user_id)
    )).scalar()


async def list_member_ids(session: AsyncSession, user_id: int, list_id: int) -> list[int] | None:
    """Actor ids whose posts the list timeline shows: members the owner follows (accepted)
    or the owner. None when the list does not exist or is not this user's."""
    lst = await owned_list(session, user_id, list_id)
    if lst is None:
        return None
    owner = await _owner_actor_id(session, user_id)
    rows = await session.execute(
        select(UserListAccount.actor_id)
        .where(UserListAccount.list_id == lst.id, _followed(owner, accepted_only=True))
        .order_by(UserListAccount.actor_id)
    )
    return list(rows.scalars())


async def _owner_actor_id(session: AsyncSession, user_id: int) -> int:
    return (await session.execute(select(User.actor_id).where(User.id == user_id))).scalar_one()


@event.listens_for(Follow, "after_delete")
def _drop_from_lists(mapper: Any, connection: Connection, target: Follow) -> None:
    """An unfollow (or a rejected follow request) takes the account off the follower's
    lists, in the same transaction."""
    lists = select(UserList.id).join(User, User.id == UserList.user_id).where(
        User.actor_id == target.follower_id
    )
    connection.execute(delete(UserListAccount).where(
        UserListAccount.actor_id == target.followee_id, UserListAccount.list_id.in_(lists)
    ))


def _list_id(request: web.Request) -> int:
    return account_id(request, "id")


async def _list_or_404(session: AsyncSession, viewer: Viewer, request: web.Request) -> UserList:
    lst = await owned_list(session, viewer.user.id, _list_id(request))
    if lst is None:
        raise json_exc(web.HTTPNotFound, NOT_FOUND)
    return lst


def _apply(lst: UserList, p: dict[str, Any], *, creating: bool) -> None:
    """Validate and assign title, replies_policy, exclusive (422 as Mastodon)."""
    title = as_str(p.get("title"), field="title")
    if title is not None or creating:
        title = (title or "").strip()
        if not title:
            raise _invalid("Title can't be blank")
        if len(title) > MAX_TITLE:
            raise _invalid(f"Title is too long (maximum is {MAX_TITLE} characters)")
        lst.title = title
    policy = as_str(p.get("replies_policy"), field="replies_policy")
    if policy:
        if policy not in REPLIES_POLICIES:
            raise _invalid("Replies policy is not included in the list")
        lst.replies_policy = policy
    elif creating:
        lst.replies_policy = "list"
    exclusive = as_bool(p.get("exclusive"), field="exclusive")
    if exclusive is not None:
        lst.exclusive = exclusive
    elif creating:
        lst.exclusive = False


async def index(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    async with ctx.sessions() as s:
        viewer = await required_viewer(request, s, READ)
        rows = (await s.execute(
            select(UserList).where(UserList.user_id == viewer.user.id).order_by(UserList.id)
        )).scalars().all()
        return json_response([entities.user_list(lst) for lst in rows])


async def show(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    async with ctx.sessions() as s:
        viewer = await required_viewer(request, s, READ)
        return json_response(entities.user_list(await _list_or_404(s, viewer, request)))


async def create(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    async with ctx.sessions() as s, s.begin():
        viewer = await required_viewer(request, s, WRITE)
        p = await read_params(request)
        lst = UserList(user_id=viewer.user.id)
        _apply(lst, p, creating=True)
        count = (await s.execute(
            select(func.count()).select_from(UserList).where(UserList.user_id == viewer.user.id)
        )).scalar_one()
        if count >= MAX_LISTS:
            raise _invalid("You have reached the maximum number of lists")
        s.add(lst)
        await s.flush()
        return json_response(entities.user_list(lst))


async def update(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    async with ctx.sessions() as s, s.begin():
        viewer = await required_viewer(request, s, WRITE)
        lst = await _list_or_404(s, viewer, request)
        _apply(lst, await read_params(request), creating=False)
        await s.flush()
        return json_response(entities.user_list(lst))


async def destroy(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    async with ctx.sessions() as s, s.begin():
        viewer = await required_viewer(request, s, WRITE)
        lst = await _list_or_404(s, viewer, request)
        await s.execute(delete(UserListAccount).where(UserListAccount.list_id == lst.id))
        await s.delete(lst)
    return json_response({})


async def accounts(request: web.Request) -> web.Response:
    """The list's accounts, by account id descending; `limit=0` returns them all."""
    ctx = request.app[CTX]
    async with ctx.sessions() as s:
        viewer = await required_viewer(request, s, READ)
        lst = await _list_or_404(s, viewer, request)
        unlimited = request.query.get("limit", "").strip() == "0"
        page = page_params(request, default=40, maximum=80)
        q = (
            select(Actor).join(UserListAccount, UserListAccount.actor_id == Actor.id)
            .where(UserListAccount.list_id == lst.id, Actor.deleted_at.is_(None),
                   _followed(viewer.actor.id))
        )
        if not unlimited:
            if page.max_id is not None:
                q = q.where(Actor.id < page.max_id)
            if page.lower is not None:
                q = q.where(Actor.id > page.lower)
            q = q.order_by(Actor.id.asc() if page.ascending else Actor.id.desc()).limit(page.limit)
        else:
            q = q.order_by(Actor.id.desc())
        actors = list((await s.execute(q)).scalars().all())
        if not unlimited and page.ascending:
            actors.reverse()
        docs = await entities.accounts(s, ctx.settings, actors)
        resp = json_response([docs[a.id] for a in actors])
    return resp if unlimited else with_link(request, resp, [a.id for a in actors])


def _account_ids(p: dict[str, Any]) -> list[int]:
    raw = as_list(p.get("account_ids"), field="account_ids")
    if len(raw) > MAX_ADD:
        raise _invalid(f"Too many accounts (maximum is {MAX_ADD})")
    out: list[int] = []
    for item in raw:
        text = as_str(item, field="account_ids") or ""
        try:
            value = int(text)
        except ValueError:
            raise json_exc(web.HTTPNotFound, NOT_FOUND) from None
        if not 0 < value < (1 << 63):
            raise json_exc(web.HTTPNotFound, NOT_FOUND)
        if value not in out:
            out.append(value)
    return out


async def add_accounts(request: web.Request) -> web.Response:
    """Add accounts: every id must exist (404), be followed or requested (422), and not be
    on the list yet (422); all or nothing."""
    try:
        await _add_accounts(request)
    except IntegrityError:  # the same account added by a concurrent request
        raise _invalid("Account is already on the list") from None
    return json_response({})


async def _add_accounts(request: web.Request) -> None:
    ctx = request.app[CTX]
    async with ctx.sessions() as s, s.begin():
        viewer = await required_viewer(request, s, WRITE)
        lst = await _list_or_404(s, viewer, request)
        ids = _account_ids(await read_params(request))
        if not ids:
            raise json_exc(web.HTTPBadRequest, "account_ids is missing")
        # Memberships whose follow is gone no longer count (Mastodon deletes them).
        stale = select(UserListAccount.actor_id).where(
            UserListAccount.list_id == lst.id, ~_followed(viewer.actor.id)
        )
        await s.execute(delete(UserListAccount).where(
            UserListAccount.list_id == lst.id, UserListAccount.actor_id.in_(stale)
        ))
        for actor_id in ids:
            await actor_or_404(s, actor_id)
        followed = set((await s.execute(
            select(Follow.followee_id)
            .where(Follow.follower_id == viewer.actor.id, Follow.followee_id.in_(ids))
        )).scalars())
        present = set((await s.execute(
            select(UserListAccount.actor_id)
            .where(UserListAccount.list_id == lst.id, UserListAccount.actor_id.in_(ids))
        )).scalars())
        for actor_id in ids:
            if actor_id != viewer.actor.id and actor_id not in followed:
                raise _invalid("Account must be a followed account")
            if actor_id in present:
                raise _invalid("Account is already on the list")
        s.add_all(UserListAccount(list_id=lst.id, actor_id=a) for a in ids)


async def remove_accounts(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    async with ctx.sessions() as s, s.begin():
        viewer = await required_viewer(request, s, WRITE)
        lst = await _list_or_404(s, viewer, request)
        ids = _account_ids(await read_params(request))
        if ids:
            await s.execute(delete(UserListAccount).where(
                UserListAccount.list_id == lst.id, UserListAccount.actor_id.in_(ids)
            ))
    return json_response({})


async def account_lists(request: web.Request) -> web.Response:
    """The viewer's lists that contain this account."""
    ctx = request.app[CTX]
    async with ctx.sessions() as s:
        viewer = await required_viewer(request, s, READ)
        actor = await actor_or_404(s, account_id(request))
        rows = (await s.execute(
            select(UserList).join(UserListAccount, UserListAccount.list_id == UserList.id)
            .where(UserList.user_id == viewer.user.id, UserListAccount.actor_id == actor.id,
                   _followed(viewer.actor.id))
            .order_by(UserList.id)
        )).scalars().all()
        return json_response([entities.user_list(lst) for lst in rows])


def routes(router: web.UrlDispatcher) -> None:
    base = "/api/v1/lists"
    one = base + "/{id}"
    get(router, base, index)
    add(router, "POST", base, create)
    get(router, one, show)
    add(router, "PUT", one, update)
    add(router, "DELETE", one, destroy)
    get(router, one + "/accounts", accounts)
    add(router, "POST", one + "/accounts", add_accounts)
    add(router, "DELETE", one + "/accounts", remove_accounts)
    get(router, "/api/v1/accounts/{id}/lists", account_lists)
