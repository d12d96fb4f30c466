"""Client autoconfiguration: Thunderbird autoconfig, Outlook autodiscover, Apple profiles."""

from __future__ import annotations

import plistlib
import xml.etree.ElementTree as ET
from pathlib import Path

from httphelpers import HOSTNAME, ServeFactory, make_config, static_config

from kittiwake.http import HTTPContext, HTTPLimits
from kittiwake.http.context import ClientEndpoint, Protocol, Security

AUTOCONFIG = "/mail/config-v1.1.xml"
WELL_KNOWN_AUTOCONFIG = "/.well-known/autoconfig/mail/config-v1.1.xml"
AUTODISCOVER = "/autodiscover/autodiscover.xml"
OUTLOOK_REQUEST = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/'
    'requestschema/2006"><Request><EMailAddress>{address}</EMailAddress>'
    '<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/'
    'responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>')
AUTODISCOVER_NS = {"r": "http://schemas.microsoft.com/exchange/autodiscover/outlook/"
                        "responseschema/2006a"}

# -- Thunderbird ------------------------------------------------------------------

SOCKET_TYPES = {"plain", "SSL", "STARTTLS"}
AUTHENTICATIONS = {"password-cleartext", "password-encrypted", "OAuth2", "NTLM", "GSSAPI",
                   "client-IP-address", "TLS-client-cert", "none"}


def thunderbird_read(xml: bytes, domain: str) -> dict[str, list[tuple[str, int, str, str]]]:
    """Read config-v1.1.xml the way Thunderbird's account wizard does.

    It needs clientConfig/emailProvider naming the domain, and for each server a
    type, a hostname, an integer port in range, a known socketType and
    authentication, and a username; a server missing one of them is unusable.
    """
    root = ET.fromstring(xml)
    assert root.tag == "clientConfig" and root.get("version") == "1.1"
    provider = root.find("emailProvider")
    assert provider is not None and domain in [d.text for d in provider.findall("domain")]
    servers: dict[str, list[tuple[str, int, str, str]]] = {"incoming": [], "outgoing": []}
    for direction, tag in (("incoming", "incomingServer"), ("outgoing", "outgoingServer")):
        for server in provider.findall(tag):
            kind = server.get("type")
            assert kind == ("imap" if direction == "incoming" else "smtp")
            host = server.findtext("hostname")
            port = int(server.findtext("port") or "")
            socket_type = server.findtext("socketType")
            auth = server.findtext("authentication")
            username = server.findtext("username")
            assert host and 0 < port < 65536 and username
            assert socket_type in SOCKET_TYPES and auth in AUTHENTICATIONS
            assert auth == "password-cleartext" and socket_type != "plain"  # TLS only
            servers[direction].append((host, port, socket_type, username))
    return servers


async def test_thunderbird_finds_imap_and_submission(serve: ServeFactory,
                                                     ctx: HTTPContext) -> None:
    async with serve(ctx) as served:
        reply = await served.get("autoconfig.example.org", AUTOCONFIG)
        well_known = await served.get("example.org", WELL_KNOWN_AUTOCONFIG)
        asked = await served.get("autoconfig.example.org",
                                 AUTOCONFIG + "?emailaddress=alice%40example.org")
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("application/xml")
    servers = thunderbird_read(reply.body, "example.org")
    placeholder = "%EMAILADDRESS%"
    assert servers == {
        "incoming": [(HOSTNAME, 993, "SSL", placeholder), (HOSTNAME, 143, "STARTTLS", placeholder)],
        "outgoing": [(HOSTNAME, 465, "SSL", placeholder), (HOSTNAME, 587, "STARTTLS", placeholder)],
    }
    assert well_known.body == reply.body
    named = thunderbird_read(asked.body, "example.org")
    assert {s[3] for s in named["incoming"] + named["outgoing"]} == {"alice@example.org"}


async def test_only_enabled_services_and_their_ports(serve: ServeFactory,
                                                     tmp_path: Path) -> None:
    static = static_config(imap={"enabled": False}, submissions={"enabled": False},
                           submission={"enabled": True, "port": 2587})
    ctx = HTTPContext.from_config(make_config(tmp_path, static=static), "public")
    async with serve(ctx) as served:
        reply = await served.get("autoconfig.example.org", AUTOCONFIG)
    servers = thunderbird_read(reply.body, "example.org")
    assert [s[:3] for s in servers["incoming"]] == [(HOSTNAME, 993, "SSL")]
    assert [s[:3] for s in servers["outgoing"]] == [(HOSTNAME, 2587, "STARTTLS")]


