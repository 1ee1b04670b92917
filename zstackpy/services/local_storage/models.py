"""Tables of the local storage domain: none of its own. A host's books of a local storage
(``LocalStorageHostRefVO``) live in ``primary_storage.models``, next to the storage whose
totals they sum, because both change in one transaction."""
