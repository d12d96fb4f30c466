"""The DATA stream: dot-stuffing (RFC 5321 §4.5.2) and its streaming decoder.

:class:`DataDecoder` finds the end of message (``CRLF.CRLF``), removes the
transparency dots and enforces, while streaming: the text line limit (RFC 5321
§4.5.3.1.6, 1000 octets including CRLF), the message size limit (RFC 1870)
and CRLF-only line ends. Bare CR or bare LF in message data are recorded as an
error and never end the message: ``\\n.\\n``, ``\\r.\\r``, ``\\n.\\r\\n`` and
similar sequences are data (SMTP smuggling defence). The work is done with
``bytes.find``/``count``/``replace`` on whole segments, not per-line loops.

:func:`dot_stuff` is the client side.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["DATA_TERMINATOR", "DataDecoder", "DataError", "dot_stuff"]

_END = b"\r\n.\r\n"
# RFC 5321 §4.1.1.4: the mail data is terminated by a line containing only ".".
DATA_TERMINATOR = b".\r\n"


class DataError(StrEnum):
    """Why a message was rejected after its data was read to the end."""

    LINE_TOO_LONG = "line-too-long"  # RFC 5321 §4.5.3.1.6
    BARE_LINE_ENDING = "bare-line-ending"  # RFC 5321 §2.3.8: CR and LF only as CRLF
    TOO_BIG = "too-big"  # RFC 1870 §6


def dot_stuff(data: bytes) -> bytes:
    """Apply RFC 5321 §4.5.2 transparency for sending with DATA.

    Every line starting with ``.`` gets another ``.``; the result ends with
    CRLF (one is added if missing). The caller then sends
    :data:`DATA_TERMINATOR` (``.\\r\\n``). Line endings are not otherwise
    changed: normalize bare CR/LF before calling if the data may contain them.
    """
    if data and not data.endswith(b"\r\n"):
        data += b"\r\n"
    if data.startswith(b"."):
        data = b"." + data
    return data.replace(b"\r\n.", b"\r\n..")


class DataDecoder:
    """Incremental decoder for the bytes following a ``354`` reply.

    Call :meth:`feed` with the unprocessed input; it returns (message bytes,
    number of input bytes consumed, finished). Unconsumed bytes (at most 4,
    a possible start of ``CRLF.CRLF``) must be passed again with more input.
    After an error the decoder keeps scanning for the end but returns no more
    message bytes; :attr:`error` tells why.
    """

    __slots__ = ("_cur", "_first", "error", "max_line", "max_size", "size")

    def __init__(self, *, max_line: int | None = 1000, max_size: int | None = None) -> None:
        self.max_line = max_line
        self.max_size = max_size
        self.size = 0  # message octets after unstuffing
        self.error: DataError | None = None
        self._first = True  # at the very start of the data (a line start)
        self._cur = 0  # length of the current partial line so far

    def feed(self, data: bytes | bytearray) -> tuple[bytes, int, bool]:
        n = len(data)
        if self._first:
            # The DATA command's CRLF is the CRLF of the end marker "CRLF.CRLF".
            if data[:3] == b".\r\n":
                return b"", 3, True
            if n < 3 and b".\r\n".startswith(bytes(data)):
                return b"", 0, False
        # One scan for "CRLF.": each hit is either the end marker or a line
        # starting with "." whose first dot is removed (RFC 5321 §4.5.2).
        dots: list[int] = []
        idx = -1
        pos = 0
        while True:
            i = data.find(b"\r\n.", pos)
            if i < 0:
                break
            nxt = data[i + 3 : i + 5]
            if nxt == b"\r\n":
                idx = i
                break
            if len(nxt) < 2 and b"\r\n".startswith(nxt):
                break  # possible end marker cut off by the end of the input
            dots.append(i + 2)
            pos = i + 3
        if idx >= 0:
            cut = idx + 2
            consumed = idx + 5
            done = True
        else:
            keep = 0
            for k in (4, 3, 2, 1):
                if n >= k and data[n - k :] == _END[:k]:
                    keep = k
                    break
            cut = consumed = n - keep
            done = False
        if consumed == 0:
            return b"", 0, False
        start = 0
        if self._first:
            self._first = False
            if data[:1] == b".":
                start = 1
        if dots:
            pieces = []
            for d in dots:
                if d >= cut:
                    break
                pieces.append(data[start:d])
                start = d + 1
            pieces.append(data[start:cut])
            seg = b"".join(pieces)
        else:
            seg = bytes(data[start:cut])
        return self._process(seg), consumed, done

    def _process(self, seg: bytes) -> bytes:
        # Segments never end in CR or CRLF (held back above), so line ends and
        # "CRLF." never straddle two segments.
        if self.error is not None:
            return b""
        # RFC 5321 §2.3.8: CR and LF only occur together as CRLF in the data.
        crlf = seg.count(b"\r\n")
        if seg.count(b"\n") != crlf or seg.count(b"\r") != crlf:
            self.error = DataError.BARE_LINE_ENDING
            return b""
        self.size += len(seg)
        if self.max_size is not None and self.size > self.max_size:
            self.error = DataError.TOO_BIG
            return b""
        if self.max_line is not None and self._line_too_long(seg):
            self.error = DataError.LINE_TOO_LONG
            return b""
        return seg

    def _line_too_long(self, seg: bytes) -> bool:
        limit = self.max_line
        assert limit is not None
        first = seg.find(b"\n")
        if first < 0:
            self._cur += len(seg)
            # The CRLF still to come counts too.
            return self._cur + 2 > limit
        if self._cur + first + 1 > limit:
            return True
        last = seg.rfind(b"\n")
        # Every line must end within `limit` octets of the previous line end: jump
        # from newline to the furthest newline in reach (few steps per MB, in C).
        pos = first
        while pos < last:
            nxt = seg.rfind(b"\n", pos + 1, pos + limit + 1)
            if nxt < 0:
                return True
            pos = nxt
        self._cur = len(seg) - last - 1
        return self._cur + 2 > limit
