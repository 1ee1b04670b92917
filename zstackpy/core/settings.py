"""Node settings: command-line flags beat environment variables (``ZSTACK_*``), which beat
the settings file (TOML, ``--config`` or ``ZSTACK_CONFIG``), which beats the defaults.

Global configs (runtime-tunable, stored in the database) are a different thing: see
``core/config``. Settings are what a node needs before it can reach the database.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "zstackpy"


def _split_list(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class NodeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ZSTACK_", extra="ignore")

    http_host: str = Field("127.0.0.1", description="address the HTTP server binds")
    http_port: int = Field(8080, ge=0, le=65535, description="HTTP port (REST, callbacks, UI)")
    data_dir: Path = Field(default_factory=_default_data_dir, description="where files live")
    db_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite in data_dir")
    bus_url: str | None = Field(None, description="amqp:// URL; unset: in-process bus")
    admin_password: SecretStr | None = Field(None, description="admin's first password")
    simulator: bool | None = Field(None, description="simulate hosts; default: on when embedded")
    simulator_url: str | None = Field(
        None,
        description="URL of a simulator process (python -m simulator) that plays every host; "
        "unset in simulated mode: the node runs one in-process",
    )
    advertise_host: str | None = Field(None, description="host name other nodes reach us by")
    ansible_dir: Path | None = Field(
        None, description="directory of the deployment playbooks; default: the repository's"
    )
    deploy_extra_vars: dict[str, Any] = Field(
        default_factory=dict,
        description="extra variables for every agent deployment playbook (JSON), e.g. "
        '{"zstack_install_packages": false}',
    )
    appliance_ssh_key: Path | None = Field(
        None,
        description="private key the node logs in to virtual-router appliances with (their "
        "image accepts its public key); unset: routers cannot be deployed on real machines",
    )
    appliance_ssh_user: str = Field(
        "root", description="the appliances' SSH user (not root: sudo without a password)"
    )
    plugins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="extra plugins as module:attribute, comma-separated"
    )
    flows_dir: Path | None = Field(None, description="directory of flow chains (YAML)")
    log_level: str = Field("INFO", description="logging level")
    call_timeout: float = Field(30.0, gt=0, description="default bus call timeout, seconds")
    drain_timeout: float = Field(
        60.0,
        ge=0,
        description="on SIGTERM/SIGINT, seconds the node lets its running API jobs finish "
        "(taking no new ones) before it stops",
    )

    @field_validator("plugins", mode="before")
    @classmethod
    def _parse_plugins(cls, value: Any) -> Any:
        return _split_list(value)

    @property
    def database_url(self) -> str:
        if self.db_url:
            return self.db_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'zstack.db'}"

    @property
    def is_embedded(self) -> bool:
        """No message broker: one node, in-process bus."""
        return not self.bus_url

    @property
    def simulate_hosts(self) -> bool:
        return self.is_embedded if self.simulator is None else self.simulator

    @property
    def advertised_host(self) -> str:
        return self.advertise_host or self.http_host


def load_settings(config_file: Path | None = None, **overrides: Any) -> NodeSettings:
    """Settings from flags (``overrides``; None values ignored), environment and file."""
    path = config_file or (Path(p) if (p := os.environ.get("ZSTACK_CONFIG")) else None)
    if path is not None and not path.is_file():
        raise FileNotFoundError(f"settings file {path} does not exist")

    class _FileBackedSettings(NodeSettings):
        model_config = SettingsConfigDict(env_prefix="ZSTACK_", extra="ignore", toml_file=path)

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
            if path is not None:
                sources.append(TomlConfigSettingsSource(settings_cls))
            return tuple(sources)

    return _FileBackedSettings(**{k: v for k, v in overrides.items() if v is not None})
