"""Checking the rules a client asks for: ports per protocol, one peer (a CIDR or a
remote group), no rule twice. Bad input answers SYS.1007 and changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_network
from typing import Any

from zstackpy.core.errors import SysErr, ZError
from zstackpy.services.securitygroup.api import SecurityGroupRuleAO
from zstackpy.services.securitygroup.errors import SecurityGroupErr

ANY_IPV4 = "0.0.0.0/0"


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """A checked rule: what makes two rules the same (``key``) plus its description."""

    type: str
    protocol: str
    start_port: int
    end_port: int
    allowed_cidr: str | None
    remote_security_group_uuid: str | None
    action: str
    description: str | None = None

    @property
    def key(self) -> tuple[object, ...]:
        return (
            self.type,
            self.protocol,
            self.start_port,
            self.end_port,
            self.allowed_cidr,
            self.remote_security_group_uuid,
            self.action,
        )


def _invalid(description: str, **details: Any) -> ZError:
    return ZError(SysErr.INVALID_ARGUMENT, description, **details)


def check_rule(rule: SecurityGroupRuleAO, remote: str | None) -> RuleSpec:
    if rule.protocol in ("TCP", "UDP"):
        if rule.start_port is None or rule.end_port is None:
            raise _invalid(f"a {rule.protocol} rule needs startPort and endPort", field="startPort")
        if not 0 <= rule.start_port <= rule.end_port <= 65535:
            raise _invalid(
                f"ports {rule.start_port}-{rule.end_port} are not a range within 0-65535",
                field="startPort",
                startPort=rule.start_port,
                endPort=rule.end_port,
            )
        start, end = rule.start_port, rule.end_port
    else:
        for name, value in (("startPort", rule.start_port), ("endPort", rule.end_port)):
            if value not in (None, -1):
                raise _invalid(f"a {rule.protocol} rule takes no {name}", field=name, value=value)
        start = end = -1
    if remote is not None and rule.allowed_cidr:
        raise _invalid(
            "a rule names either allowedCidr or a remote security group, not both",
            field="allowedCidr",
        )
    cidr: str | None = None
    if remote is None:
        try:
            cidr = str(ip_network((rule.allowed_cidr or ANY_IPV4).strip(), strict=False))
        except ValueError:
            raise _invalid(
                f"allowedCidr {rule.allowed_cidr!r} is not an IPv4 network",
                field="allowedCidr",
                value=rule.allowed_cidr,
            ) from None
        if ":" in cidr:
            raise _invalid("only IPv4 rules are supported", field="allowedCidr", value=cidr)
    return RuleSpec(
        type=rule.type,
        protocol=rule.protocol,
        start_port=start,
        end_port=end,
        allowed_cidr=cidr,
        remote_security_group_uuid=remote,
        action=rule.action,
        description=rule.description,
    )


def expand(
    rules: list[SecurityGroupRuleAO], remotes: list[str], existing: set[tuple[Any, ...]]
) -> list[RuleSpec]:
    """Every rule checked; once per group of ``remotes`` when it names some. SG.1001 when
    one repeats another of the request or of the group."""
    specs: list[RuleSpec] = []
    seen = set(existing)
    for rule in rules:
        peers: list[str | None] = list(remotes) if remotes else [rule.remote_security_group_uuid]
        for peer in peers:
            spec = check_rule(rule, peer)
            if spec.key in seen:
                raise ZError(
                    SecurityGroupErr.DUPLICATE_RULE,
                    f"the security group already has a rule {rule.type} {rule.protocol} "
                    f"{spec.start_port}-{spec.end_port} from {spec.allowed_cidr or peer}",
                    rule=rule.model_dump(mode="json", by_alias=True),
                )
            seen.add(spec.key)
            specs.append(spec)
    return specs
