"""The walk's steps done over the REST API and judged against the model: each answer
must be one the model admits, then the model moves (``do``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from simulator.stress.rest import Answer
from simulator.walker.balancers import ROUTER, router_withdrawn
from simulator.walker.cloud import (
    APPLIANCE_PORT,
    GIB,
    SETTLE_TIMEOUT_S,
    Cloud,
    WalkError,
    host_ip,
)
from simulator.walker.forwarding import pf_name, settle_users
from simulator.walker.model import TRANSITIONAL, HostModel
from simulator.walker.steps import SG_REFRESH, Step

# The REST action of each VM operation (PUT /vm-instances/{uuid}/actions).
ACTIONS = {
    "start": "startVmInstance",
    "stop": "stopVmInstance",
    "reboot": "rebootVmInstance",
    "pause": "pauseVmInstance",
    "resume": "resumeVmInstance",
    "migrate": "migrateVm",
    "recover": "recoverVmInstance",
    "expunge": "expungeVmInstance",
}


@dataclass
class Outcome:
    ok: bool
    code: str | None
    answer: Answer

    def __str__(self) -> str:
        if self.ok:
            return "done"
        error = self.answer.body.get("error", {}) if isinstance(self.answer.body, dict) else {}
        return f"{self.code}: {error.get('description', self.answer.body)}"


# The steps that make a resource: the model records the uuid the node gave it.
CREATES = (
    "volume-create",
    "snapshot-create",
    "image-add",
    "sg-create",
    "vip-create",
    "eip-create",
    "pf-create",
    "lb-create",
    "listener-create",
)


async def do(cloud: Cloud, step: Step) -> None:
    """Do ``step`` and check its outcome against the model, then move the model.
    Raises WalkError when the node answered otherwise than the model expects."""
    assert cloud.model is not None
    if not cloud.model.refers_well(step):
        return  # a reduced log dropped what this step refers to: nothing to do
    _withdraw_sg_errors(cloud, step)
    _withdraw_router_errors(cloud, step)
    if step.op in ("agent-error", "lost-callback"):
        _inject(cloud, step)
    elif step.op == "router-error":
        _inject_router(cloud, step)
    elif step.op == "host-outage":
        await _host_outage(cloud, step)
    elif step.op == "concurrent":
        await _concurrent(cloud, step)
    else:
        expect = cloud.model.expect(step)
        outcome = await _send(cloud, step)
        if not expect.admits(outcome.ok, outcome.code):
            raise WalkError(f"{step}: the model expects {expect}, the node answered {outcome}")
        uuid, placed = None, None
        if outcome.ok and step.op in CREATES:
            uuid = outcome.answer.body["inventory"]["uuid"]
        if outcome.ok and step.op == "sg-rule-add":
            uuid = _new_rule(cloud, step, outcome.answer.body["inventory"])
        if outcome.ok and step.op in ("create", "start", "migrate"):
            inventory = outcome.answer.body["inventory"]
            uuid = inventory["uuid"]
            if step.host is None:
                placed = _placed(cloud, step, inventory)
        cloud.model.apply(step, expect, uuid, placed)
        if outcome.ok and step.op == "create":
            inventory = outcome.answer.body["inventory"]
            cloud.model.vms[-1].root = inventory["rootVolumeUuid"]
            cloud.model.vms[-1].nic = inventory["vmNics"][0]["uuid"]
            cloud.model.vms[-1].nic_ip = inventory["vmNics"][0]["ip"]
        if outcome.ok and step.op == "vip-create":
            cloud.model.vips[-1].ip = outcome.answer.body["inventory"]["ip"]
        if cloud.model.unsettled:
            await _settle_vip_users(cloud, step)


async def _settle_vip_users(cloud: Cloud, step: Step) -> None:
    """A VIP delete a host refused: which of its users stayed is the parallel deletes'
    order; the model keeps the one of each refused group the API lists (it must list one)."""
    assert cloud.model is not None
    groups, cloud.model.unsettled = cloud.model.unsettled, []
    alive = {r["uuid"] for r in await cloud.query("/eips")}
    alive |= {r["uuid"] for r in await cloud.query("/port-forwarding")}
    problem = settle_users(cloud.model, groups, alive)
    if problem is not None:
        raise WalkError(f"{step}: {problem}")


def _placed(cloud: Cloud, step: Step, inventory: dict[str, Any]) -> int:
    """The host the allocator chose; it must be one the model had room on."""
    assert cloud.model is not None
    index = {h.uuid: h.index for h in cloud.model.hosts}.get(inventory.get("hostUuid") or "")
    exclude = (
        cloud.model.vms[step.vm].host if step.op == "migrate" and step.vm is not None else None
    )
    if index is None or index not in cloud.model.placeable(step.op, exclude):
        raise WalkError(
            f"{step}: the allocator chose host {index}; the model had room on "
            f"{cloud.model.placeable(step.op, exclude)}"
        )
    return index


async def _op_call(cloud: Cloud, method: str, path: str, body: Any = None) -> Answer:
    """An operation of a step: in cluster mode the nodes take them in turn, so a VM's
    operations reach it through every node (the ring routes them to its owner)."""
    client = cloud.clients[cloud.sent % len(cloud.clients)]
    cloud.sent += 1
    return await cloud.call(method, path, body, client=client)


async def _send(cloud: Cloud, step: Step) -> Outcome:
    assert cloud.model is not None
    if step.op.startswith("volume-"):
        answer = await _send_volume(cloud, step)
    elif step.op.startswith("snapshot-"):
        answer = await _send_snapshot(cloud, step)
    elif step.op.startswith("image-"):
        answer = await _send_image(cloud, step)
    elif step.op.startswith("sg-"):
        answer = await _send_group(cloud, step)
    elif step.op.startswith(("vip-", "eip-")):
        answer = await _send_eip(cloud, step)
    elif step.op.startswith("pf-"):
        answer = await _send_pf(cloud, step)
    elif step.op.startswith(("lb-", "listener-")):
        answer = await _send_lb(cloud, step)
    elif step.op == "create":
        name = f"walk-vm-{len(cloud.model.vms)}"
        answer = await _op_call(cloud, "POST", "/vm-instances", cloud.create_body(name, step.host))
    else:
        assert step.vm is not None
        uuid = cloud.model.vms[step.vm].uuid
        if step.op == "destroy":
            answer = await _op_call(cloud, "DELETE", f"/vm-instances/{uuid}")
        else:
            params: dict[str, Any] = {}
            if step.op in ("start", "migrate") and step.host is not None:
                params["hostUuid"] = cloud.model.hosts[step.host].uuid
            body = {ACTIONS[step.op]: params}
            answer = await _op_call(cloud, "PUT", f"/vm-instances/{uuid}/actions", body)
    return outcome_of(step, answer)


async def _send_volume(cloud: Cloud, step: Step) -> Answer:
    assert cloud.model is not None
    if step.op == "volume-create":
        name = f"walk-volume-{len(cloud.model.volumes)}"
        return await _op_call(
            cloud, "POST", "/volumes/data", {"params": {"name": name, "diskSize": GIB}}
        )
    assert step.volume is not None
    uuid = cloud.model.volumes[step.volume].uuid
    if step.op == "volume-attach":
        assert step.vm is not None
        vm = cloud.model.vms[step.vm].uuid
        return await _op_call(cloud, "POST", f"/volumes/{uuid}/vm-instances/{vm}", {"params": {}})
    if step.op == "volume-detach":
        return await _op_call(cloud, "DELETE", f"/volumes/{uuid}/vm-instances")
    return await _op_call(cloud, "DELETE", f"/volumes/{uuid}")


async def _send_snapshot(cloud: Cloud, step: Step) -> Answer:
    assert cloud.model is not None
    model = cloud.model
    if step.op == "snapshot-create":
        if step.vm is not None:
            volume = model.vms[step.vm].root
        else:
            assert step.volume is not None
            volume = model.volumes[step.volume].uuid
        name = f"walk-snapshot-{len(model.snapshots)}"
        return await _op_call(
            cloud, "POST", f"/volumes/{volume}/volume-snapshots", {"params": {"name": name}}
        )
    assert step.snapshot is not None
    uuid = model.snapshots[step.snapshot].uuid
    if step.op == "snapshot-revert":
        body: dict[str, Any] = {"revertVolumeFromSnapshot": {}}
        return await _op_call(cloud, "PUT", f"/volume-snapshots/{uuid}/actions", body)
    return await _op_call(cloud, "DELETE", f"/volume-snapshots/{uuid}")


async def _send_image(cloud: Cloud, step: Step) -> Answer:
    assert cloud.model is not None
    model = cloud.model
    if step.op == "image-add":
        # The simulated backup storage "downloads" the size the URL names; a size that
        # is not a number is a download that fails.
        size = "?size=unknown" if step.bad else f"?size={model.image_size}"
        params = {
            "name": f"walk-image-{len(model.images)}",
            "url": f"http://images.example/walk-{len(model.images)}.qcow2{size}",
            "format": "qcow2",
            "mediaType": "RootVolumeTemplate",
            "platform": "Linux",
            "backupStorageUuids": [cloud.dc["bs"]["uuid"]],
        }
        return await _op_call(cloud, "POST", "/images", {"params": params})
    assert step.image is not None
    uuid = model.images[step.image].uuid
    if step.op == "image-delete":
        return await _op_call(cloud, "DELETE", f"/images/{uuid}")
    action = "recoverImage" if step.op == "image-recover" else "expungeImage"
    return await _op_call(cloud, "PUT", f"/images/{uuid}/actions", {action: {}})


async def _send_group(cloud: Cloud, step: Step) -> Answer:
    assert cloud.model is not None
    model = cloud.model
    if step.op == "sg-create":
        name = f"walk-sg-{len(model.groups)}"
        answer = await _op_call(cloud, "POST", "/security-groups", {"params": {"name": name}})
        if answer.status == 200:
            uuid, l3 = answer.body["inventory"]["uuid"], cloud.dc["l3"]["uuid"]
            attached = await _op_call(
                cloud, "POST", f"/security-groups/{uuid}/l3-networks/{l3}", {"params": {}}
            )
            if attached.status != 200:
                raise WalkError(f"{step}: attaching the group to the L3: {attached.body}")
        return answer
    if step.op == "sg-rule-delete":
        assert step.rule is not None
        uuid = model.rules[step.rule].uuid
        return await _op_call(cloud, "DELETE", f"/security-groups/rules?ruleUuids={uuid}")
    assert step.group is not None
    group = model.groups[step.group].uuid
    if step.op == "sg-rule-add":
        rule = {"type": "Ingress", "protocol": "TCP", "startPort": step.port, "endPort": step.port}
        body = {"params": {"rules": [rule]}}
        return await _op_call(cloud, "POST", f"/security-groups/{group}/rules", body)
    if step.op == "sg-delete":
        return await _op_call(cloud, "DELETE", f"/security-groups/{group}")
    assert step.vm is not None
    nic = model.vms[step.vm].nic
    path = f"/security-groups/{group}/vm-instances/nics"
    if step.op == "sg-join":
        return await _op_call(cloud, "POST", path, {"params": {"vmNicUuids": [nic]}})
    return await _op_call(cloud, "DELETE", f"{path}?vmNicUuids={nic}")


async def _send_eip(cloud: Cloud, step: Step) -> Answer:
    assert cloud.model is not None
    model = cloud.model
    if step.op == "vip-create":
        params = {
            "name": f"walk-vip-{len(model.vips)}",
            "l3NetworkUuid": cloud.dc["public"]["uuid"],
        }
        return await _op_call(cloud, "POST", "/vips", {"params": params})
    if step.op in ("vip-delete", "eip-create"):
        assert step.vip is not None
        vip = model.vips[step.vip].uuid
        if step.op == "vip-delete":
            return await _op_call(cloud, "DELETE", f"/vips/{vip}")
        params = {"name": f"walk-eip-{len(model.eips)}", "vipUuid": vip}
        return await _op_call(cloud, "POST", "/eips", {"params": params})
    assert step.eip is not None
    eip = model.eips[step.eip].uuid
    if step.op == "eip-attach":
        assert step.vm is not None
        nic = model.vms[step.vm].nic
        return await _op_call(cloud, "POST", f"/eips/{eip}/vm-instances/nics/{nic}", {"params": {}})
    if step.op == "eip-detach":
        return await _op_call(cloud, "DELETE", f"/eips/{eip}/vm-instances/nics")
    return await _op_call(cloud, "DELETE", f"/eips/{eip}")


async def _send_pf(cloud: Cloud, step: Step) -> Answer:
    assert cloud.model is not None
    model = cloud.model
    if step.op == "pf-create":
        assert step.vip is not None
        params = {
            "name": pf_name(model, step),
            "vipUuid": model.vips[step.vip].uuid,
            "vipPortStart": step.port,
            "protocolType": "TCP",
        }
        return await _op_call(cloud, "POST", "/port-forwarding", {"params": params})
    assert step.pf is not None
    uuid = model.pfs[step.pf].uuid
    if step.op == "pf-attach":
        assert step.vm is not None
        nic = model.vms[step.vm].nic
        path = f"/port-forwarding/{uuid}/vm-instances/nics/{nic}"
        return await _op_call(cloud, "POST", path, {"params": {}})
    if step.op == "pf-detach":
        return await _op_call(cloud, "DELETE", f"/port-forwarding/{uuid}/vm-instances/nics")
    if step.op == "pf-delete":
        return await _op_call(cloud, "DELETE", f"/port-forwarding/{uuid}")
    if step.op == "pf-update":
        body: dict[str, Any] = {"updatePortForwardingRule": {"name": pf_name(model, step)}}
    else:
        event = "enable" if step.enable else "disable"
        body = {"changePortForwardingRuleState": {"stateEvent": event}}
    return await _op_call(cloud, "PUT", f"/port-forwarding/{uuid}/actions", body)


async def _send_lb(cloud: Cloud, step: Step) -> Answer:
    assert cloud.model is not None
    model = cloud.model
    if step.op == "lb-create":
        assert step.vip is not None
        params = {"name": f"walk-lb-{len(model.lbs)}", "vipUuid": model.vips[step.vip].uuid}
        return await _op_call(cloud, "POST", "/load-balancers", {"params": params})
    if step.op in ("lb-delete", "listener-create"):
        assert step.lb is not None
        lb = model.lbs[step.lb].uuid
        if step.op == "lb-delete":
            return await _op_call(cloud, "DELETE", f"/load-balancers/{lb}")
        made = {
            "name": f"walk-listener-{len(model.listeners)}",
            "loadBalancerPort": step.port,
            "protocol": "tcp",
        }
        path = f"/load-balancers/{lb}/listeners"
        return await _op_call(cloud, "POST", path, {"params": made})
    assert step.listener is not None
    listener = model.listeners[step.listener].uuid
    if step.op == "listener-delete":
        return await _op_call(cloud, "DELETE", f"/load-balancers/listeners/{listener}")
    assert step.vm is not None
    nic = model.vms[step.vm].nic
    path = f"/load-balancers/listeners/{listener}/vm-instances/nics"
    if step.op == "lb-add":
        return await _op_call(cloud, "POST", path, {"params": {"vmNicUuids": [nic]}})
    return await _op_call(cloud, "DELETE", f"{path}?vmNicUuids={nic}")


def _new_rule(cloud: Cloud, step: Step, inventory: dict[str, Any]) -> str:
    """The uuid of the rule ``step`` added, from the group's inventory."""
    assert cloud.model is not None
    known = {r.uuid for r in cloud.model.rules}
    found = [
        r["uuid"]
        for r in inventory.get("rules") or ()
        if r["startPort"] == step.port and r["uuid"] not in known
    ]
    if len(found) != 1:
        raise WalkError(f"{step}: the group's rules after the add: {inventory.get('rules')}")
    return str(found[0])


