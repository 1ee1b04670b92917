"""NFS primary storage's contract: its Add API. Everything else is primary storage's."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from zstackpy.api.messages import ApiSpec
from zstackpy.services.primary_storage.messages import PRIMARY_STORAGE_TYPE, APIAddPrimaryStorageMsg

NFS_TYPE = "NFS"


class APIAddNfsPrimaryStorageMsg(APIAddPrimaryStorageMsg):
    """``url`` is the export, ``host:/path``; every host of the attached clusters mounts it
    at ``mountPath`` (default ``/opt/zstack/nfsprimarystorage/prim-<uuid>``)."""

    storage_type: ClassVar[str] = NFS_TYPE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="AddNfsPrimaryStorage",
        java_class="org.zstack.storage.primary.nfs.APIAddNfsPrimaryStorageMsg",
        method="POST",
        path="/primary-storage/nfs",
        body_key="params",
        result_java_class="org.zstack.header.storage.primary.APIAddPrimaryStorageEvent",
        creates=PRIMARY_STORAGE_TYPE,
        summary="Add NFS primary storage: one export mounted on every host of its clusters",
    )
    mount_path: str | None = Field(None, min_length=1, max_length=2048)

    def requested_mount_path(self) -> str | None:
        return self.mount_path
