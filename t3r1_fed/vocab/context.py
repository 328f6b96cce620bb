"""JSON-LD context, public addressing and content types of the ActivityStreams layer.

Pure constants and predicates: nothing here touches the database or the network.
"""

from __future__ import annotations

from typing import Any, Final

AS_NS: Final = "https://www.w3.org/ns/activitystreams"
SECURITY_NS: Final = "https://w3id.org/security/v1"
# Our own namespace for terms nobody else defines (FAQ collection, instance links).
T3R1_NS: Final = "https://t3r1.fr/ns#"


def _id_term(iri: str) -> dict[str, str]:
    """A term whose value is an IRI (a collection or an actor), not a string literal."""
    return {"@id": iri, "@type": "@id"}


# The extension terms we use, in one object so every document carries the same context.
# FEP-1b12 `audience` and FEP-7888 `context` are plain ActivityStreams terms: no entry needed.
_EXTENSIONS: Final[dict[str, Any]] = {
    # Mastodon (toot:) and the schema.org terms its profile fields use.
    "toot": "http://joinmastodon.org/ns#",
    "schema": "http://schema.org#",
    "discoverable": "toot:discoverable",
    "indexable": "toot:indexable",
    "featured": _id_term("toot:featured"),
    "featuredTags": _id_term("toot:featuredTags"),
    "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
    "sensitive": "as:sensitive",
    "Hashtag": "as:Hashtag",
    "PropertyValue": "schema:PropertyValue",
    "value": "schema:value",
    # Lemmy: community moderators and posting policy.
    "lemmy": "https://join-lemmy.org/ns#",
    "postingRestrictedToMods": "lemmy:postingRestrictedToMods",
    "moderators": _id_term("lemmy:moderators"),
    # Mobilizon: group collections and membership policy.
    "mz": "https://joinmobilizon.org/ns#",
    "members": _id_term("mz:members"),
    "resources": _id_term("mz:resources"),
    "events": _id_term("mz:events"),
    "discussions": _id_term("mz:discussions"),
    "openness": "mz:openness",
    "ResourceCollection": "mz:ResourceCollection",
    # Meetings (FEP-8a8e Event, Mobilizon's and schema.org's terms) and polls (Mastodon).
    "timezone": "mz:timezone",
    "joinMode": "mz:joinMode",
    "isOnline": "mz:isOnline",
    "participantCount": "mz:participantCount",
    "maximumAttendeeCapacity": "schema:maximumAttendeeCapacity",
    "remainingAttendeeCapacity": "schema:remainingAttendeeCapacity",
    "address": {"@id": "schema:address", "@type": "schema:PostalAddress"},
    "PostalAddress": "schema:PostalAddress",
    "streetAddress": "schema:streetAddress",
    "postalCode": "schema:postalCode",
    "addressLocality": "schema:addressLocality",
    "addressRegion": "schema:addressRegion",
    "addressCountry": "schema:addressCountry",
    "votersCount": "toot:votersCount",
    # t3r1-fed.
    "t3r1": T3R1_NS,
    "faq": _id_term("t3r1:faq"),
    "category": "t3r1:category",  # resources: leaflet, letter, statutes, poster, photo, other
    # What an object is in its cooperative ("document", "faq"), a collaborative document's
    # version number and who saved that version (coops/documents.py).
    "kind": "t3r1:kind",
    "version": "t3r1:version",
    "editedBy": _id_term("t3r1:editedBy"),
    # An entry's 1-based place in an ordered collection, sent with the FEP-400e `Add`.
    "position": "t3r1:position",
    "instanceRelation": "t3r1:instanceRelation",
}

# `@context` of every document we send (actors, objects, activities, collections).
AS_CONTEXT: Final[list[Any]] = [AS_NS, SECURITY_NS, _EXTENSIONS]

AS_PUBLIC: Final = "https://www.w3.org/ns/activitystreams#Public"
# Compacted forms of the public collection that real servers send (JSON-LD compaction
# against the AS context yields `as:Public`; some implementations write bare `Public`).
PUBLIC_ALIASES: Final = frozenset({AS_PUBLIC, "as:Public", "Public"})


def is_public(iri: object) -> bool:
    """True if `iri` names the public collection, in any of its accepted spellings."""
    return isinstance(iri, str) and iri in PUBLIC_ALIASES


AS2_CONTENT_TYPE: Final = "application/activity+json"
LD_CONTENT_TYPE: Final = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
_AS2_MEDIA_TYPES: Final = frozenset({"application/activity+json", "application/ld+json"})


def is_as2_content_type(header_value: str | None) -> bool:
    """True for an ActivityStreams `Content-Type`/`Accept` value.

    `application/activity+json`, or `application/ld+json` with any profile or none;
    case-insensitive, parameters ignored. Plain `application/json` and HTML are refused
    (INTEROP §7.1).
    """
    if not header_value:
        return False
    media_type = header_value.split(";", 1)[0].strip().lower()
    return media_type in _AS2_MEDIA_TYPES
