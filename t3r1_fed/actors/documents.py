"""ActivityPub documents of our local actors (pure: rows in, JSON out)."""

from __future__ import annotations

from typing import Any

from t3r1_fed.db.models import Actor, Coop
from t3r1_fed.uris import Uris
from t3r1_fed.vocab.context import AS_CONTEXT

# Collections a cooperative publishes besides the core ones, registered by the features
# that serve them (name → path below the group's id). Listed at the top level and under
# `endpoints`, where Mobilizon and Smithereen parsers look.
GROUP_COLLECTIONS: dict[str, str] = {}


def register_group_collection(name: str, path: str | None = None) -> None:
    GROUP_COLLECTIONS[name] = path or name


def _iso(actor: Actor) -> str:
    return actor.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")


def actor_document(actor: Actor, uris: Uris, coop: Coop | None = None) -> dict[str, Any]:
    """The JSON served at the actor's id (Person, Group or Application)."""
    uri = actor.uri
    doc: dict[str, Any] = {
        "@context": AS_CONTEXT,
        "id": uri,
        "type": actor.type,
        "preferredUsername": actor.username,
        "name": actor.name or actor.username,
        "summary": actor.summary or "",
        "url": actor.url or uri,
        "inbox": actor.inbox,
        "outbox": actor.outbox,
        "followers": actor.followers_url,
        "following": actor.following_url,
        "endpoints": {"sharedInbox": uris.shared_inbox},
        "manuallyApprovesFollowers": actor.manually_approves_followers,
        "discoverable": actor.discoverable,
        "indexable": actor.discoverable,
        "published": _iso(actor),
        "publicKey": {
            "id": actor.key_id,
            "owner": uri,
            "publicKeyPem": actor.public_key_pem,
        },
    }
    if actor.icon_url:
        doc["icon"] = {"type": "Image", "url": actor.icon_url}
    if actor.type == "Group" and coop is not None:
        moderators = uris.sub(uri, "moderators")
        doc.update(
            {
                "featured": actor.featured_url,
                # Lemmy reads the moderators from attributedTo; we also publish the term.
                "attributedTo": moderators,
                "moderators": moderators,
                "postingRestrictedToMods": coop.posting_restricted_to_mods,
                "openness": coop.openness,
            }
        )
        for name, path in GROUP_COLLECTIONS.items():
            doc[name] = doc["endpoints"][name] = uris.sub(uri, path)
    if actor.type == "Application":
        # FEP-d556/2677 instance actor: never followed by users, fetchable unsigned.
        doc["manuallyApprovesFollowers"] = True
        doc["discoverable"] = False
        doc["indexable"] = False
    return doc
