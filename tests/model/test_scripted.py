"""Scripted walks: fixed step lists through the walker's own machinery (the model's
expectation, the REST call, every invariant after each step), each step's expected
outcome pinned here too, so the model is seen to predict refusals and not only agree.
"""

from __future__ import annotations

import pytest

from simulator.walker.actions import do
from simulator.walker.cloud import Cloud, WalkConfig
from simulator.walker.invariants import check
from simulator.walker.steps import SG_REFRESH, Step

OK = "done"
Script = list[tuple[Step, str]]


async def _run(cloud: Cloud, name: str, script: Script) -> None:
    """Each step: the model must expect ``want`` (OK or a code among its codes), the
    node must answer as the model expects, and every invariant must hold after it."""
    for step, want in script:
        assert cloud.model is not None
        expect = cloud.model.expect(step) if not step.op.endswith(("error", "callback")) else None
        if expect is not None:
            if want == OK:
                assert expect.ok, (name, str(step), str(expect))
            else:
                assert not expect.ok, (name, str(step), str(expect))
                assert want in (expect.codes or ()), (name, str(step), str(expect))
        await do(cloud, step)
        problems = await check(cloud)
        assert not problems, (name, str(step), problems)
    await cloud.reset()
    assert await check(cloud) == [], name


SNAPSHOTS: Script = [
    (Step("create", host=0), OK),
    (Step("snapshot-create", vm=0), OK),  # live, on host 0
    (Step("snapshot-create", vm=0), OK),  # on top of snapshot 0
    (Step("snapshot-revert", snapshot=0), "VOLUME.1006"),  # the VM runs
    (Step("snapshot-delete", snapshot=0), "VOLUME.1006"),  # the file rests on it
    (Step("agent-error", host=0, path="/vm/volume/takesnapshot"), OK),
    (Step("snapshot-create", vm=0), "AGENT.1003"),  # nothing taken, nothing held
    (Step("stop", vm=0), OK),
    (Step("snapshot-revert", snapshot=0), OK),  # offline: latest is 0 again
    (Step("snapshot-create", vm=0), OK),  # a second branch under 0
    (Step("snapshot-delete", snapshot=1), OK),  # not under the file: no fold
    (Step("snapshot-revert", snapshot=1), "SYS.1003"),
    (Step("volume-create"), OK),
    (Step("snapshot-create", volume=0), "VOLUME.1001"),  # no file yet
    (Step("volume-attach", volume=0, vm=0), OK),
    (Step("snapshot-create", volume=0), OK),  # offline: the VM is Stopped
    (Step("start", vm=0, host=1), OK),
    (Step("snapshot-create", volume=0), OK),  # live, on host 1
    (Step("snapshot-delete", snapshot=3), "VOLUME.1006"),
    (Step("pause", vm=0), OK),
    (Step("snapshot-create", vm=0), OK),  # a Paused VM's volume: live too
    (Step("stop", vm=0), OK),
    (Step("snapshot-delete", snapshot=0), OK),  # folded in; with 2 and 5
    (Step("volume-detach", volume=0), OK),
    (Step("snapshot-revert", snapshot=4), OK),  # detached: no VM to stop
    (Step("destroy", vm=0), OK),
    (Step("snapshot-create", vm=0), "VOLUME.1001"),  # the root volume is Deleted
    (Step("volume-delete", volume=0), OK),  # its snapshots go with it
    (Step("snapshot-delete", snapshot=3), "SYS.1003"),
    (Step("expunge", vm=0), OK),
    (Step("snapshot-create", vm=0), "SYS.1003"),
]


IMAGES: Script = [
    (Step("image-add"), OK),  # image 1
    (Step("image-add", bad=True), "IMAGE.1001"),  # nothing left behind
    (Step("image-recover", image=1), "IMAGE.1002"),  # it is not Deleted
    (Step("image-expunge", image=1), "IMAGE.1002"),
    (Step("image-delete", image=1), OK),  # Delay: its copy stays, Deleted
    (Step("image-delete", image=1), OK),
    (Step("image-recover", image=1), OK),
    (Step("image-delete", image=1), OK),
    (Step("image-expunge", image=1), OK),  # its bytes come back
    (Step("image-delete", image=1), "SYS.1003"),
    (Step("image-recover", image=1), "SYS.1003"),
    (Step("create", host=0), OK),
    (Step("image-delete", image=0), OK),  # in use: the VM runs on
    (Step("create", host=1), "VM.1003"),
    (Step("stop", vm=0), OK),
    (Step("start", vm=0, host=1), OK),
    (Step("image-recover", image=0), OK),
    (Step("create", host=1), OK),
]


