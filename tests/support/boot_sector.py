"""A 512-byte x86 boot sector, assembled here as bytes, for tests that boot a real guest.

The BIOS loads it at 0x7c00 and jumps to it in 16-bit real mode. It writes ``BOOT_LINE``
to the first serial port (COM1, I/O port 0x3f8), so a guest that really ran is seen in
the domain's console log. Then it does what an OS's ACPI code does for PCI hot-unplug on
QEMU's i440fx machine: on every timer tick it reads the slots QEMU asks to remove (the
ACPI PCI hotplug registers at 0xae00) and ejects them, so a data disk can be detached from
the running guest for real (without an OS answering, QEMU keeps the device).
"""

from __future__ import annotations

BOOT_LINE = b"zstackpy guest booted"
SECTOR = 512

# offset: bytes        instruction
_PRINT = bytes.fromhex(
    "31c0"  # 0: xor ax, ax
    "8ed8"  # 2: mov ds, ax                 the message is addressed from segment 0
    "fc"  # 4: cld
    "baf803"  # 5: mov dx, 0x3f8             COM1's transmit register
    "be2e7c"  # 8: mov si, 0x7c2e            the message, at offset 46
    "ac"  # 11: lodsb                       print: al = next byte
    "84c0"  # 12: test al, al
    "7403"  # 14: jz 19                     the NUL ends it
    "ee"  # 16: out dx, al
    "ebf8"  # 17: jmp 11
)
_ACK_UNPLUG = bytes.fromhex(
    "ba10ae"  # 19: mov dx, 0xae10           hotplug bus select: the root bus (0)
    "6631c0"  # 22: xor eax, eax
    "66ef"  # 25: out dx, eax
    "fb"  # 27: sti                         wait: the BIOS timer wakes hlt 18 times a second
    "f4"  # 28: hlt
    "ba04ae"  # 29: mov dx, 0xae04           slots QEMU wants removed
    "66ed"  # 32: in eax, dx
    "6685c0"  # 34: test eax, eax
    "74f4"  # 37: jz 27
    "ba08ae"  # 39: mov dx, 0xae08           eject them
    "66ef"  # 42: out dx, eax
    "ebed"  # 44: jmp 27
)
_IDLE = bytes.fromhex(
    "fb"  # 19: sti
    "f4"  # 20: hlt
    "ebfc"  # 21: jmp 19                     unplug requests are never answered
)
_MESSAGE_OFFSET = 46


def boot_sector(*, ack_unplug: bool = True) -> bytes:
    """The sector: code, the message (CR LF, NUL-terminated), zeros, the 0x55 0xaa mark.
    ``ack_unplug=False``: a guest that ignores hot-unplug, as one without an OS does."""
    code = _PRINT + (_ACK_UNPLUG if ack_unplug else _IDLE)
    code += b"\x90" * (_MESSAGE_OFFSET - len(code))  # nop up to the message
    body = code + BOOT_LINE + b"\r\n\x00"
    return body + bytes(SECTOR - 2 - len(body)) + b"\x55\xaa"
