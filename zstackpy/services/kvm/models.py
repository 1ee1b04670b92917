"""The KVMHostVO table: what a KVM host adds to HostVO (joined-table inheritance, as in
ZStack): SSH credentials for (re)deploying the agent, the agent's token, and what the
agent reported about the machine."""

from __future__ import annotations

from typing import cast

from sqlalchemy import ForeignKey, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from zstackpy.services.host.models import HostVO

KVM_HYPERVISOR = "KVM"


class KVMHostVO(HostVO):
    __tablename__ = "KVMHostVO"

    uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("HostVO.uuid", ondelete="CASCADE"), primary_key=True
    )
    username: Mapped[str] = mapped_column(String(255))
    # Needed to redeploy the agent on reconnect, so it is kept; never in an inventory or a
    # log. TODO: encrypt at rest (a node-held key) once the project has a secrets store.
    password: Mapped[str] = mapped_column(String(255))
    ssh_port: Mapped[int] = mapped_column(Integer, default=22)
    # The bearer token the agent accepts, installed at deploy; never shown either.
    agent_token: Mapped[str] = mapped_column(String(255))
    os_distribution: Mapped[str | None] = mapped_column(String(64))
    os_version: Mapped[str | None] = mapped_column(String(64))
    os_release: Mapped[str | None] = mapped_column(String(64))
    libvirt_version: Mapped[str | None] = mapped_column(String(64))
    qemu_version: Mapped[str | None] = mapped_column(String(64))
    # What the last agent deployment printed (the playbook's output, secrets removed).
    deploy_output: Mapped[str | None] = mapped_column(Text, deferred=True)

    __mapper_args__ = {  # noqa: RUF012 - SQLAlchemy's API
        "polymorphic_identity": KVM_HYPERVISOR,
        # Loaded in the same SELECT as HostVO: async sessions must never lazy-load.
        "polymorphic_load": "inline",
    }


# The subclass's own table, for UPDATEs of KVM-only columns (an ORM update of a joined
# subclass would touch both tables).
KVM_HOST_TABLE = cast(Table, KVMHostVO.__table__)
