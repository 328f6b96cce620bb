"""The ActivityStreams layer against real documents from 14 fediverse servers, and hostile input.

The samples live outside the repository (`../shared/samples`, present in CI beside the
checkout); the sample tests skip when it is absent. The hostile-input tests use our own
small fixtures.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from t3r1_fed.vocab.context import (
    AS2_CONTENT_TYPE,
    AS_CONTEXT,
    AS_PUBLIC,
    LD_CONTENT_TYPE,
    is_as2_content_type,
    is_public,
)
from t3r1_fed.vocab.normalize import (
    ACTOR_TYPES,
    MAX_NAME_CHARS,
    MAX_POLL_OPTIONS,
    MAX_SUMMARY_CHARS,
    MAX_USERNAME_CHARS,
    Attachment,
    InvalidObject,
    Tag,
    as_list,
    content_html,
    first_id,
    http_url,
    id_of,
    ids_of,
    parse_activity,
    parse_actor,
    parse_object,
    str_field,
    types_of,
)

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"
SAMPLE_FILES = sorted(SAMPLES.rglob("*.json")) if SAMPLES.is_dir() else []

ACTIVITY_TYPES = {
    "Create", "Update", "Delete", "Follow", "Accept", "Reject", "Undo", "Like", "Dislike",
    "Announce", "Add", "Remove", "Block", "Flag", "Lock", "Resolve", "Warn", "Move",
    "Join", "Leave", "Invite",
}  # fmt: skip
COLLECTION_TYPES = {"Collection", "OrderedCollection", "CollectionPage", "OrderedCollectionPage"}
CONTENT_TYPES = {"Note", "Page", "Article", "Question", "Event", "Video", "ChatMessage"}

# Samples that legitimately fail, and the reason they must fail with.
EXPECTED_FAILURES = {
    # GNU social signs its groups with another actor's key (owner …/actor/2 on the group
    # …/actor/21): key owner binding (INTEROP §7.5) must refuse it.
    "gnusocial/objects/group.json": "publicKey is not owned by the actor",
}


def _check(doc: Mapping[str, Any], depth: int = 0) -> None:
    """Parse a document by its type, recursing into embedded activities and items."""
    assert depth < 5
    types = types_of(doc)
    if types & ACTOR_TYPES:
        parse_actor(doc)
    elif types & COLLECTION_TYPES:
        for item in as_list(doc.get("orderedItems")) + as_list(doc.get("items")):
            if isinstance(item, dict):
                _check(item, depth + 1)
    elif types & ACTIVITY_TYPES:
        activity = parse_activity(doc)
        if isinstance(activity.object, dict):
            if types_of(activity.object) & (CONTENT_TYPES | ACTIVITY_TYPES | ACTOR_TYPES):
                _check(activity.object, depth + 1)
            else:  # Tombstone, stubs: at least an id
                assert activity.object_id is not None
    else:
        assert types, "every sample has a type"
        parse_object(doc)


def _sample_params() -> list[Any]:
    if not SAMPLE_FILES:
        reason = f"fediverse samples not found at {SAMPLES} (../shared/samples beside the repo)"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason))]
    return [pytest.param(p, id=p.relative_to(SAMPLES).as_posix()) for p in SAMPLE_FILES]


@pytest.mark.parametrize("path", _sample_params())
def test_sample_parses(path: Path) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    expected = EXPECTED_FAILURES.get(path.relative_to(SAMPLES).as_posix())
    if expected is None:
        _check(doc)
    else:
        with pytest.raises(InvalidObject, match=expected):
            _check(doc)


def _sample(name: str) -> dict[str, Any]:
    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"sample {name} not found under {SAMPLES}")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


# --- specific values from real servers -------------------------------------------------


def test_mastodon_person() -> None:
    actor = parse_actor(_sample("mastodon/objects/person.json"))
    base = "https://masto.qa.urbanwildlife.biz/users/mastodon"
    assert (actor.type, actor.preferred_username, actor.name) == ("Person", "mastodon", "Mastodon")
    assert actor.key_id == base + "#main-key"
    assert actor.key_owner == actor.id == base
    assert actor.public_key_pem is not None and "BEGIN PUBLIC KEY" in actor.public_key_pem
    assert actor.shared_inbox == "https://masto.qa.urbanwildlife.biz/inbox"
    assert actor.featured == base + "/collections/featured"
    assert actor.icon_url is not None and actor.icon_url.endswith("2cf61ff96e94cb1d.png")
    assert actor.summary_html is None and actor.discoverable is False
    assert actor.published is not None and actor.published.year == 2022


def test_lemmy_group() -> None:
    group = parse_actor(_sample("lemmy/objects/group.json"))
    assert group.type == "Group" and group.preferred_username == "tenforward"
    assert group.moderators == "https://enterprise.lemmy.ml/c/tenforward/moderators"
    assert group.posting_restricted_to_mods is False
    assert group.summary_html is not None and group.summary_html.startswith("<p>Lounge")
    assert "<hr" not in group.summary_html


def test_wordpress_group_fields_and_moderators() -> None:
    group = parse_actor(_sample("wordpress/objects/group.json"))
    assert group.moderators == "https://dbzer0.com/wp-json/activitypub/1.0/collections/moderators"
    assert [name for name, _ in group.fields] == ["Blog"]  # the Link attachment is no field
    assert 'rel="nofollow noopener noreferrer"' in group.fields[0][1]
    assert "https://dbzer0.com" in group.also_known_as
    assert group.indexable is True and group.posting_restricted_to_mods is True


def test_mobilizon_group_collections() -> None:
    group = parse_actor(_sample("mobilizon/objects/group.json"))
    assert group.members == "https://mobilizon.fr/@contribateliers/members"
    assert group.openness == "open"


def test_peertube_channel_icon_is_the_largest() -> None:
    group = parse_actor(_sample("peertube/objects/group.json"))
    assert group.icon_url is not None and group.icon_url.endswith("be648a3a370a.jpg")
    assert group.moderators is None  # attributedTo is the owner account, not a collection


def test_discourse_top_level_shared_inbox() -> None:
    actor = parse_actor(_sample("discourse/objects/person.json"))
    assert actor.shared_inbox == "https://socialhub.activitypub.rocks/ap/users/inbox"


def test_mastodon_note_mention_and_visibility() -> None:
    doc = _sample("mastodon/objects/note_1.json")
    note = parse_object(doc, followers_url="https://mastodon.madrid/users/felix/followers")
    assert note.tags == [
        Tag("Mention", "@retiolus@mamot.fr", "https://mamot.fr/users/retiolus"),
    ]
    assert note.visibility == "unlisted" and note.is_public
    assert note.language == "en"
    assert note.in_reply_to == "https://mamot.fr/users/retiolus/statuses/107224244380204526"
    assert 'class="u-url mention"' in note.content_html
    assert note.summary is None and note.sensitive is False


def test_mastodon_note_with_image() -> None:
    note = parse_object(_sample("mastodon/objects/note_2.json"))
    assert note.visibility == "public"
    assert note.attachments == [
        Attachment(
            url="https://cdn.masto.host/floss/media_attachments/files/113/306/826/682/985/891/original/c8d906a2f2ab2334.jpg",
            media_type="image/jpeg",
            name="The KDE dragons Katie and Konqi stand on either side of a pot filling up "
            "with gold coins. Donate!",
            type="Document",
            width=1500,
            height=1095,
            blurhash="USQv:h-W-qI-^,W;RPs=^-R%NZxbo#sDobSc",
        )
    ]
    assert "target=" not in note.content_html


def test_mastodon_direct_message() -> None:
    doc = _sample("mastodon/activities/private_message.json")
    assert parse_object(doc).visibility == "direct"
    followers = "https://mastodon.world/users/nutomic/followers"
    assert parse_object(doc, followers_url=followers).visibility == "direct"


def test_lemmy_page() -> None:
    page = parse_object(_sample("lemmy/objects/page.json"))
    assert page.type == "Page" and page.name == "Post title"
    assert page.attributed_to == "https://enterprise.lemmy.ml/u/picard"
    assert page.audience == ["https://enterprise.lemmy.ml/c/tenforward"]
    assert page.context == "https://enterprise.lemmy.ml/post/55143/context"
    assert page.language == "fr" and page.visibility == "public"
    assert page.content_html == "<p>This is a post in the /c/tenforward community</p>"
    assert [a.url for a in page.attachments] == [
        "https://enterprise.lemmy.ml/pictrs/image/eOtYb9iEiB.png"
    ]


def test_peertube_video_attachments() -> None:
    video = parse_object(_sample("peertube/objects/video.json"))
    assert video.url == "https://tilvids.com/videos/watch/e7946124-7b72-4ad7-9d22-844a84bb2de1"
    assert video.attributed_to == "https://tilvids.com/accounts/thelinuxexperiment"
    assert [(a.type, a.media_type, a.width, a.height) for a in video.attachments] == [
        ("Video", "video/mp4", 1920, 1080),
        ("Video", "video/mp4", 640, 360),
        ("Video", "video/mp4", 256, 144),
    ]
    assert all(a.url.endswith("-fragmented.mp4") for a in video.attachments)
    assert video.language == "en"
    assert "<a href=" in video.content_html  # Markdown description: escaped and linkified


def test_mobilizon_event() -> None:
    event = parse_object(_sample("mobilizon/objects/event.json"))
    assert event.name == "Caledonian scottish dance class" and event.language == "en"
    assert event.attributed_to == "https://rendezvous.nomagic.uk/@devon_caledonian_society"
    assert [t.name for t in event.tags] == ["#Dance", "#Caledonian", "#Lesson"]


def test_lemmy_announce_of_create() -> None:
    announce = parse_activity(_sample("lemmy/activities/community/announce_create_page.json"))
    assert (announce.type, announce.object_type) == ("Announce", "Create")
    assert announce.actor == "http://enterprise.lemmy.ml/c/main"
    assert isinstance(announce.object, dict)
    create = parse_activity(announce.object)
    assert isinstance(create.object, dict) and create.object_type == "Page"
    page = parse_object(create.object)
    assert page.name == "post 4"


def test_peertube_announce_by_id_and_mastodon_flag() -> None:
    announce = parse_activity(_sample("peertube/activities/announce_video.json"))
    assert announce.object == announce.object_id and announce.object_type is None
    flag = parse_activity(_sample("mastodon/activities/flag.json"))
    assert len(flag.object_ids) == 3 and flag.object_id == "https://example.com/users/1"
    assert flag.to == ["https://example.com/users/1"]


def test_lemmy_add_mod_target() -> None:
    add = parse_activity(_sample("lemmy/activities/community/add_mod.json"))
    assert add.target == "http://enterprise.lemmy.ml/c/main/moderators"
    assert add.to == [AS_PUBLIC]


# --- hostile input -------------------------------------------------------------------------

ACTOR_ID = "https://a.example/users/alice"
PEM = "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n"


def _actor(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": ACTOR_ID,
        "type": "Person",
        "preferredUsername": "alice",
        "inbox": ACTOR_ID + "/inbox",
        "publicKey": {"id": ACTOR_ID + "#main-key", "owner": ACTOR_ID, "publicKeyPem": PEM},
    }
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not None}


def _note(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": "https://a.example/notes/1",
        "type": "Note",
        "attributedTo": ACTOR_ID,
        "content": "<p>hello</p>",
        "to": [AS_PUBLIC],
    }
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not None}


def test_valid_minimal_actor() -> None:
    actor = parse_actor(_actor())
    assert (actor.key_id, actor.public_key_pem, actor.key_owner) == (
        ACTOR_ID + "#main-key",
        PEM,
        ACTOR_ID,
    )


def _key(key_id: str, owner: Any, pem: Any = PEM) -> dict[str, Any]:
    return {"id": key_id, "owner": owner, "publicKeyPem": pem}


BOB = "https://a.example/users/bob"


@pytest.mark.parametrize(
    "key",
    [
        _key(ACTOR_ID + "#main-key", "https://a.example/users/mallory"),
        _key(ACTOR_ID + "#main-key", None),
        _key("https://evil.example/key", ACTOR_ID),  # the key lives on another host
        _key(ACTOR_ID + "#main-key", ACTOR_ID, pem=42),
        _key(ACTOR_ID + "#main-key", ACTOR_ID, pem="not a PEM"),
        [_key(BOB + "#k", BOB)],
    ],
)
def test_public_key_owner_binding(key: Any) -> None:
    with pytest.raises(InvalidObject, match="publicKey"):
        parse_actor(_actor(publicKey=key))


def test_public_key_list_picks_the_actors_own_key() -> None:
    keys = [_key(BOB + "#k", BOB), "junk", _key(ACTOR_ID + "#k2", {"id": ACTOR_ID})]
    assert parse_actor(_actor(publicKey=keys)).key_id == ACTOR_ID + "#k2"


def test_actor_without_key_parses_without_key() -> None:
    actor = parse_actor(_actor(publicKey=None))
    assert actor.key_id is None and actor.public_key_pem is None and actor.key_owner is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"id": None}, "id"),
        ({"id": "javascript:alert(1)"}, "id"),
        ({"id": {"id": ACTOR_ID}}, "id"),  # an actor's own id must be a string
        ({"type": "Note"}, "actor type"),
        ({"type": None}, "type"),
        ({"inbox": None}, "inbox"),
        ({"inbox": "javascript:alert(1)"}, "inbox"),
        ({"inbox": "ftp://a.example/inbox"}, "inbox"),
        ({"preferredUsername": None}, "preferredUsername"),
        ({"preferredUsername": ["alice"]}, "preferredUsername"),
        ({"preferredUsername": "a" * (MAX_USERNAME_CHARS + 1)}, "too long"),
    ],
)
def test_actor_rejections(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidObject, match=message):
        parse_actor(_actor(**changes))


def test_actor_rejects_non_mapping() -> None:
    with pytest.raises(InvalidObject):
        parse_actor(["not", "an", "object"])  # type: ignore[arg-type]


def test_list_typed_actor() -> None:
    assert parse_actor(_actor(type=["Service", "Organization"])).type == "Service"
    assert parse_actor(_actor(type=["x:Custom", "Group"])).type == "Group"


def test_javascript_urls_are_dropped() -> None:
    actor = parse_actor(
        _actor(
            url="javascript:alert(1)",
            icon={"type": "Image", "url": "javascript:alert(1)"},
            image="data:image/png;base64,AAAA",
            outbox="javascript:alert(1)",
            endpoints={"sharedInbox": "vbscript:x"},
            alsoKnownAs=["javascript:alert(1)", "https://b.example/users/alice"],
        )
    )
    assert (actor.url, actor.icon_url, actor.image_url, actor.outbox) == (None, None, None, None)
    assert actor.shared_inbox is None
    assert actor.also_known_as == ["https://b.example/users/alice"]
    note = parse_object(
        _note(
            url="javascript:alert(1)",
            attachment=[
                {"type": "Document", "url": "javascript:alert(1)"},
                {"type": "Image", "url": "https://a.example/i.png", "width": True},
            ],
            content='<a href="javascript:alert(1)">click</a>',
        )
    )
    assert note.url is None and note.content_html == "click"
    assert [(a.url, a.width) for a in note.attachments] == [("https://a.example/i.png", None)]


def test_huge_strings_are_truncated() -> None:
    actor = parse_actor(_actor(summary="<p>" + "x" * 50_000 + "</p>", name="n" * 10_000))
    assert actor.summary_html is not None
    assert len(actor.summary_html) <= MAX_SUMMARY_CHARS + len("</p>")
    assert actor.name == "n" * MAX_NAME_CHARS
    note = parse_object(_note(summary="w" * 100_000, content="c" * 1_000_000))
    assert note.summary is not None and len(note.summary) <= 5000
    assert len(note.content_html) <= 100_000


def test_field_count_is_capped() -> None:
    fields = [{"type": "PropertyValue", "name": f"f{i}", "value": "v"} for i in range(100)]
    assert len(parse_actor(_actor(attachment=fields)).fields) == 50


def test_list_typed_object_and_attributed_to_list() -> None:
    note = parse_object(
        _note(
            type=["Note", "x:Extension"],
            attributedTo=[
                {"type": "Person", "id": "https://a.example/users/bob"},
                "https://a.example/groups/g",
            ],
        )
    )
    assert note.type == "Note"
    assert note.attributed_to == "https://a.example/users/bob"


def test_content_map_only() -> None:
    note = parse_object(_note(content=None, contentMap={"fr": "<p>bonjour</p>"}))
    assert (note.content_html, note.language) == ("<p>bonjour</p>", "fr")
    assert content_html({"content": "<p>a</p>", "contentMap": {"de": "x", "en": "<p>a</p>"}}) == (
        "<p>a</p>",
        "en",
    )
    assert content_html({"content": "a", "contentMap": {"de": "x", "en": "y"}}) == ("a", None)
    assert content_html({"contentMap": {"not a language!": "x"}}) == ("x", None)
    assert content_html({"content": 5, "source": {"content": "md"}}) == (None, None)


def test_content_is_sanitised() -> None:
    note = parse_object(_note(content="<p onclick=x>hi<script>alert(1)</script></p>"))
    assert note.content_html == "<p>hi</p>"


def test_markdown_content_is_escaped() -> None:
    note = parse_object(_note(content="<b>not html</b>", mediaType="text/markdown"))
    assert note.content_html == "<p>&lt;b&gt;not html&lt;/b&gt;</p>"


@pytest.mark.parametrize(
    ("to", "cc", "tags", "followers", "expected"),
    [
        ([AS_PUBLIC], [], [], None, "public"),
        (["as:Public"], [], [], None, "public"),
        (["https://a.example/f"], ["Public"], [], None, "unlisted"),
        (["https://a.example/f"], [], [], "https://a.example/f", "private"),
        (["https://a.example/f"], [], [], None, "private"),
        (["https://b.example/bob"], [], ["https://b.example/bob"], None, "direct"),
        (["https://b.example/bob"], [], ["https://b.example/bob"], "https://a.example/f", "direct"),
        (["https://b.example/g/followers"], [], [], "https://a.example/f", "direct"),
    ],
)
def test_visibility(
    to: list[str], cc: list[str], tags: list[str], followers: str | None, expected: str
) -> None:
    mentions = [{"type": "Mention", "href": h, "name": "@x"} for h in tags]
    note = parse_object(_note(to=to, cc=cc, tag=mentions), followers_url=followers)
    assert note.visibility == expected
    assert note.is_public == (expected in ("public", "unlisted"))
    assert "as:Public" not in note.to and "Public" not in note.cc


def test_object_rejections() -> None:
    for changes in ({"id": None}, {"id": "urn:uuid:1"}, {"type": None}, {"type": [1, 2]}):
        with pytest.raises(InvalidObject):
            parse_object(_note(**changes))


def test_junk_values_are_ignored() -> None:
    note = parse_object(
        _note(
            published="yesterday",
            updated=12,
            sensitive="true",
            inReplyTo={"type": "Note"},
            context={"x": 1},
            tag=[None, "x", {"type": "Mention"}, {"type": "Hashtag", "name": "#ok"}, {"type": "E"}],
            attachment="https://a.example/file.png",
        )
    )
    assert (note.published, note.updated, note.sensitive) == (None, None, False)
    assert (note.in_reply_to, note.context) == (None, None)
    assert note.tags == [Tag("Hashtag", "#ok", None)]
    assert [(a.type, a.url) for a in note.attachments] == [("Link", "https://a.example/file.png")]


def test_question_poll() -> None:
    options = [{"type": "Note", "name": f"o{i}", "replies": {"totalItems": i}} for i in range(3)]
    poll = parse_object(_note(type="Question", anyOf=options, endTime="2030-01-01T00:00:00Z")).poll
    assert poll is not None and poll.multiple
    assert [(o.name, o.votes) for o in poll.options] == [("o0", 0), ("o1", 1), ("o2", 2)]
    assert poll.end_time is not None and poll.end_time.year == 2030
    too_many = [{"type": "Note", "name": str(i)} for i in range(MAX_POLL_OPTIONS + 1)]
    with pytest.raises(InvalidObject, match="poll options"):
        parse_object(_note(type="Question", oneOf=too_many))


def test_activity() -> None:
    activity = parse_activity(
        {
            "id": "https://a.example/activities/1",
            "type": ["Create"],
            "actor": {"type": "Person", "id": ACTOR_ID},
            "object": _note(),
            "to": "as:Public",
            "published": "2024-01-01T00:00:00",
        }
    )
    assert (activity.type, activity.actor, activity.object_type) == ("Create", ACTOR_ID, "Note")
    assert activity.object_id == "https://a.example/notes/1" and activity.to == [AS_PUBLIC]
    assert activity.published is not None and activity.published.tzinfo is not None
    for missing in ("id", "type", "actor"):
        doc = {"id": "https://a.example/a/2", "type": "Like", "actor": ACTOR_ID, "object": "x"}
        del doc[missing]
        with pytest.raises(InvalidObject):
            parse_activity(doc)


def test_shape_helpers() -> None:
    link = {"type": "Link", "href": "https://a.example/l"}
    assert as_list(None) == [] and as_list("a") == ["a"] and as_list([1]) == [1]
    assert id_of("https://a.example/x") == "https://a.example/x"
    assert id_of({"id": "https://a.example/o"}) == "https://a.example/o"
    assert id_of(link) == "https://a.example/l"
    assert id_of({"href": "https://a.example/l"}) is None  # href only counts on Links
    assert id_of(42) is None and id_of("has space") is None and id_of("x" * 5000) is None
    assert ids_of(["https://a.example/1", link, "https://a.example/1", None]) == [
        "https://a.example/1",
        "https://a.example/l",
    ]
    assert first_id([None, {"x": 1}, link]) == "https://a.example/l"
    assert types_of({"type": ["A", 3, "B"]}) == {"A", "B"} and types_of("Note") == set()
    assert str_field({"k": "abcdef"}, "k", 3) == "abc"
    assert str_field({"k": 3}, "k", 3) is None and str_field("x", "k", 3) is None
    assert http_url("https://a.example:8443/x") == "https://a.example:8443/x"
    for bad in ("https://a.example:port/x", "https:///x", "mailto:a@b.example", "as:Public"):
        assert http_url(bad) is None


# --- context -------------------------------------------------------------------------------


def test_context_document() -> None:
    assert AS_CONTEXT[:2] == [
        "https://www.w3.org/ns/activitystreams",
        "https://w3id.org/security/v1",
    ]
    terms = AS_CONTEXT[2]
    assert terms["toot"] == "http://joinmastodon.org/ns#"
    assert terms["featured"] == {"@id": "toot:featured", "@type": "@id"}
    assert terms["moderators"] == {"@id": "lemmy:moderators", "@type": "@id"}
    assert terms["members"] == {"@id": "mz:members", "@type": "@id"}
    assert terms["t3r1"] == "https://t3r1.fr/ns#"
    assert terms["faq"] == {"@id": "t3r1:faq", "@type": "@id"}
    json.dumps(AS_CONTEXT)  # serialisable as is


def test_is_public() -> None:
    assert all(is_public(x) for x in (AS_PUBLIC, "as:Public", "Public"))
    assert not any(is_public(x) for x in ("https://a.example/followers", None, "public", 3))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (AS2_CONTENT_TYPE, True),
        (LD_CONTENT_TYPE, True),
        ("application/ld+json", True),
        ("Application/Activity+JSON; charset=utf-8", True),
        ('application/ld+json; profile="https://example.com/other"', True),
        ("application/json", False),
        ("text/html; charset=utf-8", False),
        ("image/png", False),
        ("", False),
        (None, False),
    ],
)
def test_is_as2_content_type(value: str | None, expected: bool) -> None:
    assert is_as2_content_type(value) is expected
