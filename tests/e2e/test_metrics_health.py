"""What an operator sees of a node's health and load: ``GET /metrics`` (Prometheus),
``GET /health`` and the IsReadyToGo API, and the slow-message log."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.api_client import ApiClient
from tests.support.datacenter import add_cluster, add_kvm_host, add_zone, set_global_config
from zstackpy.node.node import ManagementNode

Start = Callable[..., Any]


async def _metrics(node: ManagementNode) -> tuple[str, dict[tuple[str, frozenset[Any]], float]]:
    assert node.http is not None
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{node.http.port}/metrics") as resp,
    ):
        assert resp.status == 200
        text = await resp.text()
        content_type = resp.headers["Content-Type"]
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    return content_type, samples


def _value(samples: dict[tuple[str, frozenset[Any]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def _get(node: ManagementNode, path: str) -> tuple[int, Any]:
    assert node.http is not None
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{node.http.port}{path}") as resp,
    ):
        return resp.status, await resp.json()


# ----- metrics ------------------------------------------------------------------------------


async def test_metrics_count_api_calls_messages_chains_agents_and_resources(
    node: ManagementNode, admin: ApiClient
) -> None:
    zone = await add_zone(admin, "metrics-zone")
    cluster = await add_cluster(admin, zone["uuid"], "metrics-cluster")
    await add_kvm_host(admin, cluster["uuid"], "10.9.0.1")
    await add_kvm_host(admin, cluster["uuid"], "10.9.0.2")
    missing = await admin.create(
        "/clusters", {"name": "x", "zoneUuid": "0" * 32, "hypervisorType": "KVM"}
    )
    assert missing.status >= 400
    code = missing.error["code"]

    content_type, samples = await _metrics(node)
    assert content_type.startswith("text/plain")
    requests = "zstack_api_requests_total"
    assert _value(samples, requests, api="CreateZone", result="success") == 1
    assert _value(samples, requests, api="AddKVMHost", result="success") == 2
    assert _value(samples, requests, api="CreateCluster", result="success") == 1
    assert _value(samples, requests, api="CreateCluster", result=code) == 1
    assert _value(samples, "zstack_api_request_seconds_count", api="AddKVMHost") == 2
    # The same API message, handled by the portal and then by its service.
    handled = "zstack_bus_message_handle_seconds_count"
    assert _value(samples, handled, type="APICreateZoneMsg", service="api.portal") == 1
    assert _value(samples, handled, type="APICreateZoneMsg", service="zone") == 1
    assert _value(samples, "zstack_flow_chain_seconds_count", chain="host-connect") == 2
    assert _value(samples, "zstack_agent_call_seconds_count", command="/host/connect") == 2
    assert _value(samples, "zstack_hosts", status="Connected", state="Enabled") == 2
    assert _value(samples, "zstack_node_ready") == 1
    assert _value(samples, "zstack_ring_nodes") == 1
    assert 0 <= _value(samples, "zstack_node_heartbeat_age_seconds") < 10
    assert _value(samples, "zstack_db_pool_size") >= 1
    assert _value(samples, "process_resident_memory_bytes") > 0
    assert _value(samples, "zstack_bus_sent_total") > 0
    assert _value(samples, "zstack_agent_resends_total") == 0  # every callback came in time
    batches = _value(samples, "zstack_db_write_batches_total")
    assert 0 < batches <= _value(samples, "zstack_db_write_units_total")
    assert any(name == "zstack_workqueue_granted_total" for name, _ in samples)
    # Labels stay bounded: no resource UUID anywhere in a label value.
    uuids = {zone["uuid"], cluster["uuid"]}
    assert not [key for key in samples if any(v in uuids for _, v in key[1])]


# ----- health ---------------------------------------------------------------------------------


async def test_is_ready_to_go_answers_for_this_node_and_another(start_node: Start) -> None:
    a = await start_node()
    b = await start_node()
    status, body = await _get(a, "/zstack/v1/management-nodes/ready")
    assert status == 200
    assert body["managementNodeId"] == a.uuid
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["ring"] == "joined"
    status, body = await _get(a, f"/zstack/v1/management-nodes/ready?managementNodeId={b.uuid}")
    assert status == 200
    assert body["managementNodeId"] == b.uuid
    status, body = await _get(a, f"/zstack/v1/management-nodes/ready?managementNodeId={'f' * 32}")
    assert status == 404
    assert body["error"]["code"] == "SYS.1003"


async def test_a_node_whose_heartbeat_stopped_is_not_ready(start_node: Start) -> None:
    node = await start_node()
    status, body = await _get(node, "/health")
    assert status == 200
    assert body["reasons"] == []
    await _set_interval(node, 0.1)  # eviction window: 0.3 s
    assert node.heartbeat is not None
    await node.heartbeat.stop(leave=False)
    await asyncio.sleep(0.5)
    status, body = await _get(node, "/health")
    assert status == 503
    assert body["state"] == "not ready"
    assert any(reason.startswith("heartbeat is") for reason in body["reasons"])
    status, body = await _get(node, "/zstack/v1/management-nodes/ready")
    assert status == 503
    assert body["error"]["code"] == "SYS.1010"
    assert body["error"]["details"]["reasons"]
    _, samples = await _metrics(node)
    assert _value(samples, "zstack_node_heartbeat_age_seconds") > 0.3


async def _set_interval(node: ManagementNode, seconds: float) -> None:
    from zstackpy.core.config.messages import UpdateGlobalConfigMsg

    reply = await node.context.bus.call(
        UpdateGlobalConfigMsg(category="node", name="heartbeatInterval", value=str(seconds))
    )
    reply.raise_if_error()


# ----- slow-message log -----------------------------------------------------------------------


async def test_slow_messages_are_logged_with_their_flow_chains(
    admin: ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    zone = await add_zone(admin, "slow-zone")
    cluster = await add_cluster(admin, zone["uuid"], "slow-cluster")
    await set_global_config(admin, "cloudBus", "slowMessageThreshold", 0.000001)
    with caplog.at_level(logging.WARNING, logger="zstackpy.slow_messages"):
        await add_kvm_host(admin, cluster["uuid"], "10.9.1.1")
        await set_global_config(admin, "cloudBus", "slowMessageThreshold", 0)
        lines = [r.getMessage() for r in caplog.records if r.name == "zstackpy.slow_messages"]
        caplog.clear()
        await add_kvm_host(admin, cluster["uuid"], "10.9.1.2")
        after_off = [r for r in caplog.records if r.name == "zstackpy.slow_messages"]
    api = [line for line in lines if line.startswith("slow message APIAddKVMHostMsg on api.portal")]
    assert len(api) == 1
    # The portal's line shows the chain its message caused on the host service, flow by flow.
    assert "host-connect done" in api[0]
    assert "success" in api[0]
    assert after_off == []