async def test_autoconfig_refusals(serve: ServeFactory, ctx: HTTPContext) -> None:
    async with serve(ctx) as served:
        bad = await served.get("autoconfig.example.org", AUTOCONFIG + "?emailaddress=nobody")
        other = await served.get("autoconfig.example.org",
                                 AUTOCONFIG + "?emailaddress=bob%40example.net")
        foreign = await served.get("autoconfig.other.example", AUTOCONFIG)
        long_query = await served.get("autoconfig.example.org",
                                      AUTOCONFIG + "?emailaddress=" + "a" * 2000)
        post = await served.request("POST", "autoconfig.example.org", AUTOCONFIG, data=b"")
    assert bad.status == 400 and "not an email address" in bad.text
    assert other.status == 400 and "not an address of example.org" in other.text
    assert foreign.status == 404
    assert long_query.status == 400
    assert post.status == 405


def test_context_from_config_skips_internal_and_tls_less_listeners(tmp_path: Path) -> None:
    static = static_config()
    data = static.model_dump()
    data["listeners"]["internal"] = {"ips": ["127.0.0.2"], "hostname": "int.example.org",
                                     "imaps": {"enabled": True, "port": 1993},
                                     "tls": data["listeners"]["public"]["tls"]}
    data["listeners"]["plain"] = {"ips": ["192.0.2.1"], "imap": {"enabled": True}}
    data["listeners"]["public"]["ips"] = ["192.0.2.2"]
    static = type(static).model_validate(data)
    ctx = HTTPContext.from_config(make_config(tmp_path, static=static), "public")
    assert ctx.endpoints_for(Protocol.IMAP) == [
        ClientEndpoint(Protocol.IMAP, HOSTNAME, 993, Security.SSL),
        ClientEndpoint(Protocol.IMAP, HOSTNAME, 143, Security.STARTTLS)]
    assert ctx.mx_hosts == (HOSTNAME,)
    internal = HTTPContext.from_config(make_config(tmp_path, static=static), "internal")
    assert ClientEndpoint(Protocol.IMAP, "int.example.org", 1993, Security.SSL) in \
        internal.endpoints


# -- Outlook ----------------------------------------------------------------------


def outlook_read(xml: bytes) -> dict[str, dict[str, str]]:
    """The first Protocol of each Type, as Outlook takes them."""
    root = ET.fromstring(xml)
    assert root.tag == "{http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006}" \
                       "Autodiscover"
    account = root.find("r:Response/r:Account", AUTODISCOVER_NS)
    assert account is not None
    assert account.findtext("r:AccountType", namespaces=AUTODISCOVER_NS) == "email"
    assert account.findtext("r:Action", namespaces=AUTODISCOVER_NS) == "settings"
    found: dict[str, dict[str, str]] = {}
    for protocol in account.findall("r:Protocol", AUTODISCOVER_NS):
        fields = {child.tag.split("}")[1]: child.text or "" for child in protocol}
        found.setdefault(fields["Type"], fields)
    return found


async def test_outlook_autodiscover(serve: ServeFactory, ctx: HTTPContext) -> None:
    body = OUTLOOK_REQUEST.format(address="alice@example.org").encode()
    headers = {"Content-Type": "text/xml"}
    async with serve(ctx) as served:
        reply = await served.request("POST", "autodiscover.example.org", AUTODISCOVER,
                                     data=body, headers=headers)
        # Outlook's own spelling, and the same path on the domain itself.
        cased = await served.request("POST", "example.org", "/Autodiscover/Autodiscover.xml",
                                     data=body, headers=headers)
        # Where the _autodiscover._tcp SRV record points: the mail host.
        via_srv = await served.request("POST", HOSTNAME, AUTODISCOVER, data=body)
    assert reply.status == 200
    protocols = outlook_read(reply.body)
    assert set(protocols) == {"IMAP", "SMTP"}
    imap, smtp = protocols["IMAP"], protocols["SMTP"]
    assert (imap["Server"], imap["Port"], imap["SSL"], imap["Encryption"]) == \
        (HOSTNAME, "993", "on", "SSL")
    assert (smtp["Server"], smtp["Port"], smtp["SSL"], smtp["Encryption"]) == \
        (HOSTNAME, "465", "on", "SSL")
    assert imap["LoginName"] == smtp["LoginName"] == "alice@example.org"
    assert imap["SPA"] == "off" and imap["AuthRequired"] == "on"
    assert cased.status == 200 and cased.body == reply.body
    assert via_srv.status == 200 and via_srv.body == reply.body


async def test_autodiscover_with_starttls_only(serve: ServeFactory, tmp_path: Path) -> None:
    static = static_config(imaps={"enabled": False}, submissions={"enabled": False})
    ctx = HTTPContext.from_config(make_config(tmp_path, static=static), "public")
    async with serve(ctx) as served:
        reply = await served.request("POST", "autodiscover.example.org", AUTODISCOVER,
                                     data=OUTLOOK_REQUEST.format(address="a@example.org"))
    protocols = outlook_read(reply.body)
    assert (protocols["IMAP"]["Port"], protocols["IMAP"]["Encryption"]) == ("143", "TLS")
    assert (protocols["SMTP"]["Port"], protocols["SMTP"]["Encryption"]) == ("587", "TLS")


BOMB = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        b'<Autodiscover><Request><EMailAddress>&lol2;</EMailAddress></Request></Autodiscover>')
EXTERNAL = (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b'<Autodiscover><Request><EMailAddress>&x;</EMailAddress></Request></Autodiscover>')


