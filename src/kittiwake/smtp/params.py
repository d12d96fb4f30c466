"""MAIL FROM and RCPT TO parameters (RFC 5321 §4.1.2 esmtp-param).

Parsed into typed values: SIZE (RFC 1870), BODY (RFC 6152, RFC 3030),
SMTPUTF8 (RFC 6531), REQUIRETLS (RFC 8689), AUTH= (RFC 4954 §5) and the DSN
parameters RET, ENVID, NOTIFY, ORCPT (RFC 3461 §4), with xtext decoding
(RFC 3461 §4) and the utf-8-addr forms of ORCPT (RFC 6533 §3). Whether an
extension is enabled in the session is checked by the server, not here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from kittiwake.smtp.reply import Reply

__all__ = [
    "Body",
    "MailParams",
    "Notify",
    "ORcpt",
    "ParamError",
    "RcptParams",
    "Ret",
    "parse_mail_params",
    "parse_rcpt_params",
    "xtext_decode",
    "xtext_encode",
]

# RFC 5321 §4.1.2: esmtp-keyword and esmtp-value.
_KEYWORD_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_VALUE_RE = re.compile(r"[\x21-\x3c\x3e-\x7e\u0080-\U0010ffff]+")
# RFC 3461 §4: xtext = *( xchar / hexchar ), hexchar = "+" 2HEXCHAR (upper case).
_XTEXT_RE = re.compile(r"(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*")


class Body(StrEnum):
    """RFC 6152 / RFC 3030 BODY= values."""

    SEVEN_BIT = "7BIT"
    EIGHT_BIT_MIME = "8BITMIME"
    BINARYMIME = "BINARYMIME"


class Ret(StrEnum):
    """RFC 3461 §4.3 RET= values."""

    FULL = "FULL"
    HDRS = "HDRS"


class Notify(StrEnum):
    """RFC 3461 §4.1 NOTIFY= values."""

    NEVER = "NEVER"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    DELAY = "DELAY"


class ParamError(ValueError):
    """A parameter problem, with the reply the server should send."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.text)
        self.reply = reply


def _unknown(keyword: str) -> ParamError:
    # RFC 5321 §4.2.3: 555 MAIL FROM/RCPT TO parameters not recognized or not implemented.
    return ParamError(Reply(555, "5.5.4", (f"unsupported parameter {keyword}",)))


def _bad(text: str) -> ParamError:
    return ParamError(Reply(501, "5.5.4", (text,)))


