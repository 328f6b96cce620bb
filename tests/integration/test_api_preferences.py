"""GET /api/v1/preferences and GET /api/v1/custom_emojis against a real instance."""

from __future__ import annotations

from tests.conftest import StartInstance
from tests.integration.accounts_api_support import call, token


async def test_preferences_and_custom_emojis(instances: StartInstance) -> None:
    inst = await instances("127.0.0.2", oauth_password_grant="1")
    await inst.create_user("alice")
    tok = await token(inst, "alice", "read")
    st, prefs, _ = await call(inst, "GET", "/api/v1/preferences", tok)
    assert st == 200
    assert prefs == {
        "posting:default:visibility": "public", "posting:default:sensitive": False,
        "posting:default:language": "fr", "reading:expand:media": "default",
        "reading:expand:spoilers": False,
    }
    st, _, _ = await call(inst, "GET", "/api/v1/preferences/", await token(inst, "alice",
                                                                          "read:accounts"))
    assert st == 200
    st, body, _ = await call(inst, "GET", "/api/v1/preferences")
    assert st == 401 and "error" in body
    st, body, _ = await call(inst, "GET", "/api/v1/preferences",
                             await token(inst, "alice", "read:statuses write"))
    assert st == 403 and "error" in body

    st, emojis, _ = await call(inst, "GET", "/api/v1/custom_emojis")  # no token needed
    assert st == 200 and emojis == []
