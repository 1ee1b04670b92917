"""The appliance agent's settings: a TOML file, then ``ZSTACK_VROUTER_AGENT_*``
environment variables, then command-line flags (as the KVM agent's, ``agents/kvm/config.py``).

The token lives in its own file, never in the settings file."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

DEFAULT_PORT = 7272
ENV_PREFIX = "ZSTACK_VROUTER_AGENT_"


@dataclass(frozen=True, slots=True)
class RouterConfig:
    """``netns``: the network namespace everything is applied in ("": the appliance's
    own, what a real image uses; tests name one of their own). ``manage_interfaces``:
    the agent brings up the NICs ``/init`` names (found by MAC) and puts the addresses
    on them (the router's, the gateway's, the VIPs'). ``dnsmasq`` and ``haproxy``: the
    programs run for DHCP/DNS and load balancers ("": not run, files rendered only)."""

    host: str = "0.0.0.0"  # noqa: S104 -- the node reaches the appliance from outside
    port: int = DEFAULT_PORT
    token_file: Path = Path("/etc/zstackpy/vrouter-agent.token")
    state_dir: Path = Path("/var/lib/zstackpy/vrouter-agent")
    netns: str = ""
    manage_interfaces: bool = True
    dnsmasq: str = "dnsmasq"
    haproxy: str = "haproxy"
    log_level: str = "INFO"

    def with_overrides(self, values: dict[str, Any]) -> RouterConfig:
        """A copy with ``values`` (field names; None ignored) applied."""
        known = {f.name for f in fields(self)}
        changes: dict[str, Any] = {}
        for name, value in values.items():
            if value is None:
                continue
            if name not in known:
                raise ValueError(f"unknown virtual-router agent setting {name!r}")
            current = getattr(self, name)
            if isinstance(current, bool):
                value = value if isinstance(value, bool) else str(value).lower() in ("1", "true")
            elif isinstance(current, int):
                value = int(str(value))
            elif isinstance(current, Path):
                value = Path(str(value))
            else:
                value = str(value)
            changes[name] = value
        return replace(self, **changes)


def load_config(path: Path | None, env: dict[str, str] | None = None, **flags: Any) -> RouterConfig:
    config = RouterConfig()
    if path is not None:
        with path.open("rb") as f:
            config = config.with_overrides(tomllib.load(f))
    env = os.environ.copy() if env is None else env
    from_env = {k[len(ENV_PREFIX) :].lower(): v for k, v in env.items() if k.startswith(ENV_PREFIX)}
    return config.with_overrides(from_env).with_overrides(flags)
