"""Microsoft autodiscover, the "POX" (plain old XML) form Outlook uses for IMAP accounts.

Outlook POSTs to ``https://autodiscover.DOMAIN/autodiscover/autodiscover.xml``
(or the same path on ``DOMAIN``) a request such as::

    <Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
      <Request>
        <EMailAddress>alice@example.org</EMailAddress>
        <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
      </Request>
    </Autodiscover>

and gets, in the ``outlook`` response schema (Microsoft's "Autodiscover XML
schema", [MS-OXDSCLI]), one ``Account`` with a ``Protocol`` for IMAP and one
for SMTP: server, port, login name, and ``SSL``/``Encryption`` (``SSL`` for
implicit TLS, ``TLS`` for STARTTLS). Outlook uses the first ``Protocol`` of
each type, so only the preferred endpoint of each is sent (implicit TLS
first, RFC 8314 §5.1).

The request is untrusted XML: it is parsed with expat, which fetches no
external entities; a document type declaration (the only way to declare
entities, and so to build an entity-expansion bomb) is refused outright,
and the body size is bounded before parsing (:data:`MAX_REQUEST`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
import xml.parsers.expat
from dataclasses import dataclass

from kittiwake.http.context import ClientEndpoint, HTTPContext, Protocol, Security

REQUEST_SCHEMA = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
RESPONSE_SCHEMA = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
OUTLOOK_SCHEMA = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
MAX_REQUEST = 16 * 1024  # Outlook's request is about 350 bytes
MAX_DEPTH = 8


class BadRequest(ValueError):
    """The request body is not an autodiscover request we can answer; the reason in words."""


@dataclass(frozen=True)
class AutodiscoverRequest:
    email_address: str
    response_schema: str  # empty when the client named none


def _local(name: str) -> str:
    # expat with namespace_separator " " gives "URI local" for namespaced names.
    return name.rpartition(" ")[2]


def parse_request(body: bytes) -> AutodiscoverRequest:
    """Parse an autodiscover POX request; raises :class:`BadRequest`."""
    if len(body) > MAX_REQUEST:
        raise BadRequest(f"request larger than {MAX_REQUEST} bytes")
    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")
    path: list[str] = []
    texts: dict[str, list[str]] = {"EMailAddress": [], "AcceptableResponseSchema": []}

    def doctype(*_: object) -> None:
        raise BadRequest("a document type declaration is not accepted")

    def entity(*_: object) -> None:
        raise BadRequest("entity declarations are not accepted")

    def start(name: str, _attrs: dict[str, str]) -> None:
        path.append(_local(name))
        if len(path) > MAX_DEPTH:
            raise BadRequest("elements nested too deep")

    def end(_name: str) -> None:
        path.pop()

    def chars(data: str) -> None:
        if len(path) == 3 and path[:2] == ["Autodiscover", "Request"] and path[2] in texts:
            texts[path[2]].append(data)

    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = entity
    parser.UnparsedEntityDeclHandler = entity
    parser.ExternalEntityRefHandler = lambda *_: 0  # never fetch anything
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(body, True)
    except xml.parsers.expat.ExpatError as exc:
        raise BadRequest(f"not well-formed XML: {exc}") from None
    address = "".join(texts["EMailAddress"]).strip()
    if not address:
        raise BadRequest("no Autodiscover/Request/EMailAddress")
    return AutodiscoverRequest(address, "".join(texts["AcceptableResponseSchema"]).strip())


def _protocol(account: ET.Element, kind: str, endpoint: ClientEndpoint, login: str) -> None:
    protocol = ET.SubElement(account, "Protocol")
    implicit = endpoint.security is Security.SSL
    for name, value in (("Type", kind), ("Server", endpoint.host), ("Port", str(endpoint.port)),
                        ("LoginName", login), ("DomainRequired", "off"), ("SPA", "off"),
                        ("SSL", "on"), ("Encryption", "SSL" if implicit else "TLS"),
                        ("AuthRequired", "on")):
        ET.SubElement(protocol, name).text = value


def response(ctx: HTTPContext, address: str, display_name: str = "") -> bytes:
    """The ``outlook`` schema response for ``address`` (UTF-8, with XML declaration)."""
    root = ET.Element("Autodiscover", xmlns=RESPONSE_SCHEMA)
    answer = ET.SubElement(root, "Response", xmlns=OUTLOOK_SCHEMA)
    if display_name:
        ET.SubElement(ET.SubElement(answer, "User"), "DisplayName").text = display_name
    account = ET.SubElement(answer, "Account")
    ET.SubElement(account, "AccountType").text = "email"
    ET.SubElement(account, "Action").text = "settings"
    for kind, protocol in (("IMAP", Protocol.IMAP), ("SMTP", Protocol.SMTP)):
        endpoints = ctx.endpoints_for(protocol)
        if endpoints:
            _protocol(account, kind, endpoints[0], address)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
