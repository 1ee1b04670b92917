"""Node settings: flags beat environment variables, which beat the settings file."""

from __future__ import annotations

from pathlib import Path

import pytest

from zstackpy.core.settings import load_settings


def test_precedence_flags_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "node.toml"
    file.write_text('http_port = 7001\nlog_level = "DEBUG"\nbus_url = "amqp://file/"\n')
    monkeypatch.setenv("ZSTACK_HTTP_PORT", "7002")
    monkeypatch.setenv("ZSTACK_BUS_URL", "amqp://env/")
    settings = load_settings(file, bus_url="amqp://flag/", http_host=None)
    assert settings.bus_url == "amqp://flag/"  # flag over env and file
    assert settings.http_port == 7002  # env over file
    assert settings.log_level == "DEBUG"  # file over default
    assert settings.http_host == "127.0.0.1"  # a flag left out keeps the default


def test_embedded_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ZSTACK_BUS_URL", "ZSTACK_DB_URL", "ZSTACK_CONFIG", "ZSTACK_SIMULATOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ZSTACK_DATA_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.is_embedded
    assert settings.simulate_hosts
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'zstack.db'}"
    assert settings.http_port == 8080


def test_plugins_from_a_comma_separated_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZSTACK_PLUGINS", "a.b:plugin, c:d")
    assert load_settings().plugins == ["a.b:plugin", "c:d"]


def test_missing_settings_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.toml"):
        load_settings(tmp_path / "nope.toml")


def test_invalid_value_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZSTACK_HTTP_PORT", "99999")
    with pytest.raises(ValueError, match="http_port"):
        load_settings()
