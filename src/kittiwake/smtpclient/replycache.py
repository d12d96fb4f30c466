"""Server replies read with a memory of the ones seen before (sans-I/O).

A server answers a session's commands with the same few reply lines again
and again (``250 2.1.0 Ok`` to MAIL, ``250 2.1.5 Ok`` to RCPT, ``354 ...`` to
DATA, ``250 ...`` to RSET); with PIPELINING (RFC 2920) several of them come
in one read. :class:`ReplyReader` hands complete single-line replies
(RFC 5321 §4.2: ``Reply-code SP textstring CRLF``) to a small cache of parsed
:class:`~kittiwake.smtp.Reply` values (they are immutable), and everything
else (multi-line replies, a line cut by the read, a malformed line) to the
general :class:`~kittiwake.smtp.ReplyParser`, with the same results and the
same errors.
"""

from __future__ import annotations

import functools

from kittiwake.smtp import Reply, ReplyParser, parse_reply

__all__ = ["ReplyReader"]


@functools.lru_cache(maxsize=512)
def _single(line: bytes) -> Reply:
    """The reply of one complete line (with its LF); MalformedReply as the parser."""
    return parse_reply(line)


class ReplyReader:
    """``feed(data)`` returns the replies ``data`` completes, as ReplyParser's ``feed``."""

    def __init__(self) -> None:
        self.parser = ReplyParser()

    @property
    def pending(self) -> bool:
        """Whether part of a reply has been received but not completed."""
        return self.parser.pending

    def feed(self, data: bytes) -> list[Reply]:
        if self.parser.pending or not data.endswith(b"\n"):
            return self.parser.feed(data)
        lines = data.split(b"\n")
        lines.pop()  # the empty rest after the last LF
        replies = []
        for n, line in enumerate(lines):
            # "ddd " (or just "ddd") ends a reply in its first line; "ddd-" goes on.
            if len(line) > 256 or line[3:4] == b"-":
                # Long or multi-line: the general parser from here on.
                return replies + self.parser.feed(b"\n".join(lines[n:]) + b"\n")
            replies.append(_single(line + b"\n"))
        return replies
