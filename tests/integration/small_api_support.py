"""Tokens for the tests of lists, markers, filters and preferences, minted in the database
(no password hash to compute: fast). The OAuth flows themselves are tested elsewhere."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.db.models import User
from t3r1_fed.db.models_api import OAuthApp, OAuthToken
from t3r1_fed.oauth.auth import digest, new_secret
from tests.testrig import Instance


async def quick_token(inst: Instance, username: str, scopes: str = "read write") -> str:
    raw = new_secret()

    async def go(ctx: Context, s: AsyncSession) -> None:
        uid = (await s.execute(select(User.id).where(User.username == username))).scalar_one()
        app = OAuthApp(client_id=new_secret()[:32], client_secret_hash=digest(new_secret()),
                       name="tests", redirect_uris="urn:ietf:wg:oauth:2.0:oob", scopes=scopes)
        s.add(app)
        await s.flush()
        s.add(OAuthToken(token_hash=digest(raw), app_id=app.id, user_id=uid, scopes=scopes))

    await inst.run(go)
    return raw
