"""Settings: sources, precedence and validation."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from t3r1_fed.config import ConfigError, Settings, write_instance_file


def test_defaults_are_https_and_sqlite_in_data_dir(tmp_path: Path) -> None:
    s = Settings.load(env={"T3R1_DATA_DIR": str(tmp_path), "T3R1_DOMAIN": "u.example"})
    assert s.scheme == "https" and s.base_url == "https://u.example"
    assert s.allow_http is False
    assert s.allow_private_networks == ()
    assert (
        s.effective_database_url == f"sqlite+aiosqlite:///{(tmp_path / 't3r1.sqlite3').resolve()}"
    )


def test_instance_file_then_env_override(tmp_path: Path) -> None:
    write_instance_file(tmp_path, "syndicat.example", "https")
    s = Settings.load(env={"T3R1_DATA_DIR": str(tmp_path)})
    assert s.domain == "syndicat.example"
    s = Settings.load(
        env={"T3R1_DATA_DIR": str(tmp_path), "T3R1_DOMAIN": "Other.Example.", "T3R1_SCHEME": "http"}
    )
    assert s.domain == "other.example" and s.base_url == "http://other.example"


def test_toml_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "t3r1.toml"
    cfg.write_text(
        'domain = "a.example:8443"\nworker_concurrency = 4\n'
        'allow_private_networks = ["10.0.0.0/8"]\n'
    )
    s = Settings.load(env={"T3R1_DATA_DIR": str(tmp_path), "T3R1_CONFIG": str(cfg)})
    assert s.domain == "a.example:8443" and s.hostname == "a.example"
    assert s.worker_concurrency == 4
    assert s.allow_private_networks == (ipaddress.ip_network("10.0.0.0/8"),)


def test_private_networks_parsed_from_env(tmp_path: Path) -> None:
    s = Settings.load(
        env={
            "T3R1_DATA_DIR": str(tmp_path),
            "T3R1_DOMAIN": "x.example",
            "T3R1_ALLOW_PRIVATE_NETWORKS": "127.0.0.0/8, ::1/128",
        }
    )
    assert [str(n) for n in s.allow_private_networks] == ["127.0.0.0/8", "::1/128"]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("T3R1_SCHEME", "ftp", "T3R1_SCHEME"),
        ("T3R1_DOMAIN", "a.example/path", "T3R1_DOMAIN"),
        ("T3R1_WORKER_CONCURRENCY", "many", "T3R1_WORKER_CONCURRENCY"),
        ("T3R1_ALLOW_PRIVATE_NETWORKS", "not-a-net", "T3R1_ALLOW_PRIVATE_NETWORKS"),
        ("T3R1_INLINE_WORKER", "perhaps", "T3R1_INLINE_WORKER"),
    ],
)
def test_bad_values_are_named(tmp_path: Path, key: str, value: str, message: str) -> None:
    env = {"T3R1_DATA_DIR": str(tmp_path), "T3R1_DOMAIN": "x.example", key: value}
    with pytest.raises(ConfigError, match=message):
        Settings.load(env=env)
