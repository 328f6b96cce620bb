"""Request parameters as Rails (Rack) reads them, for Mastodon client API endpoints.

Mastodon apps send the same parameters three ways: a query string, a form
(`application/x-www-form-urlencoded` or multipart) with Rails-style nested keys
(`context[]=home`, `home[last_read_id]=5`, `keywords_attributes[][keyword]=grève`,
`keywords_attributes[0][keyword]=…`), or a JSON object. `read_params` merges the query
string and the body (the body wins) into one nested structure of dicts, lists and strings
(JSON scalars stay as they are), with Rack's rules for `[]` and `[][key]`.

The casts follow ActiveModel: `as_bool` ("0", "f", "false", "off" … are false, "" is
unset), `as_list` (a list, or a hash keyed by index as `accepts_nested_attributes_for`
accepts). Malformed input raises a JSON 400, never a 500.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import orjson
from aiohttp import web

from t3r1_fed.httputil import read_limited
from t3r1_fed.oauth.auth import json_exc

MAX_BODY = 1024 * 1024
MAX_PARAMS = 1000
MAX_DEPTH = 16
_FIRST = re.compile(r"\A[\[\]]*([^\[\]]+)\]*")
_ARRAY_CHILD = re.compile(r"\A\[\]\[([^\[\]]+)\]\Z")
_ARRAY_REST = re.compile(r"\A\[\](.+)\Z")
_FALSE = frozenset({"0", "f", "F", "false", "FALSE", "False", "off", "OFF", "Off"})


class ParamError(ValueError):
    """Parameters whose shapes contradict each other (`a=1&a[b]=2`)."""


def _has_key(target: dict[str, Any], key: str) -> bool:
    """Rack's params_hash_has_key?: is `key` (maybe `a][b`) already set in `target`?"""
    if "[]" in key:
        return False
    node: Any = target
    for part in re.split(r"[\[\]]+", key):
        if part == "":
            continue
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _normalize(params: dict[str, Any], name: str, value: str, depth: int) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        raise ParamError("parameters nested too deeply")
    m = _FIRST.match(name)
    key = m.group(1) if m else ""
    after = name[m.end():] if m else ""
    if not key:
        return params
    if after == "":
        params[key] = value
    elif after == "[":
        params[name] = value
    elif after == "[]":
        items = params.setdefault(key, [])
        if not isinstance(items, list):
            raise ParamError(f"expected a list for {key}")
        items.append(value)
    elif (child := _ARRAY_CHILD.match(after) or _ARRAY_REST.match(after)) is not None:
        child_key = child.group(1)
        items = params.setdefault(key, [])
        if not isinstance(items, list):
            raise ParamError(f"expected a list for {key}")
        last = items[-1] if items else None
        if isinstance(last, dict) and not _has_key(last, child_key):
            _normalize(last, child_key, value, depth + 1)
        else:
            items.append(_normalize({}, child_key, value, depth + 1))
    else:
        sub = params.setdefault(key, {})
        if not isinstance(sub, dict):
            raise ParamError(f"expected a hash for {key}")
        _normalize(sub, after, value, depth + 1)
    return params


def parse_nested(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Rails-style nested parameters from (name, value) pairs, in order."""
    out: dict[str, Any] = {}
    for n, (name, value) in enumerate(pairs):
        if n >= MAX_PARAMS:
            raise ParamError("too many parameters")
        _normalize(out, name, value, 0)
    return out


def _bad(message: str) -> web.HTTPException:
    return json_exc(web.HTTPBadRequest, message)


async def read_params(request: web.Request) -> dict[str, Any]:
    """Query string and body (form, multipart or JSON object) as one nested dict."""
    try:
        params = parse_nested(request.query.items())
        if request.method in {"GET", "HEAD", "OPTIONS"} or not request.body_exists:
            return params
        if request.content_type == "application/json":
            raw = await read_limited(request, MAX_BODY)
            if raw is None:
                raise json_exc(web.HTTPRequestEntityTooLarge, "Request body too large")
            if not raw.strip():
                return params
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise _bad("Error occurred while parsing request parameters") from None
            if not isinstance(body, dict):
                raise _bad("Error occurred while parsing request parameters")
            params.update(body)
            return params
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise json_exc(web.HTTPRequestEntityTooLarge, "Request body too large")
        form = await request.post()
        params.update(parse_nested((k, v) for k, v in form.items() if isinstance(v, str)))
        return params
    except ParamError as e:
        raise _bad(f"Invalid parameters: {e}") from None


def as_str(value: Any, *, field: str) -> str | None:
    """A scalar parameter as text (JSON numbers accepted, as Rails casts them)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise json_exc(web.HTTPBadRequest, f"{field} must be a string")


def as_bool(value: Any, *, field: str) -> bool | None:
    """ActiveModel's boolean cast: None and "" are unset; "0", "f", "false", "off" false."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        if value.strip() == "":
            return None
        return value not in _FALSE
    raise json_exc(web.HTTPBadRequest, f"{field} must be a boolean")


def as_list(value: Any, *, field: str) -> list[Any]:
    """A list parameter: a list, a hash keyed by index (values in order), or one scalar."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, str | int | float | bool):
        return [value]
    raise json_exc(web.HTTPBadRequest, f"{field} must be a list")


def as_int(value: Any, *, field: str) -> int | None:
    """An integer parameter; None and "" are unset; anything else not an integer → 422."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise json_exc(web.HTTPUnprocessableEntity, f"Validation failed: {field} is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d{1,18}\s*", value):
        return int(value)
    raise json_exc(web.HTTPUnprocessableEntity, f"Validation failed: {field} is not a number")