def xtext_decode(value: str) -> str:
    """Decode RFC 3461 §4 xtext; raises ValueError on invalid xtext."""
    if _XTEXT_RE.fullmatch(value) is None:
        raise ValueError(f"invalid xtext {value!r}")
    if "+" not in value:
        return value
    out = bytearray()
    i = 0
    while i < len(value):
        if value[i] == "+":
            out.append(int(value[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(ord(value[i]))
            i += 1
    return out.decode("utf-8", errors="replace")


def xtext_encode(value: str) -> str:
    """Encode text as RFC 3461 §4 xtext (UTF-8 octets outside xchar as ``+HH``)."""
    out = []
    for b in value.encode("utf-8"):
        if 33 <= b <= 126 and b not in (0x2B, 0x3D):
            out.append(chr(b))
        else:
            out.append(f"+{b:02X}")
    return "".join(out)


def _utf8_addr_decode(value: str) -> str:
    """RFC 6533 §3: utf-8-addr-xtext / utf-8-addr-unitext with ``\\x{HEX}`` escapes."""
    text = xtext_decode(value) if "+" in value else value

    def unescape(m: re.Match[str]) -> str:
        v = int(m.group(1), 16)
        if 0xD800 <= v <= 0xDFFF:
            raise ValueError("surrogate in utf-8-addr")
        return chr(v)

    try:
        return re.sub(r"\\x\{([0-9A-Fa-f]{1,6})\}", unescape, text)
    except (ValueError, OverflowError) as e:
        raise ValueError(f"invalid utf-8-addr {value!r}") from e


@dataclass(frozen=True, slots=True)
class MailParams:
    """Parameters of MAIL FROM. Unset ones are None / False."""

    size: int | None = None  # RFC 1870 §3: declared message size in octets
    body: Body | None = None  # RFC 6152 §2 / RFC 3030 §3
    smtputf8: bool = False  # RFC 6531 §3.4
    requiretls: bool = False  # RFC 8689 §4.1
    auth: str | None = None  # RFC 4954 §5: decoded AUTH= mailbox, "<>" if unknown
    ret: Ret | None = None  # RFC 3461 §4.3
    envid: str | None = None  # RFC 3461 §4.4, decoded from xtext

    def format(self) -> str:
        """Wire form for a client's MAIL FROM (``" SIZE=10 BODY=8BITMIME"``, or "")."""
        out = []
        if self.size is not None:
            out.append(f"SIZE={self.size}")
        if self.body is not None:
            out.append(f"BODY={self.body}")
        if self.smtputf8:
            out.append("SMTPUTF8")
        if self.requiretls:
            out.append("REQUIRETLS")
        if self.auth is not None:
            out.append(f"AUTH={xtext_encode(self.auth)}")
        if self.ret is not None:
            out.append(f"RET={self.ret}")
        if self.envid is not None:
            out.append(f"ENVID={xtext_encode(self.envid)}")
        return "".join(" " + p for p in out)


@dataclass(frozen=True, slots=True)
class ORcpt:
    """RFC 3461 §4.2 ORCPT: address type (e.g. ``rfc822``, ``utf-8``) and decoded address."""

    addr_type: str
    address: str


@dataclass(frozen=True, slots=True)
class RcptParams:
    """Parameters of RCPT TO. Unset ones are None."""

    notify: frozenset[Notify] | None = None  # RFC 3461 §4.1
    orcpt: ORcpt | None = None  # RFC 3461 §4.2

    def format(self) -> str:
        """Wire form for a client's RCPT TO (``" NOTIFY=FAILURE,DELAY"``, or "")."""
        out = []
        if self.notify is not None:
            order = list(Notify)
            out.append("NOTIFY=" + ",".join(sorted(self.notify, key=order.index)))
        if self.orcpt is not None:
            # RFC 6533 §3: utf-8 addresses may be sent as utf-8-addr-xtext.
            out.append(f"ORCPT={self.orcpt.addr_type};{_orcpt_encode(self.orcpt)}")
        return "".join(" " + p for p in out)


def _orcpt_encode(orcpt: ORcpt) -> str:
    if orcpt.addr_type == "utf-8":
        # RFC 6533 §3: non-ASCII as \x{HEX}, then xtext for the rest.
        esc = "".join(c if c.isascii() and c != "\\" else f"\\x{{{ord(c):X}}}"
                      for c in orcpt.address)
        return xtext_encode(esc)
    return xtext_encode(orcpt.address)


def _split(text: str) -> list[tuple[str, str | None]]:
    """Split ``KEY[=VALUE] KEY[=VALUE]...`` (single spaces; tolerate extra spaces)."""
    out: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    for item in text.split(" "):
        if not item:
            continue
        key, eq, value = item.partition("=")
        if _KEYWORD_RE.fullmatch(key) is None:
            raise _bad(f"invalid parameter {item[:40]!r}")
        if eq and _VALUE_RE.fullmatch(value) is None:
            raise _bad(f"invalid value for parameter {key.upper()}")
        ukey = key.upper()
        if ukey in seen:
            raise _bad(f"duplicate parameter {ukey}")
        seen.add(ukey)
        out.append((ukey, value if eq else None))
    return out


def _flag(key: str, value: str | None) -> bool:
    if value is not None:
        raise _bad(f"parameter {key} takes no value")
    return True


def _needs(key: str, value: str | None) -> str:
    if value is None:
        raise _bad(f"parameter {key} needs a value")
    return value


def parse_mail_params(text: str) -> MailParams:
    """Parse the parameters after the reverse-path; raises ParamError."""
    size: int | None = None
    body: Body | None = None
    smtputf8 = requiretls = False
    auth = envid = None
    ret: Ret | None = None
    for key, value in _split(text):
        if key == "SIZE":
            v = _needs(key, value)
            # RFC 1870 §5: size-value ::= 1*20DIGIT
            if not (v.isascii() and v.isdigit()) or len(v) > 20:
                raise _bad("invalid SIZE value")
            size = int(v)
        elif key == "BODY":
            try:
                body = Body(_needs(key, value).upper())
            except ValueError:
                raise _bad("BODY must be 7BIT, 8BITMIME or BINARYMIME") from None
        elif key == "SMTPUTF8":
            smtputf8 = _flag(key, value)
        elif key == "REQUIRETLS":
            requiretls = _flag(key, value)
        elif key == "AUTH":
            try:
                auth = xtext_decode(_needs(key, value))
            except ValueError:
                raise _bad("invalid AUTH= value") from None
        elif key == "RET":
            try:
                ret = Ret(_needs(key, value).upper())
            except ValueError:
                raise _bad("RET must be FULL or HDRS") from None
        elif key == "ENVID":
            v = _needs(key, value)
            try:
                envid = xtext_decode(v)
            except ValueError:
                raise _bad("invalid ENVID value") from None
            # RFC 3461 §4.4: at most 100 characters.
            if len(v) > 100:
                raise _bad("ENVID longer than 100 characters")
        else:
            raise _unknown(key)
    return MailParams(size, body, smtputf8, requiretls, auth, ret, envid)


def parse_rcpt_params(text: str) -> RcptParams:
    """Parse the parameters after the forward-path; raises ParamError."""
    notify: frozenset[Notify] | None = None
    orcpt: ORcpt | None = None
    for key, value in _split(text):
        if key == "NOTIFY":
            try:
                items = frozenset(Notify(v.upper()) for v in _needs(key, value).split(","))
            except ValueError:
                raise _bad("invalid NOTIFY value") from None
            # RFC 3461 §4.1: NEVER excludes the others.
            if Notify.NEVER in items and len(items) > 1:
                raise _bad("NOTIFY=NEVER cannot be combined")
            notify = items
        elif key == "ORCPT":
            addr_type, semi, addr = _needs(key, value).partition(";")
            if not semi or not addr or _KEYWORD_RE.fullmatch(addr_type) is None:
                raise _bad("ORCPT must be addr-type;address")
            try:
                if addr_type.lower() == "utf-8":
                    decoded = _utf8_addr_decode(addr)
                else:
                    decoded = xtext_decode(addr)
            except ValueError:
                raise _bad("invalid ORCPT address") from None
            # RFC 3461 §4.2: at most 500 characters.
            if len(value or "") > 500:
                raise _bad("ORCPT longer than 500 characters")
            orcpt = ORcpt(addr_type.lower(), decoded)
        else:
            raise _unknown(key)
    return RcptParams(notify, orcpt)
