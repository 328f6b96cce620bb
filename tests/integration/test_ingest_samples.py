"""Real-world activities (../shared/samples/*/activities) through the inbox worker.

The samples' signatures and hosts are not ours, so each is written straight into a real
instance's `inbox_items` table, past the HTTP checks, and the worker's `drain` processes it.
Every item must end `done` or `ignored` with its result recorded: never `failed`, never an
exception escaping the worker.

The samples' hosts (lemmy.ml, mastodon.madrid …) must never be reached from a test: the
instance's HTTP client resolves every name to 192.0.2.1 (TEST-NET-1), which the SSRF guard
refuses, so each fetch fails fast and the same way with or without network access.
"""

from __future__ import annotations

import itertools
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.abc import AbstractResolver, ResolveResult
from sqlalchemy import func, select

from t3r1_fed.db.models import Actor, Delivery, Follow, InboxItem, Object, Share, utcnow
from t3r1_fed.federation.http_client import SafeHttpClient
from t3r1_fed.federation.resolver import store_actor
from t3r1_fed.inbox.worker import drain
from t3r1_fed.vocab.normalize import InvalidObject, parse_activity, parse_actor
from tests.conftest import StartInstance
from tests.peer import test_keypair as keypair
from tests.testrig import Instance

pytestmark = pytest.mark.federation

SETTLED = {"done", "ignored"}


@pytest.fixture(autouse=True)
def _pooled_local_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """RSA-2048 generation costs about half a second: local actors use pooled test keys."""
    keypair(3)
    n = itertools.count()
    monkeypatch.setattr("t3r1_fed.actors.local.generate_rsa_keypair",
                        lambda: keypair(2 + next(n) % 2))


class RefusingResolver(AbstractResolver):
    """Answers every name with TEST-NET-1, which the SSRF guard refuses; records the names."""

    def __init__(self) -> None:
        self.names: list[str] = []

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        self.names.append(host)
        return [{"hostname": host, "host": "192.0.2.1", "port": port,
                 "family": socket.AF_INET, "proto": 0, "flags": socket.AI_NUMERICHOST}]

    async def close(self) -> None:
        return None


async def offline_instance(instances: StartInstance) -> tuple[Instance, RefusingResolver]:
    """A real instance with no inline worker (the test drains) and no way out."""
    inst = await instances("127.0.0.2", inline_worker=False, allow_private_networks="")
    resolver = RefusingResolver()
    old, inst.ctx.http = inst.ctx.http, SafeHttpClient(
        allow_http=True, user_agent=inst.settings.user_agent, resolver=resolver,
        connect_timeout=2.0, total_timeout=5.0)
    await inst.ctx.http.start()
    await old.close()
    return inst, resolver


def activity_samples(samples: Path) -> list[Path]:
    files = sorted(p for p in samples.rglob("*.json")
                   if "activities" in p.relative_to(samples).parts)
    assert files, f"no activity samples under {samples}"
    return files


def load(samples: Path, rel: str) -> dict[str, Any]:
    doc = json.loads((samples / rel).read_text())
    assert isinstance(doc, dict)
    return doc


async def enqueue(inst: Instance, docs: list[tuple[str, dict[str, Any]]],
                  recipient: str | None = None) -> dict[str, int]:
    """Write activities into inbox_items as the inbox would have; {label: item id}."""
    ids: dict[str, int] = {}
    async with inst.session() as s, s.begin():
        seen: set[str] = set()
        for label, doc in docs:
            act = parse_activity(doc)
            uri = act.id
            # Two samples reuse an activity id: the dedupe key must stay unique.
            while uri in seen:
                uri += "#again"
            seen.add(uri)
            item = InboxItem(activity_uri=uri, actor_uri=act.actor, recipient=recipient,
                             body=json.dumps(doc), state="pending", next_attempt_at=utcnow())
            s.add(item)
            await s.flush()
            ids[label] = item.id
    return ids


async def outcome(inst: Instance, item_id: int) -> tuple[str, str]:
    async with inst.session() as s:
        row = (await s.execute(select(InboxItem).where(InboxItem.id == item_id))).scalar_one()
    return row.state, row.result or ""


