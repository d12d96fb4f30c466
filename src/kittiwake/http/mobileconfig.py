"""Apple configuration profiles (``.mobileconfig``) that set up one mail account.

iOS, iPadOS and macOS install a profile opened from Safari: a property list
of type ``Configuration`` holding one ``com.apple.mail.managed`` payload
(Apple's "Configuration Profile Reference", MailPayload) with the IMAP and
SMTP host names, ports, TLS (``UseSSL``: implicit TLS on 993/465, STARTTLS on
143/587), the login name and password authentication. No password is put in
the profile: the device asks for it on installation.

The profile is not signed, so the device shows it as "unverified" (signing
it with the server's certificate would need the private key here; a later
step). The UUIDs are derived from the host and address, so downloading the
profile again replaces the installed one instead of adding a second.
"""

from __future__ import annotations

import plistlib
import uuid

from kittiwake.http.context import HTTPContext, Protocol

CONTENT_TYPE = "application/x-apple-aspen-config"


def _reverse(hostname: str) -> str:
    return ".".join(reversed(hostname.lower().split(".")))


def profile(ctx: HTTPContext, address: str, full_name: str = "") -> bytes | None:
    """The profile for ``address`` (an address of an account); None without IMAP or SMTP."""
    imap = ctx.endpoints_for(Protocol.IMAP)
    smtp = ctx.endpoints_for(Protocol.SMTP)
    if not imap or not smtp:
        return None
    incoming, outgoing = imap[0], smtp[0]
    identifier = f"{_reverse(ctx.hostname)}.mail.{address.lower()}"
    mail = {
        "PayloadType": "com.apple.mail.managed",
        "PayloadVersion": 1,
        "PayloadIdentifier": identifier + ".account",
        "PayloadUUID": str(uuid.uuid5(uuid.NAMESPACE_DNS, identifier + ".account")).upper(),
        "PayloadDisplayName": f"Mail account {address}",
        "EmailAccountDescription": address,
        "EmailAccountName": full_name or address,
        "EmailAccountType": "EmailTypeIMAP",
        "EmailAddress": address,
        "IncomingMailServerAuthentication": "EmailAuthPassword",
        "IncomingMailServerHostName": incoming.host,
        "IncomingMailServerPortNumber": incoming.port,
        "IncomingMailServerUseSSL": True,
        "IncomingMailServerUsername": address,
        "OutgoingMailServerAuthentication": "EmailAuthPassword",
        "OutgoingMailServerHostName": outgoing.host,
        "OutgoingMailServerPortNumber": outgoing.port,
        "OutgoingMailServerUseSSL": True,
        "OutgoingMailServerUsername": address,
        "OutgoingPasswordSameAsIncomingPassword": True,
        "PreventMove": False,
        "PreventAppSheet": False,
        "SMIMEEnabled": False,
        "allowMailDrop": False,
    }
    document = {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": identifier,
        "PayloadUUID": str(uuid.uuid5(uuid.NAMESPACE_DNS, identifier)).upper(),
        "PayloadDisplayName": f"Mail: {address}",
        "PayloadDescription": f"Sets up the mail account {address} on {ctx.hostname}"
                              " (you are asked for the password).",
        "PayloadOrganization": address.rpartition("@")[2],
        "PayloadRemovalDisallowed": False,
        "PayloadContent": [mail],
    }
    return plistlib.dumps(document, fmt=plistlib.FMT_XML)