SECURITY_GROUPS: Script = [
    (Step("create", host=0), OK),
    (Step("create", host=1), OK),
    (Step("sg-create"), OK),  # group 0, on the walk's L3
    (Step("sg-rule-add", group=0, port=22), OK),  # rule 0
    (Step("sg-rule-add", group=0, port=22), "SG.1001"),
    (Step("sg-join", group=0, vm=0), OK),  # host 0 holds port 22 for it
    (Step("lost-callback", host=0, path="/securitygroup/refreshrulesonhost"), OK),
    (Step("sg-rule-add", group=0, port=80), OK),  # rule 1, on host 0 (asked again)
    (Step("sg-join", group=0, vm=1), OK),
    (Step("agent-error", host=1, path=SG_REFRESH), OK),
    (Step("sg-rule-add", group=0, port=443), "AGENT.1003"),  # undone on both hosts
    (Step("sg-rule-add", group=0, port=443), OK),  # rule 2
    (Step("stop", vm=1), OK),  # host 1 holds nothing
    (Step("agent-error", host=0, path=SG_REFRESH), OK),
    (Step("start", vm=1, host=0), "AGENT.1003"),  # its rules refused: still Stopped
    (Step("start", vm=1, host=0), OK),
    (Step("agent-error", host=1, path=SG_REFRESH), OK),  # withdrawn before a migration
    (Step("migrate", vm=0, host=1), OK),  # its rules follow it
    (Step("sg-rule-delete", rule=0), OK),
    (Step("sg-rule-delete", rule=0), OK),  # gone already: nothing to do
    (Step("sg-create"), OK),  # group 1
    (Step("sg-rule-add", group=1, port=443), OK),
    (Step("sg-join", group=1, vm=0), OK),  # two groups' rules for one NIC
    (Step("sg-leave", group=0, vm=0), OK),
    (Step("sg-delete", group=0), OK),  # VM 1's NIC has no group left
    (Step("sg-join", group=0, vm=1), "SYS.1003"),
    (Step("destroy", vm=0), OK),
    (Step("expunge", vm=0), OK),  # its membership goes with its NIC
    (Step("sg-join", group=1, vm=0), "SYS.1003"),
]


EIPS: Script = [
    (Step("create", host=0), OK),
    (Step("create", host=1), OK),
    (Step("vip-create"), OK),  # three public addresses
    (Step("vip-create"), OK),
    (Step("vip-create"), OK),
    (Step("vip-create"), "L3.1005"),  # the public L3 is full
    (Step("eip-create", vip=0), OK),  # EIP 0
    (Step("eip-create", vip=0), "VIP.1001"),
    (Step("eip-detach", eip=0), "EIP.1004"),
    (Step("lost-callback", host=0, path="/flatnetworkprovider/eip/apply"), OK),
    (Step("eip-attach", eip=0, vm=0), OK),  # NATed on host 0 (asked again)
    (Step("eip-attach", eip=0, vm=1), "EIP.1001"),
    (Step("eip-create", vip=1), OK),  # EIP 1
    (Step("eip-attach", eip=1, vm=0), "EIP.1003"),
    (Step("migrate", vm=0, host=1), OK),  # the NAT follows it
    (Step("stop", vm=0), OK),  # and leaves with it
    (Step("start", vm=0, host=0), OK),
    (Step("eip-detach", eip=0), OK),
    (Step("eip-attach", eip=1, vm=0), OK),
    (Step("vip-delete", vip=1), OK),  # EIP 1 goes first
    (Step("eip-delete", eip=1), "SYS.1003"),
    (Step("vip-create"), OK),  # the address came back
    (Step("eip-attach", eip=0, vm=1), OK),
    (Step("destroy", vm=1), OK),
    (Step("expunge", vm=1), OK),  # its EIP is detached
    (Step("eip-attach", eip=0, vm=1), "SYS.1003"),
    (Step("eip-delete", eip=0), OK),
    (Step("vip-delete", vip=0), OK),
    (Step("vip-delete", vip=0), "SYS.1003"),
]


