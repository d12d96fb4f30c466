"""Thunderbird autoconfig: the Mozilla ISPDB ``clientConfig`` format, version 1.1.

Thunderbird (and K-9/Thunderbird for Android, Evolution, KMail, ...) look for
``https://autoconfig.DOMAIN/mail/config-v1.1.xml?emailaddress=ADDRESS`` and
``https://DOMAIN/.well-known/autoconfig/mail/config-v1.1.xml``. The answer
names the IMAP server (``incomingServer``) and the submission server
(``outgoingServer``) with host, port, ``socketType`` (``SSL`` for implicit
TLS, ``STARTTLS``), ``password-cleartext`` authentication (sent only inside
TLS) and the login name (``%EMAILADDRESS%``, which the client replaces, or
the address it asked for). Only services enabled on a listener with TLS are
listed, implicit TLS first (RFC 8314 §5.1). The format is described in
Mozilla's "Autoconfiguration in Thunderbird" and its ISPDB schema.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from kittiwake.http.context import ClientEndpoint, HTTPContext, Protocol

PLACEHOLDER_ADDRESS = "%EMAILADDRESS%"


def _server(parent: ET.Element, tag: str, kind: str, endpoint: ClientEndpoint,
            username: str) -> None:
    server = ET.SubElement(parent, tag, type=kind)
    for name, value in (("hostname", endpoint.host), ("port", str(endpoint.port)),
                        ("socketType", endpoint.security.value),
                        ("authentication", "password-cleartext"), ("username", username)):
        ET.SubElement(server, name).text = value


def client_config(ctx: HTTPContext, domain: str, display_name: str,
                  address: str | None = None) -> bytes:
    """The ``config-v1.1.xml`` document for ``domain`` (UTF-8, with XML declaration)."""
    username = address or PLACEHOLDER_ADDRESS
    root = ET.Element("clientConfig", version="1.1")
    provider = ET.SubElement(root, "emailProvider", id=domain)
    ET.SubElement(provider, "domain").text = domain
    ET.SubElement(provider, "displayName").text = display_name or domain
    ET.SubElement(provider, "displayShortName").text = domain
    for endpoint in ctx.endpoints_for(Protocol.IMAP):
        _server(provider, "incomingServer", "imap", endpoint, username)
    for endpoint in ctx.endpoints_for(Protocol.SMTP):
        _server(provider, "outgoingServer", "smtp", endpoint, username)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
