"""Tables of the NFS primary storage domain: none; an NFS storage is a PrimaryStorageVO
row whose ``url`` is the export and ``mount_path`` where hosts mount it."""
