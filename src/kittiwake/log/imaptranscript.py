"""IMAP transcripts that know where the credentials and message data are.

Feed what was read or written in wire units, in order: a line without its
CRLF, or literal bytes. A literal may also be passed together with the rest
of its line (``b"user {6}"`` after ``a1 LOGIN {4}``): while a literal is
announced, the first bytes of the next input are taken as the literal. After
a literal, pass the rest of the command line (even when empty) before the
next command. :meth:`IMAPTranscript.feed` splits a raw buffer instead.

Credentials (hidden below traceauth):

- ``tag LOGIN userid password``: the password (RFC 9051 §6.2.3), as atom,
  quoted string or literal (RFC 9051 §4.3);
- ``tag AUTHENTICATE mechanism initial-response``: the initial response
  (RFC 4959 SASL-IR), and every client line after it until the server's
  tagged response (RFC 9051 §6.2.2: continuations after ``+``, cancel ``*``).

Message data (hidden below tracedata): APPEND literals after the mailbox
(RFC 9051 §6.3.12, also literal8 and CATENATE parts) and every literal the
server sends (FETCH body sections, RFC 9051 §7.5.2).

Bad input never raises. A literal the server refuses (a tagged response to
the command before the literal came) is forgotten.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kittiwake.log.logger import Logger
from kittiwake.log.transcript import Direction, Kind, Part, Text, Transcript, to_bytes

# RFC 9051 §4.3 / RFC 7888: literal = "{" number64 ["+"] "}" CRLF; literal8 = "~{" ...
_LITERAL = re.compile(rb"~?\{([0-9]{1,19})\+?\}")
_SERVER_LITERAL = re.compile(rb"~?\{([0-9]{1,19})\}$")
_ATOM_END = b' ()"'
_SECRET_COMMANDS = (b"LOGIN", b"AUTHENTICATE")


@dataclass
class _Command:
    """The client command being read (it may span lines through literals)."""

    tag: bytes = b""
    name: bytes = b""
    arg: int = 0  # index of the next top-level argument (0 is the tag)
    depth: int = 0  # open parentheses
    literal: int = 0  # literal bytes still to come
    open: bool = False  # a literal was announced: the command goes on after it
    literal_kind: Kind = Kind.PLAIN


@dataclass
class _Server:
    literal: int = 0
    continuing: bool = False  # the rest of a response line follows a literal


class IMAPTranscript(Transcript):
    """Transcript of one IMAP session (server or client side)."""

    def __init__(self, logger: Logger) -> None:
        super().__init__(logger)
        self._cmd: _Command | None = None  # a command continues after a literal
        self._srv = _Server()
        self.auth_tag: bytes | None = None  # AUTHENTICATE exchange in progress
        self._buffers: dict[Direction, bytes] = {Direction.CLIENT: b"", Direction.SERVER: b""}

    # -- client ---------------------------------------------------------------

    def client(self, data: Text) -> None:
        """A client line (without CRLF), literal bytes, or a literal plus the rest of its line."""
        raw = to_bytes(data)
        parts: list[Part] = []
        cmd = self._cmd
        if cmd is not None and cmd.literal:
            take = min(cmd.literal, len(raw))
            parts.append((raw[:take], cmd.literal_kind))
            cmd.literal -= take
            raw = raw[take:]
            if cmd.literal:
                self.parts(Direction.CLIENT, parts)
                return
            if cmd.depth == 0:
                cmd.arg += 1
            if not raw:
                self.parts(Direction.CLIENT, parts)  # rest of the line comes next
                return
        elif cmd is None and self.auth_tag is not None:
            # RFC 9051 §6.2.2: client lines during AUTHENTICATE are SASL responses.
            self.parts(Direction.CLIENT, ((raw, Kind.AUTH),))
            return
        if cmd is None:
            cmd = _Command()
        cmd.open = False
        parts.extend(self._scan(cmd, raw))
        if cmd.open:
            self._cmd = cmd
        else:
            self._cmd = None
            if cmd.name == b"AUTHENTICATE":
                self.auth_tag = cmd.tag
        self.parts(Direction.CLIENT, parts)

    def _kind(self, cmd: _Command, literal: bool) -> Kind:
        if cmd.name in _SECRET_COMMANDS and cmd.arg >= 3:
            return Kind.AUTH  # LOGIN's password, AUTHENTICATE's initial response
        if cmd.name == b"APPEND" and cmd.arg >= 3 and literal:
            return Kind.DATA  # the message (the mailbox is argument 2)
        return Kind.PLAIN

    def _scan(self, cmd: _Command, line: bytes) -> list[Part]:
        """Split (the rest of) a command line into parts; note a literal announced at its end."""
        parts: list[Part] = []
        plain_from = 0
        i, n = 0, len(line)
        while i < n:
            c = line[i]
            if c <= 0x20 or c == 0x7F:  # SP, and leniently TAB and other CTLs
                i += 1
                continue
            if c == 0x28:  # "("
                cmd.depth += 1
                i += 1
                continue
            if c == 0x29:  # ")"
                if cmd.depth > 0:
                    cmd.depth -= 1
                    if cmd.depth == 0:
                        cmd.arg += 1
                i += 1
                continue
            m = _LITERAL.fullmatch(line, i)
            if m is not None:
                # RFC 9051 §4.3: the announcement ends the line; the octets follow.
                cmd.literal = int(m.group(1))
                cmd.open = True
                cmd.literal_kind = self._kind(cmd, literal=True)
                if cmd.literal == 0 and cmd.depth == 0:
                    cmd.arg += 1
                break
            unterminated = False
            if c == 0x22:  # quoted string, RFC 9051 §4.3
                j = i + 1
                while j < n and line[j] != 0x22:
                    j += 2 if line[j] == 0x5C else 1
                unterminated = j >= n
                j = min(j + 1, n)
            else:
                j = i + 1
                while j < n and line[j] > 0x20 and line[j] != 0x7F and line[j] not in _ATOM_END:
                    j += 1
            token = line[i:j]
            if cmd.arg == 0 and cmd.depth == 0:
                cmd.tag = token
            elif cmd.arg == 1 and cmd.depth == 0:
                cmd.name = token.upper()
            kind = self._kind(cmd, literal=False)
            if unterminated and cmd.name in _SECRET_COMMANDS:
                kind = Kind.AUTH  # a broken quote may have swallowed the password
            if kind is not Kind.PLAIN:
                parts.append((line[plain_from:i], Kind.PLAIN))
                parts.append((token, kind))
                plain_from = j
            if cmd.depth == 0:
                cmd.arg += 1
            i = j
        if plain_from < n:
            parts.append((line[plain_from:], Kind.PLAIN))
        return parts

    # -- server ---------------------------------------------------------------

    def server(self, data: Text) -> None:
        """A server line (without CRLF), literal bytes, or a literal plus the rest of its line."""
        raw = to_bytes(data)
        srv = self._srv
        parts: list[Part] = []
        if srv.literal:
            take = min(srv.literal, len(raw))
            parts.append((raw[:take], Kind.DATA))  # RFC 9051 §7.5.2: body section data
            srv.literal -= take
            raw = raw[take:]
            if srv.literal or not raw:
                srv.continuing = srv.literal == 0
                self.parts(Direction.SERVER, parts)
                return
        elif not srv.continuing:
            self._response_start(raw)
        srv.continuing = False
        m = _SERVER_LITERAL.search(raw)
        if m is not None:
            srv.literal = int(m.group(1))
            srv.continuing = srv.literal == 0
        parts.append((raw, Kind.PLAIN))
        self.parts(Direction.SERVER, parts)

    def _response_start(self, raw: bytes) -> None:
        tag = raw.split(b" ", 1)[0]
        if tag in (b"*", b"+"):
            if raw[:6].upper() == b"* BYE " or raw.upper() == b"* BYE":
                self.auth_tag = None
            return
        if self.auth_tag is not None and tag == self.auth_tag:
            self.auth_tag = None  # RFC 9051 §6.2.2: the tagged response ends the exchange
        if self._cmd is not None and tag == self._cmd.tag:
            self._cmd = None  # RFC 9051 §4.3: the server refused the literal

    # -- raw buffers ----------------------------------------------------------

    def feed(self, direction: Direction | str, buf: Text) -> None:
        """Log a raw buffer as read or written (CRLF-terminated lines and literals).

        An incomplete last line is kept until the next call.
        """
        d = Direction(direction)
        handle = self.client if d is Direction.CLIENT else self.server
        data = self._buffers[d] + to_bytes(buf)
        while data:
            pending = self._pending_literal(d)
            if pending:
                take = min(pending, len(data))
                handle(data[:take])
                data = data[take:]
                continue
            end = data.find(b"\r\n")
            if end < 0:
                break
            handle(data[:end])
            data = data[end + 2:]
        self._buffers[d] = data

    def _pending_literal(self, d: Direction) -> int:
        if d is Direction.SERVER:
            return self._srv.literal
        return self._cmd.literal if self._cmd is not None else 0
