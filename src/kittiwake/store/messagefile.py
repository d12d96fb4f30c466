"""A stored message's octets: a prefix kept in its row, then its file.

DESIGN.md "The mail path": the headers added at delivery (Received,
Authentication-Results, DKIM-Signature) are a prefix kept beside the body,
so the spooled body is moved into place by rename or hard link, never
copied. A message is therefore ``prefix + file``; every offset a reader uses
(the stored part tree's, IMAP's BODY[]<partial>) is in that whole, and the
size the store reports includes the prefix. Messages without a prefix
(APPEND, imports) are just their file.

Readers that take files from the store (IMAP FETCH streams spans of the file
to the socket) get a :class:`MessageFile` from
:meth:`kittiwake.store.account.AccountStore.message_files` and use
:meth:`MessageFile.read` for octets, or :meth:`MessageFile.file_spans` to
turn a span of the message into the prefix octets and the file span to copy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MessageFile"]


@dataclass(frozen=True, slots=True)
class MessageFile:
    """Where the octets of one stored message are: ``prefix`` then the file at ``path``."""

    path: Path
    prefix: bytes = b""

    def read(self, offset: int = 0, length: int = -1) -> bytes:
        """``length`` octets of the message from ``offset`` (-1: to the end); blocking.

        Short when the message ends earlier (or its file went away meanwhile).
        """
        p = len(self.prefix)
        head = b""
        if offset < p:
            head = self.prefix[offset:] if length < 0 else self.prefix[offset:offset + length]
            if 0 <= length <= len(head):
                return head
            length = length - len(head) if length >= 0 else -1
            offset = p
        try:
            with open(self.path, "rb") as f:
                if offset > p:
                    f.seek(offset - p)
                return head + f.read(length if length >= 0 else -1)
        except FileNotFoundError:
            return head

    def read_bytes(self) -> bytes:
        """The whole message (prefix and file)."""
        return self.read()

    def size(self) -> int:
        """The message's size in octets (prefix included); blocking."""
        return len(self.prefix) + os.stat(self.path).st_size

    def file_spans(self, offset: int, length: int) -> tuple[bytes, int, int]:
        """Split the message span (``offset``, ``length``) into (prefix octets, file
        offset, file length): the octets to send first, then the file span to copy."""
        p = len(self.prefix)
        head = self.prefix[offset:offset + length] if offset < p else b""
        file_offset = max(offset - p, 0)
        return head, file_offset, length - len(head)
