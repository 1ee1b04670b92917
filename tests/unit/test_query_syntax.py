"""REST query text: ``q=`` conditions split as ZStack's RestServer does, and ``sort=``."""

from __future__ import annotations

import pytest

from zstackpy.api.messages import QueryCondition
from zstackpy.api.query import REST_OPERATOR_TEXTS, parse_rest_condition, parse_sort
from zstackpy.core.errors import SysErr, ZError


@pytest.mark.parametrize(
    ("text", "name", "op", "value"),
    [
        ("name=vm1", "name", "=", "vm1"),
        ("a!=b", "a", "!=", "b"),
        ("x>=1", "x", ">=", "1"),
        ("x<=1", "x", "<=", "1"),
        ("cpuNum>5", "cpuNum", ">", "5"),
        ("cpuNum<5", "cpuNum", "<", "5"),
        ("name~=a%", "name", "like", "a%"),
        ("name!~=a_", "name", "not like", "a_"),
        ("uuid?=a,b", "uuid", "in", "a,b"),
        ("name!?=VM1,VM2", "name", "not in", "VM1,VM2"),
        ("hostUuid is null", "hostUuid", "is null", None),
        ("vmInstanceUuid not null", "vmInstanceUuid", "is not null", None),
        # The first operator of the precedence list that occurs anywhere wins; the split is
        # at its first occurrence, so the value keeps everything after it.
        ("tag=a=b", "tag", "=", "a=b"),
        ("__systemTag__=hostname::vm1", "__systemTag__", "=", "hostname::vm1"),
        (
            "vmInstance.vmNics.eip.vipIp=16.16.16.16",
            "vmInstance.vmNics.eip.vipIp",
            "=",
            "16.16.16.16",
        ),
        ("name=a>b", "name", "=", "a>b"),
        ("name=a!=b", "name=a", "!=", "b"),  # ZStack's precedence, quirks included
        ("description=is null", "description", "=", "is null"),
        ("name= spaced ", "name", "=", " spaced "),  # the value is not trimmed
        ("name=", "name", "=", ""),
        ("x>=", "x", ">=", ""),
    ],
)
def test_parse_rest_condition(text: str, name: str, op: str, value: str | None) -> None:
    assert parse_rest_condition(text) == QueryCondition(name=name, op=op, value=value)


@pytest.mark.parametrize("text", ["name", "", "vmInstance.name", "hostUuid isnull"])
def test_no_operator_names_the_valid_ones(text: str) -> None:
    with pytest.raises(ZError) as err:
        parse_rest_condition(text)
    assert err.value.code == SysErr.INVALID_ARGUMENT
    assert err.value.details["validOperators"] == list(REST_OPERATOR_TEXTS)
    for op in ("!=", "?=", "~=", "is null", "not null"):
        assert op in err.value.description


@pytest.mark.parametrize("text", ["=vm1", " !=x", "is null", "hostUuid is null x"])
def test_malformed_condition(text: str) -> None:
    with pytest.raises(ZError) as err:
        parse_rest_condition(text)
    assert err.value.code == SysErr.INVALID_ARGUMENT
    assert err.value.details["condition"] == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+name", ("name", "asc")),
        ("-name", ("name", "desc")),
        ("name", ("name", "asc")),
        (" createDate", ("createDate", "asc")),  # "+createDate" after URL form decoding
        ("-createDate ", ("createDate", "desc")),
    ],
)
def test_parse_sort(text: str, expected: tuple[str, str]) -> None:
    assert parse_sort(text) == expected


@pytest.mark.parametrize("text", ["", "+", "-", "  "])
def test_parse_sort_needs_a_field(text: str) -> None:
    with pytest.raises(ZError) as err:
        parse_sort(text)
    assert err.value.code == SysErr.INVALID_ARGUMENT
