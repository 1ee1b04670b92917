"""System tag patterns: placeholders, whole-tag matching, per-type acceptance."""

from __future__ import annotations

import ipaddress

import pytest

from zstackpy.core.errors import SysErr, ZError
from zstackpy.services.tag.patterns import TagPattern, check_system_tags, check_user_tags


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


HOSTNAME = TagPattern("VmInstanceVO", "hostname::{hostname}")
STATIC_IP = TagPattern("VmInstanceVO", "staticIp::{l3NetworkUuid}::{ip}", checks={"ip": _is_ip})


def test_placeholders_become_named_values() -> None:
    assert HOSTNAME.match("hostname::web1") == {"hostname": "web1"}
    assert STATIC_IP.match("staticIp::" + "a" * 32 + "::10.0.0.5") == {
        "l3NetworkUuid": "a" * 32,
        "ip": "10.0.0.5",
    }


def test_the_whole_tag_must_match_and_checks_apply() -> None:
    assert HOSTNAME.match("xhostname::web1") is None
    assert HOSTNAME.match("hostname::") is None
    assert STATIC_IP.match("staticIp::l3::not-an-ip") is None


def test_regex_metacharacters_in_patterns_are_literal() -> None:
    pattern = TagPattern("HostVO", "a.b::{x}")
    assert pattern.match("a.b::1") == {"x": "1"}
    assert pattern.match("aXb::1") is None


def test_a_tag_is_checked_against_its_own_type_only() -> None:
    check_system_tags([HOSTNAME], "VmInstanceVO", ["hostname::web1"])
    with pytest.raises(ZError) as info:
        check_system_tags([HOSTNAME], "HostVO", ["hostname::web1"])
    assert info.value.code == SysErr.INVALID_ARGUMENT
    assert info.value.details["validPatterns"] == []


def test_refusal_names_the_tag_and_valid_patterns() -> None:
    with pytest.raises(ZError) as info:
        check_system_tags([HOSTNAME, STATIC_IP], "VmInstanceVO", ["hostname::a", "bogus"])
    assert info.value.details["tag"] == "bogus"
    assert set(info.value.details["validPatterns"]) == {HOSTNAME.pattern, STATIC_IP.pattern}


def test_user_tags_are_free_text_of_bounded_length() -> None:
    check_user_tags(["anything at all", "x" * 1024])
    with pytest.raises(ZError):
        check_user_tags([""])
    with pytest.raises(ZError):
        check_user_tags(["x" * 1025])


def test_checks_must_name_real_placeholders() -> None:
    with pytest.raises(ValueError, match="unknown placeholders"):
        TagPattern("VmInstanceVO", "hostname::{hostname}", checks={"nope": bool})
