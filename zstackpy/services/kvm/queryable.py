"""The ``Host`` queryable resource. The kvm plugin registers it because the inventory it
serves is a KVM host's (ZStack's KVMHostInventory: HostInventory + username, sshPort,
os*), and KVM is the only hypervisor: a second one would register its own columns here.

KVM columns are correlated scalar subqueries on KVMHostVO rather than a join, so they
work wherever the engine puts a condition (the top query, a COUNT, an expanded-query
subselect such as ``zones?q=host.username=root``) without a second FROM.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import ColumnElement, Table, select

from zstackpy.api.query import Expansion, QueryableResource
from zstackpy.services.host.messages import HostInventory
from zstackpy.services.host.models import HostVO
from zstackpy.services.kvm.models import KVM_HOST_TABLE

_HOST = cast(Table, HostVO.__table__)
_KVM = KVM_HOST_TABLE


def _kvm_column(name: str) -> ColumnElement[Any]:
    column = _KVM.c[name]
    return (
        select(column)
        .where(_KVM.c.uuid == _HOST.c.uuid)
        .correlate(_HOST)
        .scalar_subquery()
        .label(None)
    )


HOST_QUERYABLE = QueryableResource(
    name="Host",
    model=HostVO,
    inventory=HostInventory,
    expansions={
        "zone": Expansion("Zone", "zoneUuid", "uuid"),
        "cluster": Expansion("Cluster", "clusterUuid", "uuid"),
    },
    columns={
        "username": _kvm_column("username"),
        "sshPort": _kvm_column("ssh_port"),
        "osDistribution": _kvm_column("os_distribution"),
        "osRelease": _kvm_column("os_release"),
        "osVersion": _kvm_column("os_version"),
    },
)
