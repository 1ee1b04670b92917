"""The KVM agent's settings: a TOML file (what the Ansible playbook writes), then
``ZSTACK_KVM_AGENT_*`` environment variables, then command-line flags.

The token lives in its own file (mode 0600), never in the settings file, so the settings
can be shown and logged whole.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

DEFAULT_PORT = 7070
ENV_PREFIX = "ZSTACK_KVM_AGENT_"


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """``libvirt_uri``: ``qemu:///system`` on a real host, ``test:///default`` in tests.
    ``state_dir`` holds the task journal (results that outlive a restart).
    ``send_command_url``: the node's report endpoint, known before the node connects so
    the agent can report from its first second; ``/host/connect`` replaces it.
    ``domain_type``: ``kvm``, ``qemu`` (full emulation) or ``test``; empty: chosen from
    the libvirt driver. ``migrate_uri``: the destination's libvirt URI, ``{host}``
    replaced by the destination's management IP. ``sftp_key_file``: the private key image
    downloads log in to SFTP backup storage with (when the command carries none);
    ``sftp_known_hosts``: their host keys (empty: not checked). ``console_log_dir``: where
    each VM's serial console output is kept (``<vm uuid>.log``); empty: ``<state_dir>/console``.
    ``unplug_timeout``: how long a detached disk or NIC may stay in the running guest
    (PCI hot-unplug waits for the guest to acknowledge it) before the detach fails."""

    host: str = "0.0.0.0"  # noqa: S104 -- the node reaches the agent from another machine
    port: int = DEFAULT_PORT
    libvirt_uri: str = "qemu:///system"
    token_file: Path = Path("/etc/zstackpy/kvm-agent.token")
    state_dir: Path = Path("/var/lib/zstackpy/kvm-agent")
    send_command_url: str | None = None
    host_uuid: str | None = None
    domain_type: str = ""
    migrate_uri: str = "qemu+tcp://{host}/system"
    libvirt_threads: int = 4
    log_level: str = "INFO"
    physical_interfaces: tuple[str, ...] = field(default=())  # empty: what libvirt lists
    sftp_key_file: Path = Path("/etc/zstackpy/kvm-agent-sftp.key")
    sftp_known_hosts: str = "/etc/zstackpy/kvm-agent-known_hosts"
    netns: str = ""  # network namespace the network services' rules go in; "": the host's
    console_log_dir: str = ""
    unplug_timeout: int = 15  # seconds a guest has to acknowledge a disk or NIC detach

    @property
    def console_dir(self) -> Path:
        return Path(self.console_log_dir) if self.console_log_dir else self.state_dir / "console"

    def with_overrides(self, values: dict[str, Any]) -> AgentConfig:
        """A copy with ``values`` (names as the fields'; None values ignored) applied."""
        known = {f.name: f for f in fields(self)}
        changes: dict[str, Any] = {}
        for name, value in values.items():
            if value is None:
                continue
            if name not in known:
                raise ValueError(f"unknown KVM agent setting {name!r}")
            changes[name] = _coerce(name, getattr(self, name), value)
        return replace(self, **changes)


def load_config(path: Path | None, env: dict[str, str] | None = None, **flags: Any) -> AgentConfig:
    """Settings from ``path`` (TOML, optional), the environment, then ``flags``."""
    config = AgentConfig()
    if path is not None:
        with path.open("rb") as f:
            config = config.with_overrides(tomllib.load(f))
    env = os.environ.copy() if env is None else env
    from_env = {
        key[len(ENV_PREFIX) :].lower(): value
        for key, value in env.items()
        if key.startswith(ENV_PREFIX)
    }
    return config.with_overrides(from_env).with_overrides(flags)


def read_token(path: Path) -> str | None:
    """The token in ``path`` (surrounding whitespace dropped); None when absent or empty."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return token or None


def _coerce(name: str, current: object, value: object) -> object:
    if isinstance(current, bool):
        return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
    if isinstance(current, int):
        return int(str(value))
    if isinstance(current, Path):
        return Path(str(value))
    if isinstance(current, tuple):
        items = value if isinstance(value, list) else str(value).split(",")
        return tuple(str(i).strip() for i in items if str(i).strip())
    if name in ("send_command_url", "host_uuid"):
        return str(value) or None
    return str(value)