def _withdraw_sg_errors(cloud: Cloud, step: Step) -> None:
    """Take back the security-group agent errors the model could not follow through
    ``step`` (``CloudModel.sg_withdrawn``), on the hosts and in the model."""
    assert cloud.sim is not None
    assert cloud.model is not None
    for h in cloud.model.sg_withdrawn(step):
        machine = cloud.sim.machine(host_ip(h))
        if machine.faults is not None:
            machine.faults.pop(SG_REFRESH, None)
        cloud.model.faults.pop((h, SG_REFRESH), None)


def _withdraw_router_errors(cloud: Cloud, step: Step) -> None:
    """Take back the router errors the model does not follow through ``step``."""
    assert cloud.sim is not None
    assert cloud.model is not None
    paths = router_withdrawn(cloud.model, step)
    machine = cloud.sim.find(cloud.router_ip, APPLIANCE_PORT) if cloud.router_ip else None
    for path in paths:
        if machine is not None and machine.faults is not None:
            machine.faults.pop(path, None)
        cloud.model.faults.pop((ROUTER, path), None)


def _inject_router(cloud: Cloud, step: Step) -> None:
    """The router's agent fails its next ``step.path`` command."""
    assert cloud.sim is not None
    assert cloud.model is not None
    assert step.path is not None
    if cloud.router_ip is None:
        raise WalkError(f"{step}: the cloud has no virtual router (no load balancers)")
    cloud.sim.set_fault(
        cloud.router_ip, step.path, port=APPLIANCE_PORT, fail="injected by the walker", times=1
    )
    cloud.model.set_fault(ROUTER, step.path, "agent-error")


