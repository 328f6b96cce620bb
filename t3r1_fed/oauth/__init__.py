"""OAuth2 for Mastodon clients: apps, authorization codes (PKCE), tokens, scopes."""
