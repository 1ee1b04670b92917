"""Network-service providers and the service types each serves. Rows are made at start-up
from the providers plugins register (one row per provider type, same uuid on every node);
which provider serves which type on an L3 network is ``NetworkServiceL3NetworkRefVO`` of
the network domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from zstackpy.core.db.models import NOW, Base


class NetworkServiceTypeVO(Base):
    __tablename__ = "NetworkServiceTypeVO"
    __table_args__ = (UniqueConstraint("network_service_provider_uuid", "type"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    network_service_provider_uuid: Mapped[str] = mapped_column(
        # Named: the conventional name passes MariaDB's 64-character limit.
        String(32),
        ForeignKey("NetworkServiceProviderVO.uuid", name="fk_NetworkServiceTypeVO_provider_uuid"),
    )
    type: Mapped[str] = mapped_column(String(64), index=True)


class NetworkServiceProviderVO(Base):
    __tablename__ = "NetworkServiceProviderVO"

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(64), unique=True)
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)

    service_types: Mapped[list[NetworkServiceTypeVO]] = relationship(
        lazy="raise", order_by=NetworkServiceTypeVO.id
    )