def _inject(cloud: Cloud, step: Step) -> None:
    assert cloud.sim is not None
    assert cloud.model is not None
    assert step.host is not None
    assert step.path is not None
    ip = host_ip(step.host)
    if step.op == "agent-error":
        cloud.sim.set_fault(ip, step.path, fail="injected by the walker", times=1)
    else:
        cloud.sim.set_fault(ip, step.path, drop_callback=True, times=1)
    cloud.model.set_fault(step.host, step.path, step.op)


async def _host_outage(cloud: Cloud, step: Step) -> None:
    assert cloud.sim is not None
    assert cloud.model is not None
    assert step.host is not None
    host = cloud.model.hosts[step.host]
    await cloud.sim.set_alive(host.ip, False)
    await _settle(
        cloud, f"host {host.ip} Disconnected", lambda: _host_is(cloud, host, "Disconnected")
    )
    if step.vm is not None and step.ops:
        await _while_down(cloud, step)
    if step.lose_vm is not None:
        cloud.sim.machine(host.ip).remove_vm(cloud.model.vms[step.lose_vm].uuid)
    await cloud.sim.set_alive(host.ip, True)
    await _settle(cloud, f"host {host.ip} Connected", lambda: _host_is(cloud, host, "Connected"))
    cloud.model.host_outage(step.host, step.lose_vm)
    await _settle(cloud, f"the VMs of {host.ip} settled", lambda: _vms_settled_on(cloud, host.uuid))