async def ingest(inst: Instance, doc: dict[str, Any], recipient: str | None = None
                 ) -> tuple[str, str]:
    item_id = (await enqueue(inst, [("one", doc)], recipient))["one"]
    await drain(inst.ctx)
    return await outcome(inst, item_id)


async def remember_actor(inst: Instance, uri: str, type_: str = "Person") -> None:
    """A remote actor already in our cache (as if fetched earlier), without a fetch."""
    doc = {"id": uri, "type": type_, "preferredUsername": uri.rstrip("/").rsplit("/", 1)[-1],
           "inbox": f"{uri}/inbox", "followers": f"{uri}/followers"}
    await inst.run(lambda ctx, s: store_actor(s, parse_actor(doc), doc))


async def actor_id(inst: Instance, uri: str) -> int:
    async with inst.session() as s:
        return (await s.execute(select(Actor.id).where(Actor.uri == uri))).scalar_one()


async def count(inst: Instance, model: Any) -> int:
    async with inst.session() as s:
        return (await s.execute(select(func.count()).select_from(model))).scalar_one()


# ---- every sample -----------------------------------------------------------------------------


async def test_every_sample_activity_settles(instances: StartInstance, samples_dir: Path) -> None:
    inst, resolver = await offline_instance(instances)
    await inst.create_user("alice")
    await inst.create_coop("syndicat", "alice")

    queued: list[tuple[str, dict[str, Any]]] = []
    unparseable: list[tuple[str, bytes]] = []
    for path in activity_samples(samples_dir):
        rel = str(path.relative_to(samples_dir))
        doc = json.loads(path.read_text())
        try:
            parse_activity(doc)
        except InvalidObject:
            unparseable.append((rel, path.read_bytes()))
            continue
        queued.append((rel, doc))

    ids = await enqueue(inst, queued)
    await drain(inst.ctx)  # raises if anything escapes or the queue does not settle

    outcomes = {rel: await outcome(inst, item) for rel, item in ids.items()}
    table = "\n".join(f"  {state:8} {rel}: {result}" for rel, (state, result) in outcomes.items())
    bad = {rel: o for rel, o in outcomes.items() if o[0] not in SETTLED or not o[1]}
    assert not bad, f"samples that did not settle:\n{table}"
    assert resolver.names, "no fetch was even attempted"
    print(f"\n{len(outcomes)} samples:\n{table}")

    # The inbox refuses what the worker could not parse: such items never reach the queue.
    async with ClientSession() as s:
        for rel, body in unparseable:
            async with s.post(f"{inst.base}/inbox", data=body,
                              headers={"Content-Type": "application/activity+json"}) as resp:
                assert resp.status == 400, rel


# ---- a few samples, with the instance set up so that they matter -----------------------------


async def test_mastodon_follow_of_local_coop_by_unreachable_actor(
        instances: StartInstance, samples_dir: Path) -> None:
    inst, resolver = await offline_instance(instances)
    await inst.create_user("alice")
    coop = await inst.create_coop("syndicat", "alice")
    follow = load(samples_dir, "mastodon/activities/follow.json")
    follow["object"] = coop

    state, result = await ingest(inst, follow)
    assert state == "ignored"
    assert result.startswith("actor unavailable"), result
    assert "masto.asonix.dog" in result and "masto.asonix.dog" in resolver.names
    assert await count(inst, Follow) == 0
    assert await count(inst, Delivery) == 0  # no Accept to an actor we could not fetch


async def test_mastodon_follow_then_undo_by_known_actor(
        instances: StartInstance, samples_dir: Path) -> None:
    inst, resolver = await offline_instance(instances)
    await inst.create_user("alice")
    coop = await inst.create_coop("syndicat", "alice")
    follow = load(samples_dir, "mastodon/activities/follow.json")
    follower = follow["actor"]
    await remember_actor(inst, follower)
    follow["object"] = coop

    assert await ingest(inst, follow) == ("done", "follow accepted")
    async with inst.session() as s:
        row = (await s.execute(select(Follow))).scalar_one()
        accept = (await s.execute(select(Delivery))).scalar_one()
    assert row.uri == follow["id"] and row.state == "accepted"
    assert row.follower_id == await actor_id(inst, follower)
    assert accept.inbox == f"{follower}/inbox"  # queued, not sent: no worker here

    undo = load(samples_dir, "mastodon/activities/undo_follow.json")
    undo["object"]["object"] = coop
    assert await ingest(inst, undo) == ("done", "unfollowed")
    assert await count(inst, Follow) == 0
    assert resolver.names == []  # the cached actor was enough


