"""Every entity the client API returns, checked against Mastodon's documented attributes
(tests/unit/mastodon_schema.py): realistic data on two instances — a cooperative
redistributing a post with an image, hashtags and mentions, a reply, a favourite, a poll,
notifications of most kinds, a remote account and a remote cooperative, a list, a marker
and filters — then one GET of every endpoint that returns an entity."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import ClientSession, FormData
from PIL import Image
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.coops.directory import update_profile
from t3r1_fed.coops.membership import group_actor, join, user_actor
from t3r1_fed.coops.news import publish_news
from t3r1_fed.coops.polls import close_due_polls
from t3r1_fed.db.models import utcnow
from t3r1_fed.db.models_coops import Poll
from tests.conftest import StartInstance
from tests.integration.accounts_api_support import call
from tests.integration.small_api_support import quick_token
from tests.testrig import Instance, eventually
from tests.unit.mastodon_schema import check, check_list

pytestmark = pytest.mark.federation

SCOPES = "read write follow"


class Audit:
    """GETs (or POSTs) an endpoint and collects the schema problems of its entities."""

    def __init__(self, inst: Instance) -> None:
        self.inst = inst
        self.problems: list[str] = []
        self.seen: set[str] = set()

    async def get(self, path: str, entity: str, tok: str | None, *, many: bool = False,
                  method: str = "GET", **kw: Any) -> Any:
        status, body, _ = await call(self.inst, method, path, tok, **kw)
        assert status == 200, (path, body)
        label = f"{method} {path}"
        errs = check_list(entity, body, label) if many else check(entity, body, label)
        self.problems += errs
        self.seen.add(entity)
        if many:
            assert isinstance(body, list)
        return body


def _distinct(problems: list[str]) -> list[str]:
    """One line per kind of problem (list indices and ids folded), with a count."""
    counts: dict[str, int] = {}
    for p in problems:
        key = re.sub(r"\[\d+\]", "[]", re.sub(r"/\d+", "/:id", p))
        counts[key] = counts.get(key, 0) + 1
    return [f"{n}x {key}" for key, n in counts.items()]


def _png(color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(out, format="PNG")
    return out.getvalue()


async def _upload(a: Instance, tok: str, audit: Audit, description: str) -> dict[str, Any]:
    form = FormData()
    form.add_field("file", _png((200, 30, 60)), filename="affiche.png",
                   content_type="image/png")
    form.add_field("description", description)
    async with ClientSession() as http:
        async with http.post(a.base + "/api/v2/media", data=form,
                             headers={"Authorization": f"Bearer {tok}"}) as r:
            assert r.status in (200, 202), await r.text()
            doc: dict[str, Any] = await r.json()
    audit.problems += check("MediaAttachment", doc, "POST /api/v2/media")
    return doc


async def _setup_members(a: Instance, b: Instance) -> None:
    for name in ("alice", "bob", "dave"):
        await a.create_user(name)
    await a.create_coop("c1", "bob")
    await b.create_user("carol")
    await b.create_coop("fed", "carol")

    async def go(ctx: Context, s: AsyncSession) -> None:
        alice = await user_actor(s, "alice")
        await join(ctx, s, alice, await group_actor(s, "c1"))
        await update_profile(ctx, s, alice, mandate="Déléguée syndicale", show_mandate=True)

    await a.run(go)


async def test_every_entity_matches_mastodon(instances: StartInstance) -> None:
    a = await instances("127.0.0.2")
    b = await instances("127.0.0.3")
    await _setup_members(a, b)
    ta, tb, td = [await quick_token(a, n, SCOPES) for n in ("alice", "bob", "dave")]
    audit = Audit(a)
    get = audit.get

    me = await get("/api/v1/accounts/verify_credentials", "CredentialAccount", ta)
    bob = await get("/api/v1/accounts/lookup?acct=bob", "Account", ta)
    c1 = await get("/api/v1/accounts/lookup?acct=c1", "Account", ta)
    assert c1["group"] is True

    # Alice locks her account: bob's follow is a request; dave follows after she unlocks.
    await get("/api/v1/accounts/update_credentials", "CredentialAccount", ta,
              method="PATCH", data={"locked": "true"})
    await get(f"/api/v1/accounts/{me['id']}/follow", "Relationship", tb, method="POST")
    await get("/api/v1/follow_requests", "Account", ta, many=True)
    asked = await get("/api/v1/notifications", "Notification", ta, many=True,
                      params={"types[]": "follow_request"})
    assert asked, "no follow_request notification"
    await get(f"/api/v1/follow_requests/{bob['id']}/authorize", "Relationship", ta,
              method="POST")
    await get("/api/v1/accounts/update_credentials", "CredentialAccount", ta,
              method="PATCH", data={"locked": "false"})
    await get(f"/api/v1/accounts/{me['id']}/follow", "Relationship", td, method="POST")
    # Alice follows bob, asking to be told of his posts.
    await get(f"/api/v1/accounts/{bob['id']}/follow", "Relationship", ta, method="POST",
              json={"notify": True})

    # A post with an image, hashtags and a mention into the cooperative (redistributed).
    media = await _upload(a, ta, audit, "Affiche de la grève")
    post = await get("/api/v1/statuses", "Status", ta, method="POST", data={
        "status": "@c1 Grève jeudi #greve #syndicat @bob", "media_ids[]": media["id"]})
    assert post["language"] == "fr"  # the default posting language, as Mastodon
    loose = await _upload(a, ta, audit, "Pas encore publiée")
    await get(f"/api/v1/media/{loose['id']}", "MediaAttachment", ta)
    # A reply by bob, a favourite, a personal post (status notification), a poll.
    await get("/api/v1/statuses", "Status", tb, method="POST",
              data={"status": "D'accord !", "in_reply_to_id": post["id"]})
    await get(f"/api/v1/statuses/{post['id']}/favourite", "Status", tb, method="POST")
    await get("/api/v1/statuses", "Status", tb, method="POST",
              data={"status": "Tract du jour #greve"})
    poll_st = await get("/api/v1/statuses", "Status", ta, method="POST", json={
        "status": "Quelle date ?", "poll": {"options": ["lundi", "mardi"],
                                            "expires_in": 3600}})
    pid = poll_st["poll"]["id"]
    await get(f"/api/v1/polls/{pid}/votes", "Poll", tb, method="POST", data={"choices[]": "1"})

    async def close(ctx: Context, s: AsyncSession) -> None:
        await s.execute(update(Poll).values(closes_at=utcnow() - timedelta(seconds=1)))
        await close_due_polls(ctx, s)

    await a.run(close)

    # A remote cooperative and a remote member: resolved, followed, their post comes in.
    fed = await get("/api/v2/search", "Search", ta,
                    params={"q": f"@fed@{b.domain}", "resolve": "true"})
    assert fed["accounts"], fed
    fed_id = fed["accounts"][0]["id"]
    await get(f"/api/v1/accounts/{fed_id}/follow", "Relationship", ta, method="POST")

    async def following_fed() -> bool:
        _, rel, _ = await call(a, "GET", "/api/v1/accounts/relationships", ta,
                               params={"id[]": fed_id})
        return bool(rel[0]["following"])

    await eventually(following_fed, what="following the remote cooperative")
    # A filter that warns on carol's word (a FilterResult in `filtered`, once applied).
    await get("/api/v2/filters", "Filter", ta, method="POST", data={
        "title": "Salutations", "context[]": "home", "filter_action": "warn",
        "keywords_attributes[][keyword]": "Salut"})

    async def carol_posts(ctx: Context, s: AsyncSession) -> None:
        carol = await user_actor(s, "carol")
        await publish_news(ctx, s, carol, "fed", f"Salut @alice@{a.domain} #greve")

    await b.run(carol_posts)

    async def remote_in_home() -> dict[str, Any] | None:
        _, feed, _ = await call(a, "GET", "/api/v1/timelines/home", ta)
        return next((x for x in feed if x["reblog"] and x["account"]["id"] == fed_id), None)

    boost = await eventually(remote_in_home, what="the remote cooperative's boost")
    assert boost is not None
    # The filter warns on carol's post: a FilterResult on the boost and on the post.
    flagged = boost["reblog"]["filtered"]
    assert [f["filter"]["title"] for f in flagged] == ["Salutations"], flagged
    assert flagged[0]["keyword_matches"] == ["Salut"] and boost["filtered"] == flagged
    carol_id = boost["reblog"]["account"]["id"]

    # A list and a marker.
    lst = await get("/api/v1/lists", "List", ta, method="POST", data={"title": "Syndicat"})
    status, _, _ = await call(a, "POST", f"/api/v1/lists/{lst['id']}/accounts", ta,
                              data={"account_ids[]": bob["id"]})
    assert status == 200
    status, _, _ = await call(a, "POST", "/api/v1/markers", ta,
                              data={"home[last_read_id]": post["id"]})
    assert status == 200

    await _read_everything(audit, ta, me, bob, c1, fed_id, carol_id, post, pid, lst)
    # Discrepancies the audit found once, checked by value: profile fields, the date of the
    # latest status (a cooperative's: its latest redistribution).
    alice = await get(f"/api/v1/accounts/{me['id']}", "Account", ta)
    assert alice["fields"] == [{"name": "Mandat", "value": "Déléguée syndicale",
                                "verified_at": None}]
    assert alice["last_status_at"] == utcnow().strftime("%Y-%m-%d")
    c1 = await get(f"/api/v1/accounts/{c1['id']}", "Account", ta)
    assert c1["last_status_at"] == utcnow().strftime("%Y-%m-%d")
    creds = await get("/api/v1/accounts/verify_credentials", "CredentialAccount", ta)
    assert creds["source"]["fields"] == [{"name": "Mandat", "value": "Déléguée syndicale",
                                          "verified_at": None}]
    assert len(audit.seen) >= 20, audit.seen
    assert not audit.problems, "\n".join(_distinct(audit.problems))


async def _read_everything(
    audit: Audit, ta: str, me: dict[str, Any], bob: dict[str, Any], c1: dict[str, Any],
    fed_id: str, carol_id: str, post: dict[str, Any], pid: str, lst: dict[str, Any],
) -> None:
    get = audit.get
    a = audit.inst
    for aid in (me["id"], bob["id"], c1["id"], fed_id, carol_id):
        await get(f"/api/v1/accounts/{aid}", "Account", ta)
        await get(f"/api/v1/accounts/{aid}/statuses", "Status", ta, many=True)
        await get(f"/api/v1/accounts/{aid}/followers", "Account", ta, many=True)
        await get(f"/api/v1/accounts/{aid}/following", "Account", ta, many=True)
    await get("/api/v1/accounts/relationships", "Relationship", ta, many=True, params=[
        ("id[]", x) for x in (bob["id"], c1["id"], fed_id, carol_id)])
    await get("/api/v1/accounts/search", "Account", ta, many=True, params={"q": "c"})
    await get(f"/api/v1/statuses/{post['id']}", "Status", ta)
    await get(f"/api/v1/statuses/{post['id']}", "Status", None)
    await get(f"/api/v1/statuses/{post['id']}/context", "Context", ta)
    await get(f"/api/v1/statuses/{post['id']}/favourited_by", "Account", ta, many=True)
    await get(f"/api/v1/statuses/{post['id']}/reblogged_by", "Account", ta, many=True)
    await get(f"/api/v1/polls/{pid}", "Poll", ta)
    home = await get("/api/v1/timelines/home", "Status", ta, many=True)
    assert any(s["reblog"] and s["reblog"]["media_attachments"] for s in home), home
    await get("/api/v1/timelines/public", "Status", ta, many=True)
    await get("/api/v1/timelines/public", "Status", None, many=True)
    await get("/api/v1/timelines/tag/greve", "Status", ta, many=True)
    await get(f"/api/v1/timelines/list/{lst['id']}", "Status", ta, many=True)
    notes = await get("/api/v1/notifications", "Notification", ta, many=True)
    kinds = {n["type"] for n in notes}
    assert {"follow", "favourite", "reblog", "mention", "poll",
            "status"} <= kinds, kinds
    await get(f"/api/v1/notifications/{notes[0]['id']}", "Notification", ta)
    await get("/api/v2/notifications", "GroupedNotificationsResults", ta)
    await get("/api/v2/notifications", "GroupedNotificationsResults", ta,
              params={"expand_accounts": "partial_avatars"})
    await get("/api/v1/lists", "List", ta, many=True)
    await get(f"/api/v1/lists/{lst['id']}", "List", ta)
    await get(f"/api/v1/lists/{lst['id']}/accounts", "Account", ta, many=True)
    status, markers, _ = await call(a, "GET", "/api/v1/markers", ta,
                                    params=[("timeline[]", "home"),
                                            ("timeline[]", "notifications")])
    assert status == 200 and "home" in markers
    for name, m in markers.items():
        audit.problems += check("Marker", m, f"markers.{name}")
    filters = await get("/api/v2/filters", "Filter", ta, many=True)
    await get(f"/api/v2/filters/{filters[0]['id']}", "Filter", ta)
    await get(f"/api/v2/filters/{filters[0]['id']}/keywords", "FilterKeyword", ta, many=True)
    await get("/api/v1/filters", "FilterV1", ta, many=True)
    found = await get("/api/v2/search", "Search", ta, params={"q": "greve"})
    history = found["hashtags"][0]["history"]
    assert len(history) == 7 and int(history[0]["uses"]) >= 2, history
    assert int(history[0]["accounts"]) >= 2 and int(history[0]["day"]) % 86400 == 0
    await get("/api/v2/search", "Search", ta, params={"q": "bob"})
    await get("/api/v1/instance", "InstanceV1", None)
    v2 = await get("/api/v2/instance", "InstanceV2", None)
    limit = v2["configuration"]["media_attachments"]["image_size_limit"]
    assert limit == a.ctx.settings.media_max_bytes
    await get("/api/v1/preferences", "Preferences", ta)
    await get("/api/v1/follow_requests", "Account", ta, many=True)
    await get("/api/v1/custom_emojis", "CustomEmoji", None, many=True)
    app = await get("/api/v1/apps", "Application", None, method="POST", json={
        "client_name": "audit", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
        "scopes": "read"})
    tok = await get("/oauth/token", "Token", None, method="POST", data={
        "grant_type": "client_credentials", "client_id": app["client_id"],
        "client_secret": app["client_secret"], "scope": "read"})
    mine = await get("/api/v1/apps/verify_credentials", "Application", tok["access_token"])
    assert mine["name"] == "audit" and "client_secret" not in mine
    users_app = await get("/api/v1/apps/verify_credentials", "Application", ta)
    assert users_app["name"] == "tests"
    status, err, _ = await call(a, "GET", "/api/v1/apps/verify_credentials")
    assert status == 401 and "error" in err
