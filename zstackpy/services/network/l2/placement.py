"""The host allocator's network filter: a VM on some L3 networks can only run where the
bridges of their L2 networks exist, i.e. on hosts of clusters those L2s are attached to."""

from __future__ import annotations

from sqlalchemy import select

from zstackpy.core.context import NodeContext
from zstackpy.core.errors import SysErr, ZError
from zstackpy.services.host.messages import AllocateHostMsg, HostCandidate, HostErr
from zstackpy.services.network.models import L2NetworkClusterRefVO, L3NetworkVO


async def hosts_on_networks(
    ctx: NodeContext, request: AllocateHostMsg, candidates: list[HostCandidate]
) -> list[HostCandidate]:
    """The candidates whose cluster is attached to the L2 of every requested L3 (order
    kept). Raises SYS.1003 for an unknown L3 and HOST.1101 when no candidate is left.
    ``request.l3_cluster_uuids``, when the caller gives them, spare the reads."""
    wanted = list(dict.fromkeys(request.l3_network_uuids))
    if not wanted or not candidates:
        return candidates
    clusters = sorted({c.cluster_uuid for c in candidates})
    l2s: list[str] = []  # named in the refusal when read here
    if request.l3_cluster_uuids is not None:
        reachable = set(request.l3_cluster_uuids)
    else:
        reachable, l2s = await _clusters_reaching(ctx, wanted, clusters)
    kept = [c for c in candidates if c.cluster_uuid in reachable]
    if not kept:
        of_l2s = f"the L2 networks {', '.join(l2s)}" if l2s else "the L2 networks"
        raise ZError(
            HostErr.NO_AVAILABLE_HOST,
            f"no candidate host is in a cluster attached to {of_l2s} of L3 networks "
            f"{', '.join(wanted)}",
            filter="network",
            l3_network_uuids=wanted,
            l2_network_uuids=l2s,
            candidate_clusters=clusters,
        )
    return kept


async def _clusters_reaching(
    ctx: NodeContext, l3_uuids: list[str], clusters: list[str]
) -> tuple[set[str], list[str]]:
    """Which of ``clusters`` are attached to the L2 of every L3, and those L2s."""
    async with ctx.db.session() as session:
        l2_of = dict(
            (
                await session.execute(
                    select(L3NetworkVO.uuid, L3NetworkVO.l2_network_uuid).where(
                        L3NetworkVO.uuid.in_(l3_uuids)
                    )
                )
            ).all()
        )
        missing = [u for u in l3_uuids if u not in l2_of]
        if missing:
            raise ZError(
                SysErr.RESOURCE_NOT_FOUND,
                f"no L3 network with uuid {', '.join(missing)}",
                l3_network_uuids=missing,
            )
        l2s = set(l2_of.values())
        refs = await session.execute(
            select(L2NetworkClusterRefVO.cluster_uuid, L2NetworkClusterRefVO.l2_network_uuid).where(
                L2NetworkClusterRefVO.cluster_uuid.in_(clusters),
                L2NetworkClusterRefVO.l2_network_uuid.in_(l2s),
            )
        )
        attached: dict[str, set[str]] = {}
        for cluster_uuid, l2_uuid in refs.all():
            attached.setdefault(cluster_uuid, set()).add(l2_uuid)
    return {c for c, on in attached.items() if on >= l2s}, sorted(l2s)