async def _while_down(cloud: Cloud, step: Step) -> None:
    """``step.ops`` on ``step.vm``, one of the dead host's VMs: once the node shows it
    Unknown, every operation is refused and leaves it Unknown."""
    assert cloud.model is not None
    assert step.vm is not None
    vm = cloud.model.vms[step.vm]

    async def unknown() -> bool:
        found = await cloud.query("/vm-instances", f"uuid={vm.uuid}")
        return bool(found) and found[0]["state"] == "Unknown"

    await _settle(cloud, f"VM {vm.index} Unknown", unknown)
    for op in step.ops:
        expect = cloud.model.expect_while_down(op)
        outcome = await _send(cloud, Step(op, vm=step.vm))
        if not expect.admits(outcome.ok, outcome.code):
            raise WalkError(
                f"{step}: {op} while the host is down: the model expects {expect}, "
                f"the node answered {outcome}"
            )
    if not await unknown():
        raise WalkError(f"{step}: VM {vm.index} left Unknown while its host is down")


async def _host_is(cloud: Cloud, host: HostModel, status: str) -> bool:
    found = await cloud.query("/hosts", f"uuid={host.uuid}")
    return bool(found) and found[0]["status"] == status


async def _vms_settled_on(cloud: Cloud, host_uuid: str) -> bool:
    assert cloud.model is not None
    wanted = {vm.uuid: vm.state for vm in cloud.model.live_vms()}
    for vm in await cloud.query("/vm-instances", "type=UserVm"):  # not the router
        if vm["uuid"] in wanted and vm["state"] in TRANSITIONAL:
            return False
        if vm.get("lastHostUuid") == host_uuid and vm["state"] != wanted.get(vm["uuid"]):
            return False
    return True


