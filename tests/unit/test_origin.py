"""inbox/origin.py: who may claim what (INTEROP §7 items 3, 4 and 11).

Hosts are compared normalised: case, trailing dot, IDNA and default ports do not make two
hosts differ, and nothing else makes them equal.
"""

from __future__ import annotations

from typing import Any

import pytest

from t3r1_fed.inbox.origin import OriginError, check_origins
from t3r1_fed.vocab.normalize import parse_activity

ORG = "https://example.org"


def act(type_: str, *, actor: str = f"{ORG}/users/a", id_: str = f"{ORG}/activities/1",
        obj: Any = None) -> Any:
    doc: dict[str, Any] = {"id": id_, "type": type_, "actor": actor}
    if obj is not None:
        doc["object"] = obj
    return parse_activity(doc)


def note(id_: str = f"{ORG}/notes/1", attributed: Any = f"{ORG}/users/a") -> dict[str, Any]:
    return {"id": id_, "type": "Note", "attributedTo": attributed, "content": "<p>hi</p>"}


# ---- host normalisation -----------------------------------------------------------------------

SAME_HOST = [
    # (actor, activity id, object id) that all name one host
    ("https://EXAMPLE.org./users/a", f"{ORG}/activities/1", "https://Example.ORG/notes/1"),
    (f"{ORG}/users/a", "https://example.org./activities/1", "https://EXAMPLE.ORG./notes/1"),
    (f"{ORG}:443/users/a", f"{ORG}/activities/1", f"{ORG}:443/notes/1"),
    ("http://example.org:80/users/a", "http://example.org/activities/1", "http://EXAMPLE.org/n"),
    ("https://example.org:8443/users/a", "https://EXAMPLE.org.:8443/a/1",
     "https://example.org:8443/n/1"),
    # IDN: the Unicode and the Punycode (A-label) forms are one host, in any case
    ("https://bücher.example/users/a", "https://xn--bcher-kva.example/activities/1",
     "https://BÜCHER.example/notes/1"),
    ("https://xn--bcher-kva.example/users/a", "https://bücher.example./a/1",
     "https://XN--BCHER-KVA.example/n/1"),
    ("https://[2001:DB8::1]/users/a", "https://[2001:db8:0:0::1]:443/a/1",
     "https://[2001:db8::1]/n/1"),
]


@pytest.mark.parametrize(("actor", "id_", "oid"), SAME_HOST)
@pytest.mark.parametrize("kind", ["Create", "Update", "Delete"])
def test_normalised_hosts_match(kind: str, actor: str, id_: str, oid: str) -> None:
    obj: Any = oid if kind == "Delete" else note(oid, attributed=actor)
    check_origins(act(kind, actor=actor, id_=id_, obj=obj))


OTHER_HOST = [
    # (actor host, another host that must not pass for it)
    (ORG, "https://evil.example"),
    (ORG, "https://sub.example.org"),  # a subdomain is another host
    (ORG, "https://example.org.evil.example"),
    (ORG, "https://example.org:8443"),  # so is another port
    ("https://example.org:8443", "https://example.org:8444"),
    ("https://bücher.example", "https://bucher.example"),  # ü is not u
    (ORG, "https://еxample.org"),  # Cyrillic е: xn--xample-2of.org
    ("http://127.0.0.1:8080", "http://127.0.0.1:8081"),
]


@pytest.mark.parametrize(("mine", "other"), OTHER_HOST)
def test_other_hosts_do_not_match(mine: str, other: str) -> None:
    actor = f"{mine}/users/a"
    with pytest.raises(OriginError, match="activity id"):
        check_origins(act("Like", actor=actor, id_=f"{other}/activities/1", obj=f"{mine}/n"))
    for kind in ("Create", "Update"):
        with pytest.raises(OriginError, match="object id"):
            check_origins(act(kind, actor=actor, id_=f"{mine}/a/1",
                              obj=note(f"{other}/notes/1", attributed=actor)))
    with pytest.raises(OriginError, match="object id"):
        check_origins(act("Delete", actor=actor, id_=f"{mine}/a/1", obj=f"{other}/notes/1"))


@pytest.mark.parametrize("bad", [
    "https://example.org@evil.example/users/a",  # userinfo: which host is it?
    "https://exa_mple.org/users/a",  # not a host name
    "https://0x7f.0.0.1/users/a",  # a legacy IPv4 form
])
def test_unusable_hosts_are_refused(bad: str) -> None:
    with pytest.raises(OriginError, match="not an http"):
        check_origins(act("Follow", actor=bad, id_=f"{ORG}/activities/1", obj=f"{ORG}/u/b"))
    with pytest.raises(OriginError, match="not an http"):
        check_origins(act("Follow", id_=bad.replace("users/a", "activities/1"), obj=f"{ORG}/u"))


# ---- per activity type ------------------------------------------------------------------------


def test_create_update_delete_of_own_objects_pass() -> None:
    check_origins(act("Create", obj=note()))
    check_origins(act("Update", obj=note()))
    check_origins(act("Create", obj=f"{ORG}/notes/1"))  # by reference
    check_origins(act("Delete", obj=f"{ORG}/notes/1"))
    check_origins(act("Delete", obj={"id": f"{ORG}/notes/1", "type": "Tombstone"}))
    check_origins(act("Delete", obj=f"{ORG}/users/a"))  # an account deleting itself
    check_origins(act("Update", obj={"id": f"{ORG}/users/a", "type": "Person"}))


@pytest.mark.parametrize("attributed", [
    "https://evil.example/users/x",
    {"id": "https://evil.example/users/x", "type": "Person"},
    [f"{ORG}/users/a", "https://evil.example/users/x"],  # every author must be local to it
])
@pytest.mark.parametrize("kind", ["Create", "Update"])
def test_attributed_to_on_another_host(kind: str, attributed: Any) -> None:
    with pytest.raises(OriginError, match="attributedTo"):
        check_origins(act(kind, obj=note(attributed=attributed)))


@pytest.mark.parametrize("kind", ["Create", "Update", "Delete"])
def test_content_activity_without_object(kind: str) -> None:
    with pytest.raises(OriginError, match="no object id"):
        check_origins(act(kind))


def test_undo_rules() -> None:
    check_origins(act("Undo", obj={"id": f"{ORG}/follows/1", "type": "Follow",
                                   "actor": f"{ORG}/users/a", "object": "https://b.example/u"}))
    with pytest.raises(OriginError, match="another actor"):
        check_origins(act("Undo", obj={"id": f"{ORG}/likes/1", "type": "Like",
                                       "actor": f"{ORG}/users/someone-else"}))
    with pytest.raises(OriginError, match="not on the actor's host"):
        check_origins(act("Undo", obj={"id": "https://evil.example/likes/1", "type": "Like",
                                       "actor": f"{ORG}/users/a"}))
    # The undone activity's host is compared normalised as well.
    check_origins(act("Undo", obj={"id": "https://EXAMPLE.org./likes/1", "type": "Like"}))


@pytest.mark.parametrize("kind", ["Follow", "Like", "Announce", "Accept", "Reject", "Flag"])
def test_activities_about_other_hosts_objects_pass(kind: str) -> None:
    """Following, liking or boosting someone else's thing, or answering our Follow (whose id
    is on our host), is normal: only the activity itself must be the actor's."""
    check_origins(act(kind, obj="https://elsewhere.example/things/1"))
    check_origins(act(kind, obj={"id": "https://elsewhere.example/follows/1", "type": "Follow",
                                 "actor": "https://elsewhere.example/users/b"}))
