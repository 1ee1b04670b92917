"""Coalesced reads: callers asking while a read runs share the next one, which starts after
they asked; a key never has two reads in flight; errors reach every caller of their read;
a caller that gives up cancels nothing others wait for."""

from __future__ import annotations

import asyncio

import pytest

from zstackpy.core.coalesce import BatchedReads, CoalescedReads, owned_by
from zstackpy.core.errors import SysErr, ZError


class Source:
    """A value that changes; each read takes until ``release`` is set."""

    def __init__(self) -> None:
        self.value = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self.release = asyncio.Event()
        self.fail_with: ZError | None = None

    async def fetch(self, key: str) -> str:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        seen = self.value  # what the database holds when the read starts
        try:
            await self.release.wait()
        finally:
            self.in_flight -= 1
        if self.fail_with is not None:
            raise self.fail_with
        return f"{key}={seen}"


async def test_callers_during_a_read_share_the_next_one() -> None:
    source = Source()
    reads = CoalescedReads(source.fetch)
    first = asyncio.create_task(reads.read("image"))
    while not source.in_flight:
        await asyncio.sleep(0)
    source.value = 1  # committed after the first read started, before the others asked
    later = [asyncio.create_task(reads.read("image")) for _ in range(50)]
    await asyncio.sleep(0)
    source.release.set()
    assert await first == "image=0"
    # Each later caller sees the change committed before it asked.
    assert {await t for t in later} == {"image=1"}
    assert reads.reads == 2
    assert source.most_in_flight == 1


async def test_keys_are_read_apart_and_nothing_is_kept() -> None:
    source = Source()
    source.release.set()
    reads = CoalescedReads(source.fetch)
    assert list(await asyncio.gather(reads.read("a"), reads.read("b"))) == ["a=0", "b=0"]
    source.value = 2
    assert await reads.read("a") == "a=2"  # a read that ended serves nobody later
    assert reads.reads == 3


async def test_an_error_reaches_every_caller_of_its_read() -> None:
    source = Source()
    source.fail_with = ZError(SysErr.RESOURCE_NOT_FOUND, "no image")
    reads = CoalescedReads(source.fetch)
    callers = [asyncio.create_task(reads.read("gone")) for _ in range(3)]
    await asyncio.sleep(0)
    source.release.set()
    errors = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(e, ZError) and e.code == SysErr.RESOURCE_NOT_FOUND for e in errors)
    assert len({id(e) for e in errors}) == 3  # each caller raised its own copy


async def test_a_caller_that_gives_up_leaves_the_read_to_the_others() -> None:
    source = Source()
    reads = CoalescedReads(source.fetch)
    quitter = asyncio.create_task(reads.read("l3"))
    stayer = asyncio.create_task(reads.read("l3"))
    await asyncio.sleep(0)
    quitter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await quitter
    source.release.set()
    assert await stayer == "l3=0"


class Rows:
    """A table read many keys at a time; each read takes until ``release`` is set."""

    def __init__(self) -> None:
        self.value = 0
        self.reads: list[list[str]] = []
        self.release = asyncio.Event()

    async def fetch_many(self, keys: list[str]) -> dict[str, str]:
        self.reads.append(keys)
        seen = self.value
        await self.release.wait()
        return {key: f"{key}={seen}" for key in keys if not key.startswith("absent")}


def not_found(key: str) -> ZError:
    return ZError(SysErr.RESOURCE_NOT_FOUND, f"no {key}", uuid=key)


async def test_batched_reads_serve_different_keys_in_one_read_started_after_each_asked() -> None:
    rows = Rows()
    reads = BatchedReads(rows.fetch_many, not_found)
    first = asyncio.create_task(reads.read("a"))
    while not rows.reads:
        await asyncio.sleep(0)
    rows.value = 1  # committed after the first read started, before the others asked
    later = [asyncio.create_task(reads.read(f"k{i % 20}")) for i in range(40)]
    absent = asyncio.create_task(reads.read("absent-1"))
    await asyncio.sleep(0)
    rows.release.set()
    assert await first == "a=0"
    assert [await t for t in later] == [f"k{i % 20}=1" for i in range(40)]
    with pytest.raises(ZError) as caught:
        await absent
    assert caught.value.code == SysErr.RESOURCE_NOT_FOUND
    # Two reads in all: the first key alone, then the 21 distinct keys asked meanwhile.
    assert [sorted(keys) for keys in rows.reads] == [
        ["a"],
        sorted([f"k{i}" for i in range(20)] + ["absent-1"]),
    ]


async def test_owned_by_keeps_one_object_per_owner_and_name() -> None:
    class Owner:
        pass

    one, other = Owner(), Owner()
    made: list[int] = owned_by(one, "reads", list)
    assert owned_by(one, "reads", list) is made
    assert owned_by(other, "reads", list) is not made
    assert owned_by(one, "other", list) is not made
