"""Interop tests run third-party packages offline and without writing into the tree."""

from tests.interop._support import install_offline_jsonld

install_offline_jsonld()