async def test_lemmy_announce_from_unreachable_community(
        instances: StartInstance, samples_dir: Path) -> None:
    inst, _ = await offline_instance(instances)
    announce = load(samples_dir, "lemmy/activities/community/announce_create_page.json")
    state, result = await ingest(inst, announce)
    assert state == "ignored"
    assert result.startswith("actor unavailable: fetch http://enterprise.lemmy.ml/c/main"), result


async def test_lemmy_announce_from_followed_community(
        instances: StartInstance, samples_dir: Path) -> None:
    """FEP-1b12: the community relays a Create; the post is refetched from its origin (never
    trusted as relayed), and that origin is out of reach here."""
    inst, resolver = await offline_instance(instances)
    alice = await inst.create_user("alice")
    announce = load(samples_dir, "lemmy/activities/community/announce_create_page.json")
    group = announce["actor"]
    await remember_actor(inst, group, "Group")
    alice_id, group_id = await actor_id(inst, alice), await actor_id(inst, group)
    async with inst.session() as s, s.begin():
        s.add(Follow(uri=f"{alice}/follows/1", follower_id=alice_id, followee_id=group_id,
                     state="accepted"))

    state, result = await ingest(inst, announce)
    assert state == "ignored"
    assert result.startswith("fetch http://enterprise.lemmy.ml/post/7"), result
    assert "enterprise.lemmy.ml" in resolver.names
    assert await count(inst, Object) == 0
    assert await count(inst, Share) == 0


async def test_peertube_announce_of_an_object_id(
        instances: StartInstance, samples_dir: Path) -> None:
    inst, _ = await offline_instance(instances)
    announce = load(samples_dir, "peertube/activities/announce_video.json")
    state, result = await ingest(inst, announce)
    assert (state, result.split(":")[0]) == ("ignored", "actor unavailable")

    # Known but followed by nobody here: not our business, and nothing is fetched.
    await remember_actor(inst, announce["actor"], "Group")
    announce["id"] += "/again"
    assert await ingest(inst, announce) == (
        "ignored", "announce from an actor nobody here follows")


async def test_mastodon_delete_of_unknown_status(
        instances: StartInstance, samples_dir: Path) -> None:
    inst, resolver = await offline_instance(instances)
    delete = load(samples_dir, "mastodon/activities/delete.json")
    assert await ingest(inst, delete) == ("ignored", "delete from an unknown actor")
    await remember_actor(inst, delete["actor"])
    delete["id"] += "-again"
    assert await ingest(inst, delete) == ("ignored", "delete of an unknown object")
    assert resolver.names == []  # a Delete never fetches


async def test_lemmy_delete_user_deletes_known_actor(
        instances: StartInstance, samples_dir: Path) -> None:
    inst, _ = await offline_instance(instances)
    delete = load(samples_dir, "lemmy/activities/deletion/delete_user.json")
    await remember_actor(inst, delete["actor"])
    assert await ingest(inst, delete) == ("done", "actor deleted")
    async with inst.session() as s:
        gone = (await s.execute(select(Actor).where(Actor.uri == delete["actor"]))).scalar_one()
    assert gone.deleted_at is not None


@pytest.mark.parametrize(("rel", "expected"), [
    ("mastodon/activities/flag.json", "report about nothing in a cooperative"),
    ("lemmy/activities/community/lock_page.json", "moderation of nothing in a group"),
    ("lemmy/activities/voting/dislike_page.json", "unsupported: Dislike/-"),
    ("lemmy/activities/create_or_update/create_private_message_0.19.json",
     "unsupported object type ChatMessage"),
    ("gnusocial/activities/like_note.json",  # "another_instance": not a valid host name
     "invalid actor host"),
])
async def test_samples_we_do_not_handle_are_ignored_with_a_reason(
        instances: StartInstance, samples_dir: Path, rel: str, expected: str) -> None:
    inst, resolver = await offline_instance(instances)
    state, result = await ingest(inst, load(samples_dir, rel))
    assert state == "ignored"
    assert result.startswith(expected), result
    assert resolver.names == []
