"""Helpers for the interop tests: keep third-party packages offline and out of the tree.

bovine (and fediverse-pasture, built on it) have side effects we must tame:

* importing ``bovine.jsonld`` opens ``bovine_jsonld_cache.sqlite`` in the current directory,
  and fediverse-pasture's ``DataProvider`` reads and writes ``data.toml`` there: both are
  done from a throw-away directory (:func:`in_temporary_directory`);
* their JSON-LD processing (pyld) downloads any context it does not know
  (``https://w3id.org/security/v1``, ``https://www.w3.org/ns/did/v1``, …). These tests
  reach loopback addresses only, so :func:`install_offline_jsonld` installs a document
  loader that serves bovine's built-in contexts and the official context files bundled in
  ``contexts/`` (see its README), and refuses anything else instead of leaving the machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

CONTEXTS = Path(__file__).with_name("contexts")
OFFLINE_CONTEXTS = {
    "https://w3id.org/security/v1": "security-v1.jsonld",
    "https://www.w3.org/ns/did/v1": "did-v1.jsonld",
    "https://w3id.org/security/multikey/v1": "multikey-v1.jsonld",
}
# Contexts bovine answers from its own source, without any network access.
_BOVINE_BUILTIN = ("about:bovine", "https://www.w3.org/ns/activitystreams")

# Every context URL the peers asked for, in order (handy in failure messages).
requested_contexts: list[str] = []
refused_contexts: list[str] = []


@contextlib.contextmanager
def in_temporary_directory() -> Iterator[Path]:
    """Run a block with a throw-away current directory (for libraries that write to cwd)."""
    old = Path.cwd()
    tmp = Path(tempfile.mkdtemp(prefix="t3r1-interop-"))
    os.chdir(tmp)
    try:
        yield tmp
    finally:
        os.chdir(old)
        shutil.rmtree(tmp, ignore_errors=True)


def install_offline_jsonld() -> bool:
    """Import bovine's JSON-LD layer cleanly and make it offline. False if bovine is absent."""
    try:
        with in_temporary_directory():
            import bovine.jsonld as bovine_jsonld
            from bovine.jsonld.cache import JsonLDCache

            bovine_jsonld.jsonld_cache.connection.close()
            bovine_jsonld.jsonld_cache = JsonLDCache(":memory:")
    except ImportError:  # the test modules skip, with the reason
        return False
    from pyld import jsonld

    def offline_loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
        requested_contexts.append(url)
        if url in OFFLINE_CONTEXTS:
            doc = json.loads((CONTEXTS / OFFLINE_CONTEXTS[url]).read_text("utf-8"))
            return {"contentType": "application/ld+json", "contextUrl": None,
                    "documentUrl": url, "document": doc}
        if url in _BOVINE_BUILTIN or url.startswith("http://joinmastodon.org/ns"):
            return dict(bovine_jsonld.wrapper(url, options or {}))
        refused_contexts.append(url)
        raise jsonld.JsonLdError(
            f"interop tests are offline: no bundled JSON-LD context for {url}",
            "jsonld.LoadDocumentError", {"url": url}, code="loading document failed")

    jsonld.set_document_loader(offline_loader)
    return True


def require(module: str, requirement: str) -> ModuleType:
    """Import a third-party peer, or skip with the pip requirement that brings it.

    In CI (``CI=true``, or ``T3R1_REQUIRE_INTEROP=1``) a missing peer is an error, never a
    skip: CI installs the test extras, so a skip there would hide a broken install.
    """
    required = os.environ.get("CI", "").lower() == "true" or (
        os.environ.get("T3R1_REQUIRE_INTEROP") == "1")
    try:
        return __import__(module, fromlist=["_"])
    except ModuleNotFoundError as e:
        reason = f"{module} is not installed (pip install '{requirement}'): {e}"
        if required:
            pytest.fail(f"interop peer missing in CI: {reason}", pytrace=False)
        pytest.skip(reason, allow_module_level=True)
