"""Votes arriving over federation: Mastodon's `Create{Note{name, inReplyTo: question}}`.

inbox/content.py's Create handler asks `take_vote` first: a Note with a `name`, no
content, replying to one of our Questions — or to a private cooperative's group-authored
copy of one (coops/private.py), which counts on the original — is a vote, counted here
and never stored or redistributed as a post. Refused votes (closed poll, second choice on
a single-choice poll, unknown option, a voter who may not read the poll) are recorded as
ignored.
"""

from __future__ import annotations

from t3r1_fed.coops.access import can_read
from t3r1_fed.coops.polls import PollError, close_if_due, record_votes, results_changed
from t3r1_fed.coops.posting import coop_for_actor
from t3r1_fed.coops.private import COPY_KIND
from t3r1_fed.db.models import Actor, Object
from t3r1_fed.inbox.dispatch import Ignored, Inbound
from t3r1_fed.inbox.objects import stored_object
from t3r1_fed.inbox.social import remote_actor
from t3r1_fed.vocab.normalize import RemoteObject


def looks_like_vote(obj: RemoteObject) -> bool:
    return (
        obj.type == "Note"
        and bool(obj.name)
        and bool(obj.in_reply_to)
        and not obj.content_html.strip()
    )


async def poll_of_copy(inb: Inbound, copy: Object) -> Object | None:
    """The local poll whose group-authored copy is `copy` (its `url` is the original)."""
    if copy.type != "Question" or not copy.url:
        return None
    original = await stored_object(inb.session, copy.url)
    if original is None or original.group_id != copy.author_id:
        return None
    return original


async def take_vote(inb: Inbound, obj: RemoteObject) -> str | None:
    """Count `obj` if it is a vote on one of our polls; None if it is not a vote."""
    if not looks_like_vote(obj) or not inb.ctx.uris.is_local(obj.in_reply_to or ""):
        return None
    question = await stored_object(inb.session, obj.in_reply_to or "")
    if question is not None and question.kind == COPY_KIND and question.local:
        # A vote on a private cooperative's copy of a poll (a Mastodon member votes on
        # what they see): counted on the original; the copy's Update brings the counts.
        question = await poll_of_copy(inb, question)
    if question is None or question.type != "Question" or not question.local:
        return None
    if obj.attributed_to != inb.act.actor:
        raise Ignored("vote attributed to someone other than the actor")
    voter = await remote_actor(inb)
    if question.group_id is not None:
        group = await inb.session.get(Actor, question.group_id)
        if group is not None and not await can_read(
            inb.session, group, await coop_for_actor(inb.session, group.id), voter.uri
        ):
            raise Ignored("vote by an actor who may not see the poll")
    try:
        await close_if_due(inb.ctx, inb.session, question)
        counted = await record_votes(inb.session, question, voter, [(obj.name or "", obj.id)])
    except PollError as e:
        raise Ignored(f"vote refused: {e}") from e
    if not counted:
        return "vote repeated"
    await results_changed(inb.ctx, inb.session, question)
    return "vote counted"
