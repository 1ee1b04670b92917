"""The KVM agent on real qcow2 files: offline snapshot merges and image downloads from
SFTP backup storage (a local copy, and SFTP from an asyncssh server on 127.0.0.1).

The agent runs in-process on libvirt's test driver; the files are real ones in a temp
dir, made and read back with qemu-img and qemu-io (the data a guest would see).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from tests.support.kvm_agent import InProcessAgent

pytestmark = pytest.mark.skipif(
    shutil.which("qemu-img") is None or shutil.which("qemu-io") is None,
    reason="qemu-img and qemu-io (Debian qemu-utils) are not installed",
)

MIB = 1 << 20


def qemu_img(*args: str) -> str:
    return subprocess.run(["qemu-img", *args], check=True, capture_output=True, text=True).stdout


def info(path: Path) -> dict[str, Any]:
    return json.loads(qemu_img("info", "--output=json", "-U", str(path)))  # type: ignore[no-any-return]  # JSON


def write(path: Path, pattern: int, offset: int, fmt: str = "qcow2") -> None:
    subprocess.run(
        ["qemu-io", "-f", fmt, "-c", f"write -P {pattern:#x} {offset} 64k", str(path)],
        check=True,
        capture_output=True,
    )


def reads(path: Path, pattern: int, offset: int) -> bool:
    done = subprocess.run(
        ["qemu-io", "-f", "qcow2", "-c", f"read -P {pattern:#x} {offset} 64k", str(path)],
        capture_output=True,
        text=True,
    )
    return done.returncode == 0 and "Pattern verification failed" not in done.stdout


def layer(top: Path, below: Path) -> None:
    qemu_img("create", "-f", "qcow2", "-F", "qcow2", "-b", str(below), str(top))


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[InProcessAgent]:
    async with InProcessAgent(tmp_path) as running:
        yield running


@pytest.fixture
def ps(tmp_path: Path) -> Path:
    root = tmp_path / "ps"
    (root / "rootVolumes" / "vol-1").mkdir(parents=True)
    return root


async def init(agent: InProcessAgent, ps: Path) -> None:
    assert (await agent.call("/localstorage/init", {"path": str(ps)}))["success"]


def chain(ps: Path) -> tuple[Path, Path, Path]:
    """base <- mid <- top, each with data of its own (the guest sees all three)."""
    d = ps / "rootVolumes" / "vol-1"
    base, mid, top = d / "base.qcow2", d / "mid.qcow2", d / "top.qcow2"
    qemu_img("create", "-f", "qcow2", str(base), "64M")
    write(base, 0xAA, 0)
    layer(mid, base)
    write(mid, 0xBB, MIB)
    layer(top, mid)
    write(top, 0xCC, 2 * MIB)
    return base, mid, top


def guest_view_intact(top: Path) -> bool:
    return reads(top, 0xAA, 0) and reads(top, 0xBB, MIB) and reads(top, 0xCC, 2 * MIB)


async def test_a_full_merge_makes_the_volume_self_contained_and_can_be_repeated(
    agent: InProcessAgent, ps: Path
) -> None:
    await init(agent, ps)
    _base, mid, top = chain(ps)
    cmd = {"storagePath": str(ps), "srcPath": str(mid), "destPath": str(top), "fullRebase": True}
    (top.parent / ".top.qcow2.merging").write_bytes(b"a merge killed half-way")
    merged = await agent.call("/localstorage/snapshot/offlinemerge", cmd)
    assert merged["success"], merged
    assert "totalCapacity" in merged
    assert "backing-filename" not in info(top)
    assert guest_view_intact(top)
    assert sorted(p.name for p in top.parent.iterdir()) == [
        "base.qcow2",
        "mid.qcow2",
        "top.qcow2",
    ]  # no temp file left
    # The node resends a task whose answer it lost: the merge is done, so it succeeds.
    again = await agent.call("/localstorage/snapshot/offlinemerge", cmd)
    assert again["success"], again
    assert guest_view_intact(top)


async def test_a_merge_onto_a_snapshot_folds_in_the_files_between(
    agent: InProcessAgent, ps: Path
) -> None:
    await init(agent, ps)
    base, _mid, top = chain(ps)
    cmd = {"storagePath": str(ps), "srcPath": str(base), "destPath": str(top), "fullRebase": False}
    merged = await agent.call("/localstorage/snapshot/offlinemerge", cmd)
    assert merged["success"], merged
    assert info(top)["full-backing-filename"] == str(base)
    assert guest_view_intact(top)
    assert (await agent.call("/localstorage/snapshot/offlinemerge", cmd))["success"]


async def test_merge_refuses_bad_input_and_names_qemu_imgs_error(
    agent: InProcessAgent, ps: Path, tmp_path: Path
) -> None:
    await init(agent, ps)
    _base, mid, top = chain(ps)
    merge = "/localstorage/snapshot/offlinemerge"
    outside = await agent.call(
        merge, {"storagePath": str(ps), "srcPath": str(mid), "destPath": str(tmp_path / "x")}
    )
    assert not outside["success"]
    assert "is not a file of the storage" in outside["error"]
    sneaky = await agent.call(
        merge,
        {"storagePath": str(ps), "srcPath": str(mid), "destPath": f"{ps}/../etc/top.qcow2"},
    )
    assert not sneaky["success"]
    unrelated = ps / "rootVolumes" / "vol-1" / "other.qcow2"
    qemu_img("create", "-f", "qcow2", str(unrelated), "64M")
    not_below = await agent.call(
        merge, {"storagePath": str(ps), "srcPath": str(unrelated), "destPath": str(top)}
    )
    assert not not_below["success"]
    assert "does not rest on" in not_below["error"]
    assert not_below["details"]["backingChain"] == [str(mid), str(mid.parent / "base.qcow2")]
    missing = await agent.call(
        merge,
        {"storagePath": str(ps), "srcPath": str(mid), "destPath": f"{ps}/rootVolumes/gone.qcow2"},
    )
    assert not missing["success"]
    assert missing["error"].startswith("qemu-img info failed:")
    assert missing["details"]["qemuImgExitCode"] == 1
    no_path = await agent.call(merge, {"storagePath": str(ps), "srcPath": str(mid)})
    assert "destPath" in no_path["error"]
    assert guest_view_intact(top)  # nothing refused changed the volume


# ----- downloads ----------------------------------------------------------------------


def cache_path(ps: Path) -> Path:
    image = uuid.uuid4().hex
    return ps / "imagecache" / "template" / image / f"{image}.qcow2"


def download_cmd(ps: Path, dest: Path, source: str, **extra: Any) -> dict[str, Any]:
    return {
        "storagePath": str(ps),
        "hostname": "127.0.0.1",
        "username": "root",
        "sshPort": 22,
        "sshKey": "",
        "backupStorageInstallPath": source,
        "primaryStorageInstallPath": str(dest),
        **extra,
    }


async def test_an_image_on_this_host_is_copied_locally_and_raw_becomes_qcow2(
    agent: InProcessAgent, ps: Path, tmp_path: Path
) -> None:
    await init(agent, ps)
    bs = tmp_path / "bs" / "images"
    bs.mkdir(parents=True)
    image = bs / "img.qcow2"
    qemu_img("create", "-f", "qcow2", str(image), "32M")
    write(image, 0x5A, 0)
    dest = cache_path(ps)
    # What an earlier try killed half-way left behind goes.
    dest.parent.mkdir(parents=True)
    (dest.parent / f".{dest.name}.part-0123").write_bytes(b"half an image")
    got = await agent.call("/localstorage/sftp/download", download_cmd(ps, dest, str(image)))
    assert got["success"], got
    assert got["format"] == "qcow2"
    assert got["size"] == 32 * MIB
    assert reads(dest, 0x5A, 0)
    assert [p.name for p in dest.parent.iterdir()] == [dest.name]

    raw = bs / "disk.raw"
    qemu_img("create", "-f", "raw", str(raw), "16M")
    write(raw, 0x3C, MIB, fmt="raw")
    dest_raw = cache_path(ps)
    got = await agent.call("/localstorage/sftp/download", download_cmd(ps, dest_raw, str(raw)))
    assert got["success"], got
    assert got["format"] == "raw"
    assert info(dest_raw)["format"] == "qcow2"
    assert reads(dest_raw, 0x3C, MIB)


async def test_an_image_resting_on_another_file_is_refused_and_leaves_nothing(
    agent: InProcessAgent, ps: Path, tmp_path: Path
) -> None:
    await init(agent, ps)
    bs = tmp_path / "bs"
    bs.mkdir()
    layer_over = bs / "evil.qcow2"
    qemu_img("create", "-f", "qcow2", str(bs / "host-file.qcow2"), "16M")
    layer(layer_over, bs / "host-file.qcow2")
    dest = cache_path(ps)
    got = await agent.call("/localstorage/sftp/download", download_cmd(ps, dest, str(layer_over)))
    assert not got["success"]
    assert "not a self-contained image" in got["error"]
    assert list(dest.parent.iterdir()) == []
    outside = await agent.call(
        "/localstorage/sftp/download", download_cmd(ps, tmp_path / "x.qcow2", str(layer_over))
    )
    assert "is not a file of the storage" in outside["error"]
    bad_port = await agent.call(
        "/localstorage/sftp/download", download_cmd(ps, dest, str(layer_over), sshPort=70000)
    )
    assert "is not a TCP port" in bad_port["error"]


class _Server(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return True  # key authentication (authorized_client_keys) is required


@pytest.fixture
async def sftp_server(tmp_path: Path) -> AsyncIterator[tuple[int, Path, asyncssh.SSHKey, Path]]:
    """An SFTP server on 127.0.0.1 serving ``root`` (chrooted); (port, root, the client's
    key, a known_hosts file that trusts the server)."""
    root = tmp_path / "sftp-root"
    root.mkdir()
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    authorized = asyncssh.import_authorized_keys(client_key.export_public_key().decode())
    server = await asyncssh.listen(
        "127.0.0.1",
        0,
        server_host_keys=[host_key],
        authorized_client_keys=authorized,
        server_factory=_Server,
        sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=str(root).encode()),
    )
    port = server.sockets[0].getsockname()[1]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {host_key.export_public_key().decode()}")
    yield port, root, client_key, known
    server.close()
    await server.wait_closed()


async def test_an_image_comes_over_sftp_with_the_agents_key_and_a_known_host_key(
    tmp_path: Path, ps: Path, sftp_server: tuple[int, Path, asyncssh.SSHKey, Path]
) -> None:
    port, root, client_key, known = sftp_server
    key_file = tmp_path / "sftp.key"
    key_file.write_bytes(client_key.export_private_key())
    # A path that exists on the server only: this host (127.0.0.1) has no such file, so
    # the agent must fetch it over SFTP.
    remote = f"/zs-bs-{uuid.uuid4().hex}/images/img.qcow2"
    (root / remote.lstrip("/")).parent.mkdir(parents=True)
    qemu_img("create", "-f", "qcow2", str(root / remote.lstrip("/")), "24M")
    write(root / remote.lstrip("/"), 0x77, MIB)
    async with InProcessAgent(
        tmp_path / "a", sftp_key_file=str(key_file), sftp_known_hosts=str(known)
    ) as agent:
        await init(agent, ps)
        dest = cache_path(ps)
        got = await agent.call(
            "/localstorage/sftp/download", download_cmd(ps, dest, remote, sshPort=port)
        )
        assert got["success"], got
        assert got["size"] == 24 * MIB
        assert reads(dest, 0x77, MIB)

        # The key may come with the command instead.
        dest2 = cache_path(ps)
        key_text = client_key.export_private_key().decode()
        got = await agent.call(
            "/localstorage/sftp/download",
            download_cmd(ps, dest2, remote, sshPort=port, sshKey=key_text),
        )
        assert got["success"], got

        missing = await agent.call(
            "/localstorage/sftp/download",
            download_cmd(ps, cache_path(ps), "/zs-bs-none/x.qcow2", sshPort=port),
        )
        assert not missing["success"]
        assert missing["error"].startswith(f"cannot copy sftp://root@127.0.0.1:{port}/zs-bs-none")
        assert missing["details"]["sshPort"] == port

        stranger = asyncssh.generate_private_key("ssh-ed25519")
        refused = await agent.call(
            "/localstorage/sftp/download",
            download_cmd(
                ps,
                cache_path(ps),
                remote,
                sshPort=port,
                sshKey=stranger.export_private_key().decode(),
            ),
        )
        assert not refused["success"]
        assert "cannot copy" in refused["error"]

    # A server whose key is not in known_hosts is not trusted.
    known.write_text("")
    async with InProcessAgent(
        tmp_path / "b", sftp_key_file=str(key_file), sftp_known_hosts=str(known)
    ) as agent:
        await init(agent, ps)
        dest3 = cache_path(ps)
        untrusted = await agent.call(
            "/localstorage/sftp/download", download_cmd(ps, dest3, remote, sshPort=port)
        )
        assert not untrusted["success"]
        assert "cannot copy" in untrusted["error"]
        assert not dest3.parent.exists() or list(dest3.parent.iterdir()) == []


async def test_nfs_primary_storage_downloads_and_merges_under_its_mount_path(
    agent: InProcessAgent, tmp_path: Path
) -> None:
    mount = tmp_path / "nfs"
    nfs = {"uuid": uuid.uuid4().hex, "mountPath": str(mount)}
    mounted = await agent.call("/nfsprimarystorage/mount", {"url": "nfs.example:/export", **nfs})
    assert mounted["success"], mounted
    image = tmp_path / "bs" / "img.qcow2"
    image.parent.mkdir()
    qemu_img("create", "-f", "qcow2", str(image), "16M")
    write(image, 0x42, 0)
    dest = cache_path(mount)
    cmd = download_cmd(mount, dest, str(image), **nfs)
    del cmd["storagePath"]
    got = await agent.call("/nfsprimarystorage/sftp/download", cmd)
    assert got["success"], got
    assert "availableCapacity" in got
    top = mount / "rootVolumes" / "v" / "top.qcow2"
    top.parent.mkdir(parents=True)
    layer(top, dest)
    merge = {"srcPath": str(dest), "destPath": str(top), "fullRebase": True, **nfs}
    merged = await agent.call("/nfsprimarystorage/offlinesnapshotmerge", merge)
    assert merged["success"], merged
    assert "backing-filename" not in info(top)
    assert reads(top, 0x42, 0)
    # Not mounted on this host: refused before any file is touched.
    other = {**merge, "uuid": uuid.uuid4().hex}
    refused = await agent.call("/nfsprimarystorage/offlinesnapshotmerge", other)
    assert "is not mounted on this host" in refused["error"]