EIP_APPLY = "/flatnetworkprovider/eip/apply"
EIP_DELETE = "/flatnetworkprovider/eip/delete"
PF_APPLY = "/flatnetworkprovider/portforwarding/apply"
PF_DELETE = "/flatnetworkprovider/portforwarding/delete"

FORWARDS: Script = [
    (Step("create", host=0), OK),
    (Step("create", host=1), OK),
    (Step("vip-create"), OK),
    (Step("vip-create"), OK),
    (Step("pf-create", vip=0, port=22), OK),  # rule 0
    (Step("pf-create", vip=0, port=22), "VIP.1003"),  # the port is rule 0's
    (Step("pf-create", vip=0, port=80), OK),  # rule 1: rules share a VIP
    (Step("eip-create", vip=0), "VIP.1001"),  # an EIP does not
    (Step("eip-create", vip=1), OK),  # EIP 0
    (Step("pf-create", vip=1, port=22), "VIP.1001"),
    (Step("pf-detach", pf=0), "PF.1003"),
    (Step("agent-error", host=0, path=PF_APPLY), OK),
    (Step("pf-attach", pf=0, vm=0), "AGENT.1003"),  # host 0 refused: still detached
    (Step("pf-attach", pf=0, vm=0), OK),  # forwarded on host 0
    (Step("pf-attach", pf=0, vm=1), "PF.1001"),
    (Step("pf-attach", pf=1, vm=0), OK),
    (Step("agent-error", host=0, path=PF_DELETE), OK),
    (Step("pf-state", pf=0, enable=False), "AGENT.1003"),  # still Enabled, forwarded
    (Step("pf-state", pf=0, enable=False), OK),  # off host 0, still attached
    (Step("pf-state", pf=0, enable=False), OK),  # as it is
    (Step("agent-error", host=0, path=PF_APPLY), OK),
    (Step("pf-state", pf=0, enable=True), "AGENT.1003"),  # still Disabled
    (Step("pf-update", pf=0), OK),  # a name only
    (Step("migrate", vm=0, host=1), OK),  # rule 1 follows it; rule 0 stays off
    (Step("pf-state", pf=0, enable=True), OK),  # on host 1
    (Step("stop", vm=0), OK),  # both leave with it
    (Step("agent-error", host=1, path=PF_DELETE), OK),
    (Step("pf-detach", pf=1), OK),  # the VM runs nowhere: no host is asked
    (Step("start", vm=0, host=1), OK),  # rule 0 comes back with it
    (Step("pf-delete", pf=0), "AGENT.1003"),  # host 1 refused: the rule stays
    (Step("agent-error", host=1, path=EIP_APPLY), OK),
    (Step("eip-attach", eip=0, vm=1), "AGENT.1003"),  # EIP 0 still detached
    (Step("eip-attach", eip=0, vm=1), OK),
    (Step("agent-error", host=1, path=EIP_DELETE), OK),
    (Step("eip-detach", eip=0), "AGENT.1003"),  # still attached and NATed
    (Step("agent-error", host=1, path=EIP_DELETE), OK),
    (Step("vip-delete", vip=1), "AGENT.1003"),  # its EIP stays NATed, and the VIP with it
    (Step("migrate", vm=0, host=0), OK),  # rule 0 follows it to host 0
    (Step("pf-attach", pf=1, vm=1), OK),  # rule 1 on host 1
    (Step("agent-error", host=1, path=PF_DELETE), OK),
    (Step("vip-delete", vip=0), "AGENT.1003"),  # rule 0 goes, rule 1 stays, the VIP too
    (Step("pf-create", vip=0, port=22), OK),  # the VIP kept no port of the gone rule
    (Step("pf-create", vip=0, port=80), "VIP.1003"),  # rule 1's
    (Step("vip-delete", vip=0), OK),
    (Step("destroy", vm=1), OK),
    (Step("expunge", vm=1), OK),
    (Step("pf-attach", pf=0, vm=1), "SYS.1003"),
    (Step("vip-delete", vip=1), OK),
]


