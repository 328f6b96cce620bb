"""One Settings object for the whole process.

Sources, later ones winning:
1. defaults;
2. ``<data_dir>/instance.toml`` written by ``t3r1 init`` (domain and scheme);
3. an optional TOML file named by ``T3R1_CONFIG`` (same keys as the env vars, lowercase, no prefix);
4. environment variables ``T3R1_*``.

Nothing here is mutable after construction: tests build as many Settings as they need and
start one application per Settings object.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from t3r1_fed import __version__

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

INSTANCE_FILE = "instance.toml"


class ConfigError(ValueError):
    """A setting has a value we cannot use; the message names it."""


def _parse_bool(name: str, value: str) -> bool:
    v = value.strip().lower()
    if v in {"1", "true", "yes", "on"}:
        return True
    if v in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"{name}: expected a boolean, got {value!r}")


def _parse_networks(name: str, value: str | list[str]) -> tuple[IPNetwork, ...]:
    items = value if isinstance(value, list) else value.split(",")
    nets: list[IPNetwork] = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError as e:
            raise ConfigError(f"{name}: {item!r} is not a CIDR network") from e
    return tuple(nets)


@dataclass(frozen=True)
class Settings:
    domain: str = "localhost"
    scheme: str = "https"
    data_dir: Path = Path("data")
    database_url: str = ""
    # Networks the SSRF guard lets through (tests: 127.0.0.0/8). Empty in production.
    allow_private_networks: tuple[IPNetwork, ...] = ()
    worker_concurrency: int = 16
    # How long a claimed queue row stays leased to a worker before another may take it.
    lease_seconds: float = 120.0
    # Seconds between polls of the queues when nothing woke the worker up.
    poll_interval: float = 1.0
    instance_name: str = "t3r1-fed"
    instance_description: str = "Instance syndicale fédérée"
    contact_email: str = ""
    max_inbox_body: int = 1_048_576
    # Serve an in-process worker with `t3r1 serve` (disable to scale out with `t3r1 worker`).
    inline_worker: bool = True
    log_level: str = "INFO"
    # Give up redelivering an activity after this many seconds (Mastodon: ~2–3 days).
    delivery_give_up_after: float = 3 * 24 * 3600.0
    # Multiplies every retry delay and circuit-breaker period (tests use e.g. 0.01).
    backoff_scale: float = 1.0
    # After this long failing without a single success, a host is marked unavailable.
    host_unavailable_after: float = 7 * 24 * 3600.0
    # Uploads: size cap in bytes, and pixel cap of images (decoded only below it).
    media_max_bytes: int = 20 * 1024 * 1024
    media_max_pixels: int = 40_000_000
    # Storage quotas (media/quota.py): a member's stored uploads in all, and a cooperative's
    # files; 0 means unlimited.
    media_quota_bytes: int = 1024 * 1024 * 1024
    coop_media_quota_bytes: int = 0
    # Seconds between periodic maintenance passes of the worker (closing due polls …).
    maintenance_interval: float = 30.0
    # At most one Update{Question} with a poll's counts per this many seconds (Mastodon
    # waits ~3 minutes); the counts left over are sent by the maintenance pass.
    poll_update_interval: float = 180.0
    # OAuth password grant (username + password posted by the client): scripts and tests only.
    oauth_password_grant: bool = False
    # Client API rate limits (api/ratelimit.py), fixed windows counted in each process:
    # requests per period per token (a user: 5× that over all their tokens) or, without a
    # token, per client IP; media uploads and status deletions per user. 0 disables a limit.
    api_rate_limit: int = 300
    api_rate_period: float = 300.0
    api_media_rate_limit: int = 30
    api_media_rate_period: float = 1800.0
    api_delete_rate_limit: int = 30
    api_delete_rate_period: float = 1800.0
    # Reverse proxies whose X-Forwarded-For names the client (for the per-IP limit).
    trusted_proxies: tuple[IPNetwork, ...] = (
        ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128"),
    )
    extra: Mapping[str, Any] = field(default_factory=dict)

    # ---- derived -------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.domain}"

    @property
    def hostname(self) -> str:
        """The domain without its port (WebFinger `acct:` uses the full domain)."""
        host = self.domain
        if host.startswith("["):
            return host.split("]")[0] + "]"
        return host.rsplit(":", 1)[0] if host.count(":") == 1 else host

    @property
    def allow_http(self) -> bool:
        """Plain-http federation only in development/test setups that chose http explicitly."""
        return self.scheme == "http"

    @property
    def user_agent(self) -> str:
        return f"t3r1-fed/{__version__} (+{self.base_url}/)"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 't3r1.sqlite3').resolve()}"

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    # ---- loading -------------------------------------------------------------------------
    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {}
        data_dir = Path(overrides.get("data_dir") or env.get("T3R1_DATA_DIR") or "data")
        inst = data_dir / INSTANCE_FILE
        if inst.is_file():
            values.update(_read_toml(inst))
        cfg = env.get("T3R1_CONFIG")
        if cfg:
            values.update(_read_toml(Path(cfg)))
        for key, raw in env.items():
            if key.startswith("T3R1_") and key not in {"T3R1_CONFIG", "T3R1_DATA_DIR"}:
                values[key[5:].lower()] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["data_dir"] = data_dir
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in values.items():
            if key not in known:
                extra[key] = value
                continue
            kwargs[key] = _coerce(key, value)
        s = cls(**kwargs, extra=extra)
        s.validate()
        return s

    def validate(self) -> None:
        if self.scheme not in {"http", "https"}:
            raise ConfigError(f"T3R1_SCHEME must be http or https, not {self.scheme!r}")
        if not self.domain or "/" in self.domain or " " in self.domain:
            raise ConfigError(
                f"T3R1_DOMAIN must be a host name (with optional port): {self.domain!r}"
            )
        if self.worker_concurrency < 1:
            raise ConfigError("T3R1_WORKER_CONCURRENCY must be at least 1")
        if self.maintenance_interval <= 0:
            raise ConfigError("T3R1_MAINTENANCE_INTERVAL must be positive")
        if self.media_quota_bytes < 0 or self.coop_media_quota_bytes < 0:
            raise ConfigError("T3R1_MEDIA_QUOTA_BYTES and T3R1_COOP_MEDIA_QUOTA_BYTES must not "
                              "be negative (0: unlimited)")
        if self.poll_update_interval < 0:
            raise ConfigError("T3R1_POLL_UPDATE_INTERVAL must not be negative")
        for name in ("api_rate", "api_media_rate", "api_delete_rate"):
            if getattr(self, f"{name}_limit") < 0 or getattr(self, f"{name}_period") <= 0:
                raise ConfigError(f"T3R1_{name.upper()}_LIMIT must not be negative and "
                                  f"T3R1_{name.upper()}_PERIOD must be positive")


def _coerce(key: str, value: Any) -> Any:
    name = "T3R1_" + key.upper()
    if key == "data_dir":
        return Path(value)
    if key in {"allow_private_networks", "trusted_proxies"}:
        return _parse_networks(name, value) if not isinstance(value, tuple) else value
    if key in {"worker_concurrency", "max_inbox_body", "media_max_bytes", "media_max_pixels",
               "api_rate_limit", "api_media_rate_limit", "api_delete_rate_limit",
               "media_quota_bytes", "coop_media_quota_bytes"}:
        try:
            return int(value)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{name}: expected an integer, got {value!r}") from e
    if key in {
        "lease_seconds",
        "poll_interval",
        "delivery_give_up_after",
        "backoff_scale",
        "host_unavailable_after",
        "maintenance_interval",
        "poll_update_interval",
        "api_rate_period",
        "api_media_rate_period",
        "api_delete_rate_period",
    }:
        try:
            return float(value)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{name}: expected a number, got {value!r}") from e
    if key in {"inline_worker", "oauth_password_grant"}:
        return value if isinstance(value, bool) else _parse_bool(name, str(value))
    if key in {"domain"}:
        return str(value).strip().lower().rstrip(".")
    if key == "scheme":
        return str(value).strip().lower()
    return value


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return dict(tomllib.load(f))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from e


def write_instance_file(data_dir: Path, domain: str, scheme: str) -> None:
    """Persist what `t3r1 init` was told, so later commands need no flags."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / INSTANCE_FILE).write_text(
        f"# Written by `t3r1 init`. Environment variables T3R1_* override it.\n"
        f'domain = "{domain}"\nscheme = "{scheme}"\n',
        encoding="utf-8",
    )
