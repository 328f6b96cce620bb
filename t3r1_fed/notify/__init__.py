"""Mentions and notifications, derived centrally from what every flush writes (events.py)."""