async def test_autodiscover_refuses_what_is_no_request(serve: ServeFactory,
                                                       tmp_path: Path) -> None:
    ctx = HTTPContext.from_config(make_config(tmp_path), "public")
    ctx.limits = HTTPLimits(max_body=4096)
    host = "autodiscover.example.org"
    async with serve(ctx) as served:
        answers = {name: await served.request("POST", host, AUTODISCOVER, data=data)
                   for name, data in (
                       ("bomb", BOMB), ("external", EXTERNAL), ("broken", b"<Autodiscover><"),
                       ("empty", b""), ("no address", b"<Autodiscover><Request/></Autodiscover>"),
                       ("foreign", OUTLOOK_REQUEST.format(address="bob@other.example")),
                       ("not an address", OUTLOOK_REQUEST.format(address="bob")),
                       ("mobilesync", OUTLOOK_REQUEST.format(address="a@example.org").replace(
                           "outlook/responseschema/2006a", "mobilesync/responseschema/2006")),
                       ("huge", b"<Autodiscover>" + b" " * 5000 + b"</Autodiscover>"))}
        get = await served.get(host, AUTODISCOVER)
    assert {name: reply.status for name, reply in answers.items()} == {
        "bomb": 400, "external": 400, "broken": 400, "empty": 400, "no address": 400,
        "foreign": 404, "not an address": 400, "mobilesync": 400, "huge": 413}
    assert "document type declaration" in answers["bomb"].text
    assert "root:" not in answers["external"].text
    assert get.status == 405 and get.headers["Allow"] == "POST"


# -- Apple ------------------------------------------------------------------------


async def test_mobileconfig_profile_for_an_account(serve: ServeFactory,
                                                   ctx: HTTPContext) -> None:
    async with serve(ctx) as served:
        reply = await served.get(HOSTNAME, "/profile.mobileconfig?address=alice%40example.org")
        again = await served.get(HOSTNAME, "/profile.mobileconfig?address=Alice%40Example.org")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/x-apple-aspen-config"
    assert "example.org.mobileconfig" in reply.headers["Content-Disposition"]
    document = plistlib.loads(reply.body)
    assert document["PayloadType"] == "Configuration" and document["PayloadVersion"] == 1
    (mail,) = document["PayloadContent"]
    assert mail["PayloadType"] == "com.apple.mail.managed"
    assert mail["EmailAccountType"] == "EmailTypeIMAP"
    assert mail["EmailAddress"] == "alice@example.org"
    assert mail["EmailAccountName"] == "Alice Liddell"
    assert (mail["IncomingMailServerHostName"], mail["IncomingMailServerPortNumber"],
            mail["IncomingMailServerUseSSL"]) == (HOSTNAME, 993, True)
    assert (mail["OutgoingMailServerHostName"], mail["OutgoingMailServerPortNumber"],
            mail["OutgoingMailServerUseSSL"]) == (HOSTNAME, 465, True)
    assert mail["IncomingMailServerUsername"] == mail["OutgoingMailServerUsername"] == \
        "alice@example.org"
    assert not any("password" in key.lower() and key != "OutgoingPasswordSameAsIncomingPassword"
                   for key in mail)
    # The same account asked again: the same profile (same UUIDs: it replaces, not adds).
    assert plistlib.loads(again.body) == document


async def test_mobileconfig_only_for_account_addresses(serve: ServeFactory,
                                                       ctx: HTTPContext) -> None:
    async with serve(ctx) as served:
        statuses = {address: (await served.get(
            HOSTNAME, f"/profile.mobileconfig?address={address}")).status
            for address in ("bob@example.org", "anyone@example.net",  # catch-all: no
                            "alice@other.example", "nonsense")}
        missing = await served.get(HOSTNAME, "/profile.mobileconfig")
        elsewhere = await served.get("example.org",
                                     "/profile.mobileconfig?address=alice@example.org")
    assert statuses == {"bob@example.org": 404, "anyone@example.net": 404,
                        "alice@other.example": 404, "nonsense": 400}
    assert missing.status == 400 and elsewhere.status == 404


async def test_mobileconfig_requests_are_rate_limited(serve: ServeFactory,
                                                      tmp_path: Path) -> None:
    now = [1000.0]
    ctx = HTTPContext.from_config(make_config(tmp_path), "public")
    ctx.limits = HTTPLimits(profile_requests_per_minute=3)
    ctx.clock = lambda: now[0]
    path = "/profile.mobileconfig?address=nobody@example.org"
    async with serve(ctx) as served:
        first = [(await served.get(HOSTNAME, path)).status for _ in range(3)]
        refused = await served.get(HOSTNAME, path)
        now[0] += 60
        later = await served.get(HOSTNAME, path.replace("nobody", "alice"))
    assert first == [404, 404, 404]
    assert refused.status == 429 and refused.headers["Retry-After"] == "20"
    assert later.status == 200
