"""Where the CLI connects and how it answers: flags beat environment variables, which beat
the config file, which beats the defaults. Also the per-user directories it keeps files in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_HOST = "127.0.0.1"  # the node binds here by default; no IPv6 detour via localhost
DEFAULT_PORT = 8080
OUTPUTS = ("table", "json")
ENV_PREFIX = "ZSTACK_CLI_"
_KEYS = ("host", "port", "output", "timeout")


class UsageError(Exception):
    """A bad command line or setting; exit status 2."""


@dataclass(frozen=True)
class Settings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    output: str = "table"
    timeout: float | None = None  # seconds an async job is waited for; None = until it ends

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


def config_dir() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config")


def cache_dir() -> Path:
    return _xdg("XDG_CACHE_HOME", ".cache")


def state_dir() -> Path:
    return _xdg("XDG_STATE_HOME", ".local/state")


def _xdg(variable: str, fallback: str) -> Path:
    root = os.environ.get(variable) or str(Path.home() / fallback)
    return Path(root) / "zstack-cli"


def config_file(flag: str | None) -> Path | None:
    """The config file to read: ``--config``, else ZSTACK_CLI_CONFIG, else the default
    one when it exists. An explicitly named file must exist."""
    named = flag or os.environ.get(ENV_PREFIX + "CONFIG")
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise UsageError(f"config file {path} does not exist")
        return path
    default = config_dir() / "config.toml"
    return default if default.is_file() else None


def _read_config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    import tomllib  # only when there is a file: start-up time

    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read config file {path}: {exc}") from exc
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        raise UsageError(f"{path}: unknown keys {', '.join(unknown)}; known: {', '.join(_KEYS)}")
    return data


def resolve(flags: dict[str, Any], config_flag: str | None = None) -> Settings:
    """Settings from ``flags`` (None = not given), the environment and the config file.
    Raises UsageError for a value of the wrong form."""
    merged: dict[str, Any] = _read_config(config_file(config_flag))
    for key in _KEYS:
        value = os.environ.get(ENV_PREFIX + key.upper())
        if value:
            merged[key] = value
    merged.update({k: v for k, v in flags.items() if v is not None})
    return Settings(
        host=str(merged.get("host", DEFAULT_HOST)),
        port=parse_port(merged.get("port", DEFAULT_PORT)),
        output=parse_output(merged.get("output", "table")),
        timeout=parse_timeout(merged.get("timeout")),
    )


def parse_port(value: object) -> int:
    try:
        port = int(str(value))
    except ValueError:
        raise UsageError(f"port must be a number, not {value!r}") from None
    if not 0 < port < 65536:
        raise UsageError(f"port {port} is out of range")
    return port


def parse_output(value: object) -> str:
    if value not in OUTPUTS:
        raise UsageError(f"output must be one of {', '.join(OUTPUTS)}, not {value!r}")
    return str(value)


def parse_timeout(value: object) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(str(value))
    except ValueError:
        raise UsageError(f"timeout must be seconds, not {value!r}") from None
    if seconds <= 0:
        raise UsageError("timeout must be positive")
    return seconds
