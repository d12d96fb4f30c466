"""The Received-SPF header field (RFC 7208 §9.1), built from a :class:`Result`.

    header-field = "Received-SPF:" [CFWS] result FWS [comment FWS] [ key-value-list ] CRLF
    key-value-pair = key [CFWS] "=" ( dot-atom / quoted-string )

Values that are not a dot-atom (RFC 5322 §3.2.3) are written as quoted-strings;
text from DNS or from the client is made safe for a header: control characters
become spaces and comment delimiters are escaped.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from kittiwake.spf.status import Status

if TYPE_CHECKING:
    from kittiwake.spf.result import Result

FIELD_NAME = "Received-SPF"

# RFC 5322 §3.2.3: dot-atom-text = 1*atext *("." 1*atext)
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_COMMENT_SPECIAL = re.compile(r"([()\\])")
MAX_PROBLEM = 200  # keep the field readable; the full reason is in Result.problem


def _safe(text: str) -> str:
    """``text`` with control characters as spaces, stripped."""
    if text.isascii() and text.isprintable():
        return text.strip()  # printable ASCII: no control character to replace
    return _CONTROL.sub(" ", text).strip()


def header_value(text: str) -> str:
    """A key-value-pair value: dot-atom when possible, else a quoted-string."""
    text = _safe(text)
    if _DOT_ATOM.match(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def header_comment(text: str) -> str:
    """A comment, with "(", ")" and "\\" escaped as quoted-pairs (RFC 5322 §3.2.2)."""
    text = _safe(text)
    if "(" in text or ")" in text or "\\" in text:
        text = _COMMENT_SPECIAL.sub(r"\\\1", text)
    return f"({text})"


def _sentence(result: Result) -> str:
    """The comment's explanation, worded as in the examples of RFC 7208 §9.1."""
    who = result.sender if result.identity == "mailfrom" else result.domain
    ip = result.ip
    match result.status:
        case Status.PASS:
            return f"domain of {who} designates {ip} as permitted sender"
        case Status.FAIL:
            return f"domain of {who} does not designate {ip} as permitted sender"
        case Status.SOFTFAIL:
            return f"domain of transitioning {who} does not designate {ip} as permitted sender"
        case Status.NEUTRAL:
            return f"{ip} is neither permitted nor denied by domain of {who}"
        case Status.NONE:
            return f"domain of {who} does not designate permitted sender hosts"
        case Status.TEMPERROR:
            return f"error in processing during lookup of {who}: {result.problem}"
        case Status.PERMERROR:
            return f"domain of {who} has an invalid SPF policy: {result.problem}"
    raise AssertionError(result.status)


def received_spf_value(result: Result) -> str:
    """The field value (after "Received-SPF:") for ``result`` (RFC 7208 §9.1)."""
    receiver = result.receiver or "unknown"
    sentence = _sentence(result)
    if len(sentence) > MAX_PROBLEM + 100:
        sentence = sentence[: MAX_PROBLEM + 100] + "..."
    parts = [str(result.status), header_comment(f"{receiver}: {sentence}")]
    pairs: list[tuple[str, str]] = [("client-ip", result.ip)]
    if result.identity == "mailfrom" and result.mailfrom:
        pairs.append(("envelope-from", result.mailfrom))
    if result.helo:
        pairs.append(("helo", result.helo))
    if result.problem and result.status in (Status.TEMPERROR, Status.PERMERROR):
        pairs.append(("problem", result.problem[:MAX_PROBLEM]))
    if result.mechanism:
        pairs.append(("mechanism", result.mechanism))
    pairs.append(("receiver", receiver))
    pairs.append(("identity", result.identity))
    kv = "; ".join(f"{key}={header_value(value)}" for key, value in pairs)
    return " ".join(parts) + " " + kv + ";"


def received_spf_field(result: Result) -> str:
    """The whole field, "Received-SPF: ...", without folding or CRLF."""
    return f"{FIELD_NAME}: {received_spf_value(result)}"