BALANCERS: Script = [
    (Step("create", host=0), OK),
    (Step("create", host=1), OK),
    (Step("vip-create"), OK),
    (Step("vip-create"), OK),
    (Step("lb-create", vip=0), OK),  # load balancer 0
    (Step("lb-create", vip=0), "VIP.1001"),  # the VIP is its alone
    (Step("eip-create", vip=0), "VIP.1001"),
    (Step("pf-create", vip=0, port=80), "VIP.1001"),
    (Step("pf-create", vip=1, port=80), OK),
    (Step("lb-create", vip=1), "VIP.1001"),  # a rule has VIP 1
    (Step("listener-create", lb=0, port=80), OK),  # listener 0: no backend, not on the router
    (Step("listener-create", lb=0, port=80), "LB.1001"),
    (Step("lb-add", listener=0, vm=0), OK),  # on the router
    (Step("lb-add", listener=0, vm=0), OK),  # it has it: nothing changes
    (Step("router-error", path="/refreshlb"), OK),
    (Step("lb-add", listener=0, vm=1), "AGENT.1003"),  # the router refused: VM 0 alone
    (Step("lb-add", listener=0, vm=1), OK),
    (Step("listener-create", lb=0, port=443), OK),  # listener 1
    (Step("router-error", path="/refreshlb"), OK),
    (Step("stop", vm=1), OK),  # withdrawn: a stop is no load balancer's change
    (Step("start", vm=1, host=1), OK),
    (Step("lb-add", listener=1, vm=1), OK),
    (Step("stop", vm=1), OK),  # a stopped VM stays a backend
    (Step("lb-remove", listener=1, vm=0), OK),  # not one of its backends: nothing changes
    (Step("destroy", vm=1), OK),  # destroyed while stopped: still a backend
    (Step("expunge", vm=1), OK),  # its NIC goes, and leaves both listeners
    (Step("lb-add", listener=0, vm=1), "SYS.1003"),
    (Step("lb-add", listener=1, vm=0), OK),
    (Step("destroy", vm=0), OK),  # destroyed on its host: it leaves every listener
    (Step("recover", vm=0), OK),
    (Step("start", vm=0, host=1), OK),
    (Step("lb-add", listener=1, vm=0), OK),
    (Step("listener-delete", listener=1), OK),
    (Step("listener-delete", listener=1), "SYS.1003"),
    (Step("lb-add", listener=0, vm=0), OK),
    (Step("router-error", path="/deletelb"), OK),
    (Step("lb-delete", lb=0), "AGENT.1003"),  # the router refused: it stays, all of it
    (Step("lb-delete", lb=0), OK),  # off the router
    (Step("listener-create", lb=0, port=80), "SYS.1003"),
    (Step("lb-create", vip=0), OK),  # load balancer 1: the VIP is free again
    (Step("listener-create", lb=1, port=443), OK),  # listener 2
    (Step("lb-add", listener=2, vm=0), OK),
    (Step("vip-delete", vip=0), OK),  # its load balancer goes first
    (Step("lb-remove", listener=2, vm=0), "SYS.1003"),
]


@pytest.mark.timeout(300)  # ~60 s alone; twice that on a machine as busy as CI's
async def test_scripted_walks_follow_the_model() -> None:
    # One node for every script (a node's start costs seconds): each script begins on a
    # cloud emptied and checked back at its baseline, as a walk's examples do.
    async with Cloud(WalkConfig(faults=("agent-error", "lost-callback"))) as cloud:
        await cloud.reset()
        # The L3's virtual router is in the baseline: its load balancers are checked.
        assert cloud.router_ip is not None
        assert cloud.l3_reserved == 1  # the router's address on the walk's L3
        for name, script in (
            ("snapshots", SNAPSHOTS),
            ("images", IMAGES),
            ("security groups", SECURITY_GROUPS),
            ("VIPs and EIPs", EIPS),
            ("port forwarding", FORWARDS),
            ("load balancers", BALANCERS),
        ):
            await _run(cloud, name, script)
