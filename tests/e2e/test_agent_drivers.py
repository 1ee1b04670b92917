"""Who plays the hosts is picked through the AgentDriverProvider extension point: the
simulator plugin's driver in simulated mode, the kvm plugin's Ansible driver otherwise."""

from __future__ import annotations

from pydantic import SecretStr

from simulator.plugin import SimulatorDriver
from tests.e2e.conftest import ADMIN_PASSWORD, Start
from zstackpy.core.agent import AgentEndpoint
from zstackpy.core.agent.driver import (
    REAL_HOSTS_DRIVER,
    SIMULATOR_DRIVER,
    AgentDriverProvider,
)
from zstackpy.services.kvm.deployer import AnsibleDriver

ENDPOINT = AgentEndpoint("h1", "10.0.0.7", 7070, "token")


async def test_both_drivers_are_plugins_and_the_settings_pick_one(start_node: Start) -> None:
    simulated = await start_node(admin_password=SecretStr(ADMIN_PASSWORD), simulator=True)
    providers = simulated.context.plugins.extensions(AgentDriverProvider)
    assert {p.driver_name() for p in providers} == {SIMULATOR_DRIVER, REAL_HOSTS_DRIVER}
    agents = simulated.context.agents
    assert isinstance(agents.driver, SimulatorDriver)
    assert simulated.simulator is not None
    assert agents.url_for(ENDPOINT, "/host/ping").startswith(simulated.simulator.base_url)
    assert not agents.deploys_on_reconnect

    real = await start_node(simulator=False)
    agents = real.context.agents
    assert isinstance(agents.driver, AnsibleDriver)
    assert real.simulator is None
    assert agents.url_for(ENDPOINT, "/host/ping") == "http://10.0.0.7:7070/host/ping"
    assert agents.deploys_on_reconnect
