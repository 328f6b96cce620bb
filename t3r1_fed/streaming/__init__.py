"""Mastodon's streaming API (WebSocket): events emitted from the ORM (events.py), carried
across processes (bus.py: LISTEN/NOTIFY on PostgreSQL), routed (facts.py) and rendered per
connection (connection.py); endpoints in handlers.py."""
