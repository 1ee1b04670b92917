"""zstack-cli's settings: flags beat ZSTACK_CLI_* variables, which beat the config file;
per-command ``-o``/``--timeout`` anywhere on the line; bad values are usage errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from zstackpy.cli.runner import command_options
from zstackpy.cli.settings import Settings, UsageError, resolve


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("HOST", "PORT", "OUTPUT", "TIMEOUT", "CONFIG"):
        monkeypatch.delenv(f"ZSTACK_CLI_{name}", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "zstack-cli" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults() -> None:
    assert resolve({}) == Settings("127.0.0.1", 8080, "table", None)


def test_flag_beats_environment_beats_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    write_config(tmp_path, 'host = "127.0.0.2"\nport = 9000\noutput = "json"\ntimeout = 5\n')
    assert resolve({}) == Settings("127.0.0.2", 9000, "json", 5.0)
    monkeypatch.setenv("ZSTACK_CLI_PORT", "9001")
    monkeypatch.setenv("ZSTACK_CLI_OUTPUT", "table")
    assert resolve({}) == Settings("127.0.0.2", 9001, "table", 5.0)
    assert resolve({"port": "9002", "output": None}) == Settings("127.0.0.2", 9002, "table", 5.0)


def test_a_named_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        resolve({}, str(tmp_path / "missing.toml"))
    other = tmp_path / "other.toml"
    other.write_text("port = 7000\n")
    assert resolve({}, str(other)).port == 7000


@pytest.mark.parametrize(
    ("flags", "text", "message"),
    [
        ({"port": "http"}, "", "port must be a number"),
        ({"port": "70000"}, "", "out of range"),
        ({"output": "yaml"}, "", "output must be one of"),
        ({"timeout": "-1"}, "", "positive"),
        ({}, "colour = 1\n", "unknown keys colour"),
        ({}, "port = [", "cannot read config file"),
    ],
)
def test_bad_settings_are_usage_errors(
    tmp_path: Path, flags: dict[str, str], text: str, message: str
) -> None:
    if text:
        write_config(tmp_path, text)
    with pytest.raises(UsageError, match=message):
        resolve(flags)


def test_command_options_anywhere_on_the_line() -> None:
    base = Settings()
    words, settings = command_options(["QueryZone", "-o", "json", "name=z", "--timeout=2"], base)
    assert (words, settings.output, settings.timeout) == (["QueryZone", "name=z"], "json", 2.0)
    words, settings = command_options(["-ojson", "QueryZone", "--output", "table"], base)
    assert (words, settings.output) == (["QueryZone"], "table")
    with pytest.raises(UsageError, match="needs a value"):
        command_options(["QueryZone", "--timeout"], base)
    with pytest.raises(UsageError):
        command_options(["QueryZone", "-o", "xml"], base)
