"""SMTP command line parsing (RFC 5321 §4.1.1) with the extension commands.

:func:`parse_command` turns one command line (without its CRLF) into a typed
command, or raises :class:`CommandError` carrying the reply to send (500/501/
553/555 with RFC 3463 enhanced codes). Verbs are case-insensitive (RFC 5321
§2.4). Covered: EHLO/HELO, MAIL/RCPT with parameters (see ``params``), DATA,
BDAT (RFC 3030), RSET, NOOP, QUIT, VRFY, EXPN, HELP, STARTTLS (RFC 3207) and
AUTH (RFC 4954). Sequencing and which extensions are enabled are the
session's business, not the parser's.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import TypeAlias

from kittiwake.smtp.address import (
    Address,
    AddressError,
    AddressTooLong,
    DisallowedDomain,
    NonASCIIAddress,
    parse_path,
)
from kittiwake.smtp.params import (
    MailParams,
    ParamError,
    RcptParams,
    parse_mail_params,
    parse_rcpt_params,
)
from kittiwake.smtp.reply import Reply

__all__ = [
    "AuthCommand",
    "BdatCommand",
    "Command",
    "CommandError",
    "DataCommand",
    "EhloCommand",
    "ExpnCommand",
    "HeloCommand",
    "HelpCommand",
    "MailCommand",
    "NoopCommand",
    "QuitCommand",
    "RcptCommand",
    "RsetCommand",
    "StartTLSCommand",
    "VrfyCommand",
    "decode_base64_line",
    "parse_command",
]


class CommandError(ValueError):
    """A command line that cannot be accepted, with the reply for the client."""

    def __init__(self, reply: Reply, verb: str = "") -> None:
        super().__init__(reply.text)
        self.reply = reply
        self.verb = verb


@dataclass(frozen=True, slots=True)
class EhloCommand:
    name: str  # the client's domain or address literal, as sent


@dataclass(frozen=True, slots=True)
class HeloCommand:
    name: str


@dataclass(frozen=True, slots=True)
class MailCommand:
    path: Address | None  # None: null reverse-path <>
    params: MailParams


@dataclass(frozen=True, slots=True)
class RcptCommand:
    path: Address
    params: RcptParams


@dataclass(frozen=True, slots=True)
class DataCommand:
    pass


@dataclass(frozen=True, slots=True)
class BdatCommand:
    size: int
    last: bool


@dataclass(frozen=True, slots=True)
class RsetCommand:
    pass


@dataclass(frozen=True, slots=True)
class NoopCommand:
    pass


@dataclass(frozen=True, slots=True)
class QuitCommand:
    pass


@dataclass(frozen=True, slots=True)
class VrfyCommand:
    argument: str


@dataclass(frozen=True, slots=True)
class ExpnCommand:
    argument: str


@dataclass(frozen=True, slots=True)
class HelpCommand:
    argument: str | None


@dataclass(frozen=True, slots=True)
class StartTLSCommand:
    pass


@dataclass(frozen=True, slots=True)
class AuthCommand:
    mechanism: str  # upper case
    initial: bytes | None  # decoded initial response; b"" for "="; None if absent


Command: TypeAlias = (
    EhloCommand | HeloCommand | MailCommand | RcptCommand | DataCommand | BdatCommand
    | RsetCommand | NoopCommand | QuitCommand | VrfyCommand | ExpnCommand | HelpCommand
    | StartTLSCommand | AuthCommand
)

# RFC 4954 §4 / RFC 4422 §3.1: sasl-mech = 1*20 (UPPER-ALPHA / DIGIT / "-" / "_")
_MECH_RE = re.compile(r"[A-Za-z0-9_-]{1,20}")
_BASE64_RE = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_NAME_RE = re.compile(r"[\x21-\x7e]+")


def _syntax(text: str, code: int = 501, enhanced: str = "5.5.4") -> CommandError:
    return CommandError(Reply(code, enhanced, (text,)))


def decode_base64_line(text: str) -> bytes:
    """Decode one SASL base64 line strictly (RFC 4954 §4); raises ValueError."""
    if _BASE64_RE.fullmatch(text) is None or len(text) % 4 != 0:
        raise ValueError("invalid base64")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValueError("invalid base64") from e


def _no_args(verb: str, rest: str) -> None:
    if rest:
        raise _syntax(f"{verb} takes no arguments")


def _path_end(s: str, start: int) -> int:
    """Index just after the ``>`` closing the path at ``s[start]``, honouring quotes."""
    i = start + 1
    quoted = False
    n = len(s)
    while i < n:
        c = s[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c == ">":
            return i + 1
        i += 1
    return -1


def _address_error(e: AddressError, *, sender: bool) -> CommandError:
    if isinstance(e, NonASCIIAddress):
        # RFC 6531 §3.7.4.1: 553 5.6.7 non-ASCII addresses not permitted.
        return CommandError(Reply(553, "5.6.7", ("non-ASCII address requires SMTPUTF8",)))
    # RFC 3463: X.1.7 bad sender's address syntax, X.1.3 bad destination syntax.
    enhanced = "5.1.7" if sender else "5.1.3"
    what = "sender" if sender else "recipient"
    if isinstance(e, DisallowedDomain):
        # RFC 5321 §4.2.2: 553 mailbox name not allowed; the name is well
        # formed but IDNA 2008 refuses its domain (RFC 5891 §5.4).
        return CommandError(Reply(553, enhanced, (f"{what} domain not allowed: {e}",)))
    if isinstance(e, AddressTooLong):
        return CommandError(Reply(501, enhanced, (f"{what} path too long: {e}",)))
    return CommandError(Reply(501, enhanced, (f"bad {what} address syntax: {e}",)))


def _split_path_params(rest: str, keyword: str, verb: str) -> tuple[str, int, str]:
    """Check ``FROM:``/``TO:`` and locate the path; return (text, path start, params)."""
    if rest[: len(keyword)].upper() != keyword:
        raise _syntax(f"syntax: {verb} {keyword}<address>")
    i = len(keyword)
    # Tolerated: a space between the colon and the path (common, not RFC 5321).
    while i < len(rest) and rest[i] == " ":
        i += 1
    if i >= len(rest) or rest[i] != "<":
        raise _syntax(f"syntax: {verb} {keyword}<address>", 501, "5.5.4")
    end = _path_end(rest, i)
    if end < 0:
        raise _syntax(f"syntax: {verb} {keyword}<address>: missing '>'")
    params = rest[end:]
    if params and params[0] != " ":
        raise _syntax("expected space before parameters")
    return rest, i, params.strip(" ")


def parse_command(line: bytes, *, smtputf8: bool = False, rcpt_utf8: bool = False) -> Command:
    """Parse one command line (CRLF removed).

    ``smtputf8``: the SMTPUTF8 extension is offered, so MAIL FROM with the
    SMTPUTF8 parameter may carry a UTF-8 address. ``rcpt_utf8``: the current
    transaction's MAIL FROM had SMTPUTF8, so RCPT TO may be UTF-8.
    Raises :class:`CommandError` with the reply to send.
    """
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise CommandError(Reply(500, "5.5.2", ("invalid UTF-8 in command",))) from None
    # str.isprintable is False for every control character (and for some non-ASCII
    # ones, which the exact test below lets through).
    if not text.isprintable() and any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise CommandError(Reply(500, "5.5.2", ("control character in command",)))
    verb, _, rest = text.partition(" ")
    uverb = verb.upper()
    if not uverb.isascii():
        raise CommandError(Reply(500, "5.5.1", ("command not recognized",)))
    try:
        return _parse(uverb, rest, text, smtputf8=smtputf8, rcpt_utf8=rcpt_utf8)
    except CommandError as e:
        e.verb = uverb
        raise


def _parse(uverb: str, rest: str, text: str, *, smtputf8: bool, rcpt_utf8: bool) -> Command:
    if not text.isascii() and uverb not in ("MAIL", "RCPT"):
        # RFC 6531 §3.3: only addresses (and some parameters) may be UTF-8.
        raise CommandError(Reply(500, "5.5.2", ("non-ASCII characters in command",)))
    if uverb in ("EHLO", "HELO"):
        name = rest.strip(" ")
        # RFC 5321 §4.1.1.1: Domain or address-literal. Accept any printable
        # token (real clients send "localhost", underscores, ...).
        if not name:
            raise _syntax(f"{uverb} requires a domain or address literal")
        if _NAME_RE.fullmatch(name) is None:
            raise _syntax(f"{uverb}: invalid domain {name[:60]!r}")
        return EhloCommand(name) if uverb == "EHLO" else HeloCommand(name)
    if uverb == "MAIL":
        _, start, ptext = _split_path_params(rest, "FROM:", "MAIL")
        try:
            params = parse_mail_params(ptext)
        except ParamError as e:
            raise CommandError(e.reply) from None
        try:
            path, _ = parse_path(rest, start, smtputf8=smtputf8 and params.smtputf8,
                                 null_ok=True)
        except AddressError as e:
            raise _address_error(e, sender=True) from None
        return MailCommand(path, params)
    if uverb == "RCPT":
        _, start, ptext = _split_path_params(rest, "TO:", "RCPT")
        try:
            params_r = parse_rcpt_params(ptext)
        except ParamError as e:
            raise CommandError(e.reply) from None
        try:
            rpath, _ = parse_path(rest, start, smtputf8=rcpt_utf8, postmaster_ok=True)
        except AddressError as e:
            raise _address_error(e, sender=False) from None
        assert rpath is not None
        return RcptCommand(rpath, params_r)
    if uverb == "DATA":
        _no_args(uverb, rest)
        return DataCommand()
    if uverb == "BDAT":
        # RFC 3030 §2: bdat-cmd ::= "BDAT" SP chunk-size [ SP end-marker ] CR LF
        parts = rest.split(" ")
        if not 1 <= len(parts) <= 2 or not (parts[0].isascii() and parts[0].isdigit()):
            raise _syntax("syntax: BDAT size [LAST]")
        if len(parts[0]) > 20:
            raise _syntax("BDAT chunk size too large")
        if len(parts) == 2 and parts[1].upper() != "LAST":
            raise _syntax("syntax: BDAT size [LAST]")
        return BdatCommand(int(parts[0]), len(parts) == 2)
    if uverb == "RSET":
        _no_args(uverb, rest)
        return RsetCommand()
    if uverb == "NOOP":
        return NoopCommand()  # RFC 5321 §4.1.1.9: a parameter string may be given
    if uverb == "QUIT":
        _no_args(uverb, rest)
        return QuitCommand()
    if uverb in ("VRFY", "EXPN"):
        arg = rest.strip(" ")
        if not arg:
            raise _syntax(f"{uverb} requires an argument")
        return VrfyCommand(arg) if uverb == "VRFY" else ExpnCommand(arg)
    if uverb == "HELP":
        return HelpCommand(rest.strip(" ") or None)
    if uverb == "STARTTLS":
        _no_args(uverb, rest)
        return StartTLSCommand()
    if uverb == "AUTH":
        parts = rest.split(" ")
        if not 1 <= len(parts) <= 2 or _MECH_RE.fullmatch(parts[0]) is None:
            raise _syntax("syntax: AUTH mechanism [initial-response]")
        initial: bytes | None = None
        if len(parts) == 2:
            # RFC 4954 §4: "=" is an empty initial response.
            if parts[1] == "=":
                initial = b""
            else:
                try:
                    initial = decode_base64_line(parts[1])
                except ValueError:
                    raise _syntax("invalid base64 in initial response", 501, "5.5.2") from None
        return AuthCommand(parts[0].upper(), initial)
    # RFC 5321 §4.2.4: 500 for unrecognized commands.
    raise CommandError(Reply(500, "5.5.1", ("command not recognized",)))