async def _settle(cloud: Cloud, what: str, check: Any) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_TIMEOUT_S
    while not await check():
        if loop.time() > deadline:
            raise WalkError(f"{what}: not within {SETTLE_TIMEOUT_S} s")
        await asyncio.sleep(0.05)


async def _concurrent(cloud: Cloud, step: Step) -> None:
    assert cloud.model is not None
    assert step.vm is not None
    model = cloud.model
    vm = model.vms[step.vm]
    steps = [
        Step(op, vm=step.vm, host=model.start_host(vm) if op == "start" else None)
        for op in step.ops
    ]
    outcomes = await asyncio.gather(*(_send(cloud, s) for s in steps))
    for order, after in model.orders(step.vm, steps):
        if all(e.admits(o.ok, o.code) for e, o in zip(order, outcomes, strict=True)):
            cloud.model = after
            return
    got = ", ".join(f"{s.op}: {o}" for s, o in zip(steps, outcomes, strict=True))
    raise WalkError(f"{step}: no order of the operations explains the answers ({got})")


def outcome_of(step: Step, answer: Answer) -> Outcome:
    """Done (200), or a structured error; an error without a code fails the walk."""
    if answer.status == 200:
        return Outcome(True, None, answer)
    error = answer.body.get("error") if isinstance(answer.body, dict) else None
    if not isinstance(error, dict) or not error.get("code"):
        raise WalkError(f"{step}: HTTP {answer.status} without a structured error: {answer.body}")
    return Outcome(False, str(error["code"]), answer)
