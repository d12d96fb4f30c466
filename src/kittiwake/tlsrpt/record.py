"""The TLSRPT policy record at ``_smtp._tls.DOMAIN`` (RFC 8460 §3).

``v=TLSRPTv1; rua=mailto:tls-reports@example.org`` says where sending MTAs
send their aggregate TLS reports: ``mailto:`` or ``https:`` URIs, separated by
commas (§3). Only the fields of §3 are read; extensions are kept.
"""

from __future__ import annotations

from dataclasses import dataclass


class RecordError(ValueError):
    """The TXT record does not follow RFC 8460 §3."""


@dataclass(frozen=True)
class TLSRPTRecord:
    """A parsed TLSRPT record: the report URIs (``rua``) and extension fields."""

    rua: tuple[str, ...]
    extensions: tuple[tuple[str, str], ...] = ()
    text: str = ""

    @property
    def addresses(self) -> tuple[str, ...]:
        """The mail addresses of the ``mailto:`` URIs, lower case."""
        return tuple(u.split(":", 1)[1].split("?", 1)[0].lower() for u in self.rua
                     if u.lower().startswith("mailto:"))


def is_tlsrpt_record(text: str) -> bool:
    """§3: records that do not begin with "v=TLSRPTv1" are ignored."""
    return text.split(";", 1)[0].strip() == "v=TLSRPTv1"


def parse_record(text: str) -> TLSRPTRecord:
    """Parse one record; :class:`RecordError` says what is wrong (RFC 8460 §3)."""
    # tlsrpt-record = tlsrpt-version 1*(field-delim tlsrpt-field) [field-delim]
    fields = [f.strip(" \t") for f in text.split(";")]
    if fields and fields[-1] == "":
        fields.pop()
    if not fields or fields[0] != "v=TLSRPTv1":
        raise RecordError("record does not start with v=TLSRPTv1")
    rua: tuple[str, ...] | None = None
    extensions: list[tuple[str, str]] = []
    for item in fields[1:]:
        name, eq, value = item.partition("=")
        if not eq or not name:
            raise RecordError(f"field {item!r} is not name=value")
        if name == "rua":
            if rua is not None:
                raise RecordError("more than one rua field")
            uris = tuple(u.strip(" \t") for u in value.split(","))
            for uri in uris:
                scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
                if scheme not in ("mailto", "https"):
                    raise RecordError(f"rua URI {uri!r} is neither mailto: nor https: (§3)")
            rua = uris
        else:
            extensions.append((name, value))
    if rua is None:
        raise RecordError("record has no rua field (§3: it is required)")
    return TLSRPTRecord(rua, tuple(extensions), text)
