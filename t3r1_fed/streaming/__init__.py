"""Mastodon's streaming API (WebSocket, and server-sent events over HTTP): events emitted
from the ORM (events.py), carried across processes (bus.py: LISTEN/NOTIFY on PostgreSQL),
routed (facts.py) and rendered per connection (connection.py); endpoints in handlers.py
(WebSocket, health) and sse.py (`/api/v1/streaming/user` …)."""
