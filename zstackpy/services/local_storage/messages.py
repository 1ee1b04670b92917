"""Local storage's contract: its Add API. Everything else is primary storage's."""

from __future__ import annotations

from typing import ClassVar

from zstackpy.api.messages import ApiSpec
from zstackpy.services.primary_storage.messages import PRIMARY_STORAGE_TYPE, APIAddPrimaryStorageMsg

LOCAL_STORAGE_TYPE = "LocalStorage"


class APIAddLocalPrimaryStorageMsg(APIAddPrimaryStorageMsg):
    """``url`` is the directory on every host of the attached clusters (``/zstack_ps``)."""

    storage_type: ClassVar[str] = LOCAL_STORAGE_TYPE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="AddLocalPrimaryStorage",
        java_class="org.zstack.storage.primary.local.APIAddLocalPrimaryStorageMsg",
        method="POST",
        path="/primary-storage/local-storage",
        body_key="params",
        result_java_class="org.zstack.header.storage.primary.APIAddPrimaryStorageEvent",
        creates=PRIMARY_STORAGE_TYPE,
        summary="Add local primary storage: a directory on each host's own disk",
    )
