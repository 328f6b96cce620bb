"""fediverse-pasture's "verify actor" (PyPI `fediverse-pasture`, 0.2.x) run against a cooperative.

We run pasture's own verify-actor web application (`fediverse_pasture.verify_actor.build_app`,
what `python -m fediverse_pasture.verify_actor` and verify.funfedi.dev serve) under uvicorn
on 127.0.0.7, and query it with pasture's own client (`VerifyActorRunner`) for the actor
URI of a cooperative of a real t3r1 instance on 127.0.0.2. Pasture then, for each of its
six personas (its own actors, served by the same app, with their own keys):

* GETs our cooperative (unsigned for alice/dean, signed by the persona otherwise) → `get_actor`;
* POSTs to the cooperative's inbox: an unsigned `EchoRequest` for alice/dean, a `Like`
  signed by the persona for the others → `post_inbox`. To check that signature we fetch the
  persona's key; claire and frank serve it only to a *signed* GET, which pasture verifies
  with bovine's checker after fetching our instance actor's key;
* and checks the WebFinger round trip (`acct:preferredUsername@host` → the same actor id).

"Every row true" in pasture's own terms: get_actor ✔ for all, post_inbox ✔ for the signed
personas, and for the unsigned ones (alice, dean) pasture's result page flags
`post_inbox: true` as a failure ("❌ Can post to inbox … with an unsigned request"), so
there the passing value is false. We also fetch pasture's HTML verdict and require that
it shows no warning at all.

Plain http works: pasture's `--https` flag only changes the scheme of its own actor ids
(it runs behind a TLS proxy in production), and our instance allows loopback peers in
tests (`allow_private_networks=127.0.0.0/8`). No check had to be skipped.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from aiohttp import ClientSession
from sqlalchemy import select

from t3r1_fed.db.models import Actor
from tests.conftest import StartInstance
from tests.interop._support import in_temporary_directory, require
from tests.testrig import free_socket

pytestmark = pytest.mark.interop

require("fediverse_pasture", "fediverse-pasture>=0.2.25,<0.3")
uvicorn = require("uvicorn", "fediverse-pasture>=0.2.25,<0.3")  # a dependency of pasture


def _import_verify_actor() -> Any:
    # fediverse_pasture.verify_actor calls logging.basicConfig(level=DEBUG) on import, which
    # would make every logger of the test run (SQLAlchemy, aiosqlite…) chatty: undo it.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        from fediverse_pasture import verify_actor
    finally:
        for h in list(root.handlers):
            if h not in handlers:
                root.removeHandler(h)
        root.setLevel(level)
    return verify_actor


verify_actor = _import_verify_actor()

from fediverse_pasture.runner.verify_actor import VerifyActorRunner  # noqa: E402
from fediverse_pasture.types import ApplicationAdapterForActor  # noqa: E402

# Pasture's personas (fediverse_pasture.data_provider.generate.generate_possible_actors):
# (name, signs its requests, its actor needs a signed GET, has a WebFinger name).
PERSONAS = [
    ("alice", False, False, True),
    ("bob", True, False, True),
    ("claire", True, True, True),
    ("dean", False, False, False),
    ("emily", True, False, False),
    ("frank", True, True, False),
]
# What a correct server gets: everyone reads the actor; only signed POSTs are accepted.
EXPECTED: dict[str, Any] = {
    name: {"get_actor": True, "post_inbox": signs} for name, signs, _, _ in PERSONAS
}
EXPECTED["webfinger"] = True


class PastureVerifyActor:
    """Pasture's verify-actor application, served by uvicorn on its own loopback address."""

    def __init__(self, ip: str, timeout: float = 10.0) -> None:
        self.ip = ip
        self.timeout = timeout

    async def __aenter__(self) -> PastureVerifyActor:
        sock = free_socket(self.ip)
        self.port = sock.getsockname()[1]
        self.url = f"http://{self.ip}:{self.port}/"
        with in_temporary_directory():  # its DataProvider writes data.toml into the cwd
            app = verify_actor.build_app(False, f"{self.ip}:{self.port}", False, self.timeout)
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.task = asyncio.create_task(self.server.serve(sockets=[sock]))
        for _ in range(200):
            if self.server.started or self.task.done():
                break
            await asyncio.sleep(0.025)
        if not self.server.started:
            await self.__aexit__()
            raise RuntimeError("fediverse-pasture verify_actor did not start")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(self.task, 15)


async def test_pasture_verify_actor_on_coop(instances: StartInstance) -> None:
    inst = await instances("127.0.0.2")
    await inst.create_user("alice")
    coop = await inst.create_coop("syndicat", "alice")
    async with PastureVerifyActor("127.0.0.7") as pasture, ClientSession() as session:
        result = await VerifyActorRunner(
            application=ApplicationAdapterForActor(actor_uri=coop, application_name="t3r1-fed"),
            verify_actor_url=pasture.url, session=session,
        ).run()
        async with session.get(pasture.url, params={"actor_uri": coop},
                               headers={"Accept": "text/html"}) as resp:
            assert resp.status == 200
            page = await resp.text()

    table = result["verify_actor_table"]
    log = result["messages"]
    assert table == EXPECTED, (
        f"pasture's verify_actor table:\n{json.dumps(table, indent=1)}\nlog:\n{log}")
    # Pasture's own verdict page: no "🚨 Warnings 🚨" section, no ❌ in the table.
    assert "Warnings" not in page and "❌" not in page and "Cannot" not in page, page
    assert page.count("✔️") == 2 * 6 - 2  # both columns for 4 personas, GET for alice/dean
    # The unsigned POSTs (alice, dean) were refused: pasture's `EchoRequest` has no id nor
    # actor, so we answer 400 before even looking for a signature (an unsigned well-formed
    # activity gets 401).
    steps = json.loads(log)["steps"]
    refused = [s for s in steps if isinstance(s, str) and s.endswith("for unsigned POST")]
    assert refused == ["Got 400 for unsigned POST"] * 2, log
    assert "webfinger result matches expectations" in steps
    # Every signing persona is now a known remote actor, including emily and frank, who
    # publish no preferredUsername (named after their id's last path segment).
    async with inst.session() as s:
        known = dict((await s.execute(
            select(Actor.uri, Actor.username).where(Actor.local.is_(False)))).all())
    signers = {pasture.url + name: name for name, signs, _, _ in PERSONAS if signs}
    assert {uri: known.get(uri) for uri in signers} == signers
