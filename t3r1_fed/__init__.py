"""t3r1-fed: a federated ActivityPub server for trade unions."""

__version__ = "0.1.0"
