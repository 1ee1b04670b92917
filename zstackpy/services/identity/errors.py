"""Identity error codes (ZStack's ID.1001 for a bad session; the others are ours)."""

from enum import StrEnum


class IdentityErr(StrEnum):
    INVALID_SESSION = "ID.1001"  # invalid or expired session: clients log in again
    PERMISSION_DENIED = "ID.1002"
    BAD_CREDENTIALS = "ID.1003"  # one text for a wrong name and a wrong password
    TOO_MANY_FAILED_LOGINS = "ID.1004"  # details.retry_after_s
    MISSING_SESSION = "ID.1005"
    ACCOUNT_NAME_TAKEN = "ID.1006"  # details.name
    ACCOUNT_UNDELETABLE = "ID.1007"  # a SystemAdmin account, or the caller's own
