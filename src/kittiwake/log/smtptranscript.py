"""SMTP transcripts that know where the credentials and message data are.

Used by the SMTP server and the SMTP client alike: ``C`` lines are the
client's, ``S`` lines the server's. The transcript follows the session:

- ``AUTH <mechanism> <initial-response>``: the initial response is a
  credential (RFC 4954 §4);
- after ``AUTH``, every client line is a credential until the server sends
  a reply other than ``334`` (RFC 4954 §4: continuation and cancel ``*``);
- after a ``354`` reply to DATA (RFC 5321 §4.1.1.4), client lines are message
  data until the ``.`` line or the next server reply; below tracedata they
  are counted and written as one ``...(N bytes)`` line;
- drivers that read DATA or BDAT (RFC 3030) bodies in bulk pass them to
  :meth:`Transcript.data`.

Bad input never raises; anything the transcript cannot parse is logged as
it stands, except inside AUTH and DATA, where it stays hidden.
"""

from __future__ import annotations

import re

from kittiwake.log.levels import TRACE, TRACEDATA
from kittiwake.log.logger import Logger
from kittiwake.log.transcript import Direction, Kind, Part, Text, Transcript, to_bytes

# RFC 4954 §4: "AUTH" SP sasl-mech [SP initial-response]
_AUTH = re.compile(rb"^(\s*AUTH\s+\S+)(\s+)(.*)$", re.IGNORECASE | re.DOTALL)
_AUTH_VERB = re.compile(rb"^\s*AUTH(\s|$)", re.IGNORECASE)


class SMTPTranscript(Transcript):
    """Transcript of one SMTP session; call :meth:`client` and :meth:`server` for every line."""

    def __init__(self, logger: Logger) -> None:
        super().__init__(logger)
        self.in_auth = False
        self.in_data = False
        self._data_bytes = 0

    def client(self, line: Text, kind: Kind | None = None) -> None:
        """A line from the client, without CRLF. ``kind`` overrides the classification."""
        raw = to_bytes(line)
        if self.in_data:
            if raw == b".":
                self._end_data()
                self.parts(Direction.CLIENT, ((raw, Kind.PLAIN),))
                return
            self._data_line(raw)
            return
        if self.in_auth:
            # RFC 4954 §4: continuation responses (and "*" to cancel) are credentials.
            self.parts(Direction.CLIENT, ((raw, kind or Kind.AUTH),))
            return
        parts = self._classify_command(raw)
        if kind is not None:
            parts = [(raw, kind)]
        self.parts(Direction.CLIENT, parts)

    def server(self, line: Text) -> None:
        """A reply line from the server, without CRLF (multi-line replies line by line)."""
        raw = to_bytes(line)
        code = raw[:3]
        final = len(raw) == 3 or raw[3:4] != b"-"
        if self.in_data:
            self._end_data()
        if self.in_auth:
            # RFC 4954 §4: 334 asks for more; any other reply ends the exchange.
            if code != b"334" and final:
                self.in_auth = False
        elif code == b"354" and final:
            # RFC 5321 §4.1.1.4: the client now sends the message.
            self.in_data = True
            self._data_bytes = 0
        self.parts(Direction.SERVER, ((raw, Kind.PLAIN),))

    def _classify_command(self, raw: bytes) -> list[Part]:
        if not _AUTH_VERB.match(raw):
            return [(raw, Kind.PLAIN)]
        self.in_auth = True
        m = _AUTH.match(raw)
        if m is None or not m.group(3):
            return [(raw, Kind.PLAIN)]
        return [(m.group(1) + m.group(2), Kind.PLAIN), (m.group(3), Kind.AUTH)]

    def _data_line(self, raw: bytes) -> None:
        if self.logger.logger.isEnabledFor(int(TRACEDATA)):
            self.parts(Direction.CLIENT, ((raw, Kind.DATA),))
        else:
            self._data_bytes += len(raw) + 2  # with its CRLF

    def _end_data(self) -> None:
        """Leave DATA; below tracedata write the size of what was counted."""
        if self._data_bytes and self.logger.logger.isEnabledFor(int(TRACE)):
            self.logger.log(TRACE, f"C: ...({self._data_bytes} bytes)")
        self.in_data = False
        self._data_bytes = 0
