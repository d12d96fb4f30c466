"""``kittiwake smtp dial`` and ``kittiwake dane dial``: look at an SMTP server's TLS.

``smtp dial`` connects, says EHLO, shows the greeting and the extensions,
does STARTTLS when offered (RFC 3207) and shows the TLS version, cipher and
certificate, whether that certificate is valid for the host by the PKIX
rules (RFC 5280, RFC 6125 names), and the extensions after TLS.

``dane dial`` does what a DANE-enabled sender does (RFC 7672): it resolves
the host's addresses and its TLSA records, both of which must be
DNSSEC-authentic (§2.2), connects, does STARTTLS, and checks the server's
certificate chain against the usable TLSA records (§3), then says which
record matched or why none did.

Tests inject a resolver through the root context object:
``CliRunner().invoke(cli, [...], obj={"resolver": MockResolver()})``.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import socket
import ssl
import warnings
from pathlib import Path
from typing import Any

import click

from kittiwake.cli.common import UserError, make_resolver, print_json, run

__all__ = ["certificate_summary", "dane_group", "parse_target", "pkix_check", "smtp_group"]

# Exit statuses of both commands.
EXIT_OK = 0
EXIT_NOT_VERIFIED = 2
EXIT_TEMPORARY = 3


def resolver_for(ctx: click.Context) -> Any:
    """The injected resolver (``ctx.obj["resolver"]``, tests) or the configured one."""
    state = ctx.find_root().obj or {}
    injected = state.get("resolver") if isinstance(state, dict) else None
    return injected if injected is not None else make_resolver(ctx)


def parse_target(text: str, default_port: int = 25) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port``, ``v6`` -> (host, port). Raises UserError."""
    text = text.strip()
    host, port_text = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise UserError(f"{text}: missing ']' after the IPv6 address")
        host, rest = text[1:end], text[end + 1:]
        if rest and not rest.startswith(":"):
            raise UserError(f"{text}: expected :PORT after ']'")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    host = host.rstrip(".")
    if not host:
        raise UserError(f"{text!r}: no host name")
    port = default_port
    if port_text:
        if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
            raise UserError(f"{text}: port must be a number from 1 to 65535")
        port = int(port_text)
    return host, port


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# --- certificates ----------------------------------------------------------------


def certificate_summary(der: bytes, now: datetime.datetime | None = None) -> dict[str, Any]:
    """Subject, names (RFC 5280 §4.2.1.6 subjectAltName), issuer and validity of a
    DER certificate, for people. Never raises: garbage gives an ``error`` entry."""
    from cryptography import x509

    when = now or datetime.datetime.now(datetime.UTC)
    try:
        cert = x509.load_der_x509_certificate(der)
        names: list[str] = []
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            names = [*san.get_values_for_type(x509.DNSName),
                     *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))]
        except x509.ExtensionNotFound:
            pass
        not_before = cert.not_valid_before_utc
        not_after = cert.not_valid_after_utc
        return {
            "subject": cert.subject.rfc4514_string(),
            "names": names,
            "issuer": cert.issuer.rfc4514_string(),
            "not_before": not_before.isoformat(),
            "not_after": not_after.isoformat(),
            "days_left": (not_after - when).days,
            "expired": when > not_after,
        }
    except Exception as exc:  # a malformed certificate from the network (DESIGN.md 6)
        return {"error": f"cannot parse the certificate: {exc}"}


def _trusted_roots(ca_file: Path | None) -> list[Any]:
    from cryptography import x509

    paths = [ca_file] if ca_file is not None else []
    if ca_file is None:
        defaults = ssl.get_default_verify_paths()
        for candidate in (defaults.cafile, defaults.openssl_cafile):
            if candidate and Path(candidate).is_file():
                paths.append(Path(candidate))
                break
    roots: list[Any] = []
    for path in paths:
        try:
            with warnings.catch_warnings():
                # Some system roots have old quirks (negative serial numbers).
                warnings.simplefilter("ignore")
                roots.extend(x509.load_pem_x509_certificates(path.read_bytes()))
        except OSError as exc:
            raise UserError(f"{path}: {exc.strerror}") from None
        except ValueError as exc:
            raise UserError(f"{path}: no PEM certificates in it ({exc})") from None
    return roots


def _server_auth(_policy: Any, _cert: Any, eku: Any) -> None:
    """RFC 5280 §4.2.1.12: when present, extendedKeyUsage must allow TLS servers."""
    from cryptography.x509.oid import ExtendedKeyUsageOID

    if eku is not None and ExtendedKeyUsageOID.SERVER_AUTH not in eku \
            and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in eku:
        raise ValueError("extendedKeyUsage does not allow serverAuth")


def pkix_check(chain_der: tuple[bytes, ...], host: str, roots: list[Any],
               now: datetime.datetime | None = None) -> tuple[bool, str]:
    """Is the chain (leaf first) valid for ``host`` under RFC 5280 path validation
    to one of ``roots``, with RFC 6125 name checks? Returns (valid, explanation)."""
    from cryptography import x509
    from cryptography.x509.verification import (
        Criticality,
        DNSName,
        ExtensionPolicy,
        IPAddress,
        PolicyBuilder,
        Store,
        VerificationError,
    )

    if not chain_der:
        return False, "the server sent no certificate"
    if not roots:
        return False, "no trusted CA certificates found (give --ca-file)"
    try:
        certs = [x509.load_der_x509_certificate(c) for c in chain_der]
        subject: Any = IPAddress(ipaddress.ip_address(host)) if _is_ip(host) \
            else DNSName(host)
        # The web PKI profile, except that subjectAltName and extendedKeyUsage may
        # be critical, as RFC 5280 §4.2.1.6 and §4.2.1.12 allow and OpenSSL (so
        # most SMTP clients) accepts; private CAs issue such certificates.
        ee_policy = ExtensionPolicy.webpki_defaults_ee().require_present(
            x509.SubjectAlternativeName, Criticality.AGNOSTIC, None).may_be_present(
            x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _server_auth)
        builder = PolicyBuilder().store(Store(roots)).extension_policies(
            ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee_policy)
        if now is not None:
            builder = builder.time(now)
        verifier = builder.build_server_verifier(subject)
        verifier.verify(certs[0], certs[1:])
    except VerificationError as exc:
        # cryptography's wording, without the certificate's repr.
        text = re.sub(r"\s*\(encountered processing .*\)\s*$", "", str(exc), flags=re.S)
        text = text.removeprefix("validation failed: ")
        if "candidates exhausted" in text:
            text = "no chain to a trusted CA"
        return False, f"NOT valid for {host}: {text}"
    except Exception as exc:  # unparsable certificates from the network
        return False, f"NOT valid for {host}: {exc}"
    return True, f"valid for {host} (chain to a trusted CA)"


def _tls_report(tls: Any) -> dict[str, Any]:
    return {
        "version": tls.version,
        "cipher": tls.cipher,
        "chain_length": len(tls.chain_der),
        "certificate": certificate_summary(tls.chain_der[0]) if tls.chain_der else None,
    }


def _caps(caps: Any) -> list[str]:
    if caps is None:
        return []
    return [f"{k} {v}".strip() for k, v in caps.keywords.items()]


def _peer(client: Any) -> str | None:
    try:
        peer = client.writer.get_extra_info("peername")
    except Exception:
        return None
    return str(peer[0]) if peer else None


def _ehlo_name(name: str | None) -> str:
    return name or socket.getfqdn() or "localhost"


# --- smtp dial -------------------------------------------------------------------


@click.group(name="smtp")
def smtp_group() -> None:
    """Look at SMTP servers."""


async def smtp_dial(host: str, port: int, *, implicit: bool, roots: list[Any],
                    ehlo_name: str, timeout: float,
                    resolver: Any = None) -> tuple[dict[str, Any], int]:
    """Connect, EHLO, STARTTLS when offered; the report and the exit status.

    A host name is resolved by ``resolver`` (KITTIWAKE_DNS, the config's
    resolvers), never by the system resolver; its addresses are tried IPv6 first.
    """
    from kittiwake.smtpclient import (
        Client,
        SMTPClientError,
        TLSError,
        TLSMode,
        unverified_context,
    )

    sni = None if _is_ip(host) else host
    report: dict[str, Any] = {
        "host": host, "port": port, "address": None, "greeting": None, "capabilities": [],
        "starttls": None, "tls": None, "pkix": None, "capabilities_after_tls": None,
        "error": None,
    }
    try:
        client = await Client.connect(
            host, port, local_hostname=ehlo_name, timeouts=timeout,
            tls=TLSMode.IMPLICIT if implicit else TLSMode.NONE,
            tls_context=unverified_context(), tls_server_name=sni, resolver=resolver)
    except TLSError as exc:
        report["error"] = str(exc)
        return report, EXIT_NOT_VERIFIED
    except SMTPClientError as exc:
        report["error"] = str(exc)
        return report, EXIT_TEMPORARY if exc.temporary else EXIT_NOT_VERIFIED
    code = EXIT_OK
    async with client:
        report["address"] = _peer(client)
        report["greeting"] = str(client.greeting) if client.greeting else None
        if implicit:
            report["capabilities_after_tls"] = _caps(client.capabilities)
        else:
            report["capabilities"] = _caps(client.capabilities)
            offered = bool(client.capabilities and client.capabilities.starttls)
            report["starttls"] = offered
            if not offered:
                report["error"] = f"STARTTLS not offered by {client.remote}"
                return report, EXIT_NOT_VERIFIED
            try:
                await client.starttls(sni, unverified_context())
                report["capabilities_after_tls"] = _caps(await client.ehlo())
            except TLSError as exc:
                report["error"] = str(exc)
                code = EXIT_NOT_VERIFIED
            except SMTPClientError as exc:
                report["error"] = str(exc)
                code = EXIT_TEMPORARY if exc.temporary else EXIT_NOT_VERIFIED
        if client.tls is not None:
            report["tls"] = _tls_report(client.tls)
            valid, why = pkix_check(client.tls.chain_der, host, roots)
            report["pkix"] = {"valid": valid, "reason": why}
            if not valid and code == EXIT_OK:
                code = EXIT_NOT_VERIFIED
    return report, code


def _print_caps(title: str, caps: list[str]) -> None:
    click.echo(f"{title}:")
    for line in caps or ["(none)"]:
        click.echo(f"  {line}")


def _print_certificate(tls: dict[str, Any]) -> None:
    click.echo(f"TLS: {tls['version']}, {tls['cipher']} ({tls['chain_length']} certificate(s)"
               " sent)")
    cert = tls.get("certificate")
    if not cert:
        return
    if "error" in cert:
        click.echo(f"  certificate: {cert['error']}")
        return
    click.echo(f"  subject: {cert['subject']}")
    click.echo(f"  names:   {', '.join(cert['names']) or '(no subjectAltName)'}")
    click.echo(f"  issuer:  {cert['issuer']}")
    left = "EXPIRED" if cert["expired"] else f"{cert['days_left']} days left"
    click.echo(f"  valid:   {cert['not_before']} to {cert['not_after']} ({left})")


@smtp_group.command("dial")
@click.argument("target", metavar="HOST[:PORT]")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--implicit-tls", is_flag=True, help="TLS from the start (port 465), no STARTTLS.")
@click.option("--ca-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Trust these PEM CA certificates instead of the system's.")
@click.option("--ehlo", "ehlo", metavar="NAME", help="Name to say in EHLO (default: this host).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds to wait for each step.")
@click.pass_context
def smtp_dial_command(ctx: click.Context, target: str, as_json: bool, implicit_tls: bool,
                      ca_file: Path | None, ehlo: str | None, timeout: float) -> None:
    """Connect to HOST (port 25), EHLO, STARTTLS, and show what the server offers.

    Shows the greeting, the EHLO extensions, the TLS version and cipher, the
    certificate (subject, names, issuer, expiry) and whether it is PKIX-valid
    for HOST, then the extensions after TLS.

    Exit status: 0 TLS works with a PKIX-valid certificate, 1 user error,
    2 no STARTTLS, TLS failed or certificate not valid, 3 could not connect
    (or another temporary failure).
    """
    host, port = parse_target(target)
    roots = _trusted_roots(ca_file)
    resolver = None if _is_ip(host) else resolver_for(ctx)
    report, code = run(lambda: smtp_dial(host, port, implicit=implicit_tls, roots=roots,
                                         ehlo_name=_ehlo_name(ehlo), timeout=timeout,
                                         resolver=resolver))
    if as_json:
        print_json(report)
    else:
        where = f" ({report['address']})" if report["address"] else ""
        click.echo(f"{host} port {port}{where}")
        if report["greeting"]:
            click.echo(f"Greeting: {report['greeting']}")
        if report["greeting"] and not implicit_tls:
            _print_caps("EHLO", report["capabilities"])
            click.echo(f"STARTTLS: {'offered' if report['starttls'] else 'NOT offered'}")
        if report["tls"]:
            _print_certificate(report["tls"])
            pkix = report["pkix"]
            click.echo(f"  PKIX:    {pkix['reason']}")
        if report["capabilities_after_tls"] is not None:
            _print_caps("EHLO after TLS", report["capabilities_after_tls"])
        if report["error"]:
            click.echo(f"Error: {report['error']}")
    if code:
        raise click.exceptions.Exit(code)


# --- dane dial -------------------------------------------------------------------


@click.group(name="dane")
def dane_group() -> None:
    """DANE for SMTP (RFC 7672): check servers against their TLSA records."""


def _records_json(records: Any) -> list[dict[str, Any]]:
    from kittiwake.dane import describe, unusable_reason

    return [{"record": str(r), "description": describe(r), "unusable": unusable_reason(r)}
            for r in records]


async def dane_dial(resolver: Any, host: str, port: int, *, implicit: bool, ehlo_name: str,
                    timeout: float) -> tuple[dict[str, Any], int]:
    """Resolve, look up TLSA, connect, STARTTLS, verify; the report and the exit status."""
    from kittiwake.dane import (
        TLSAStatus,
        lookup_tlsa,
        lookup_tlsa_for_host,
        reference_identifiers,
        verify,
    )
    from kittiwake.dns import DNSTemporaryError
    from kittiwake.smtpclient import (
        Client,
        SMTPClientError,
        TLSError,
        TLSMode,
        unverified_context,
    )

    report: dict[str, Any] = {
        "host": host, "port": port, "addresses": None, "tlsa": None, "dnssec": False,
        "address": None, "starttls": None, "tls": None, "verification": None,
        "verified": False, "reason": "", "error": None,
    }

    def done(code: int, reason: str) -> tuple[dict[str, Any], int]:
        report["reason"] = reason
        return report, code

    try:
        addresses = await resolver.ips(host)
    except DNSTemporaryError as exc:
        return done(EXIT_TEMPORARY, f"address lookup of {host} failed: {exc.reason}")
    report["addresses"] = {"records": [str(a) for a in addresses.records],
                           "authentic": addresses.authentic, "status": str(addresses.status)}
    if not addresses.records:
        return done(EXIT_NOT_VERIFIED, f"{host} has no address records ({addresses.status})")
    if addresses.authentic:
        tlsa = await lookup_tlsa_for_host(resolver, host, port, addresses)
    else:
        # DANE does not apply (RFC 7672 §2.2.2), but show what is published.
        tlsa = await lookup_tlsa(resolver, host, port)
    report["tlsa"] = {**tlsa.to_json(), "records": _records_json((*tlsa.usable,
                                                                  *tlsa.unusable))}
    report["dnssec"] = addresses.authentic and tlsa.authentic
    if tlsa.status is TLSAStatus.TEMPERROR:
        # RFC 7672 §2.2.1: a sender defers; so do we.
        return done(EXIT_TEMPORARY, tlsa.reason)
    if not addresses.authentic:
        problem = (f"address records of {host} are not DNSSEC-authentic; DANE does not apply"
                   " (RFC 7672 §2.2.2)")
    elif tlsa.status is TLSAStatus.NONE:
        problem = f"no DANE: {tlsa.reason}"
    elif tlsa.status is TLSAStatus.UNUSABLE:
        problem = tlsa.reason
    else:
        problem = ""

    client = None
    errors = []
    for address in addresses.records:
        try:
            client = await Client.connect(
                str(address), port, local_hostname=ehlo_name, timeouts=timeout,
                tls=TLSMode.IMPLICIT if implicit else TLSMode.NONE,
                tls_context=unverified_context(), tls_server_name=host, remote_name=host)
        except SMTPClientError as exc:
            errors.append(f"{address}: {exc}")
            continue
        break
    if client is None:
        report["error"] = "; ".join(errors)
        return done(EXIT_TEMPORARY, f"could not connect to {host}: {report['error']}")
    code = EXIT_OK
    async with client:
        report["address"] = _peer(client)
        if not implicit:
            offered = bool(client.capabilities and client.capabilities.starttls)
            report["starttls"] = offered
            if not offered:
                return done(EXIT_NOT_VERIFIED, f"STARTTLS not offered by {host}; DANE needs"
                            " TLS (RFC 7672 §2.2)" + (f"; {problem}" if problem else ""))
            try:
                await client.starttls(host, unverified_context())
            except TLSError as exc:
                report["error"] = str(exc)
                return done(EXIT_NOT_VERIFIED, str(exc))
        assert client.tls is not None
        report["tls"] = _tls_report(client.tls)
        if tlsa.usable:
            names = reference_identifiers(host, tlsa.base_domain)
            result = verify(tlsa.usable, client.tls.chain_der, names)
            report["verification"] = {
                **result.to_json(),
                "matched_description": _describe(result.matched),
                "reference_identifiers": names,
            }
            if not result.ok:
                problem = problem or result.reason
            elif problem:
                problem = f"{problem} (the chain does match: {result.reason})"
        if problem:
            code = EXIT_NOT_VERIFIED
        else:
            report["verified"] = True
    return done(code, problem or report["verification"]["reason"])


def _describe(record: Any) -> str | None:
    from kittiwake.dane import describe

    return describe(record) if record is not None else None


@dane_group.command("dial")
@click.argument("target", metavar="HOST[:PORT]")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--implicit-tls", is_flag=True, help="TLS from the start (port 465), no STARTTLS.")
@click.option("--ehlo", "ehlo", metavar="NAME", help="Name to say in EHLO (default: this host).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds to wait for each step.")
@click.pass_context
def dane_dial_command(ctx: click.Context, target: str, as_json: bool, implicit_tls: bool,
                      ehlo: str | None, timeout: float) -> None:
    """Verify HOST's SMTP server (port 25) with DANE, as a sending server would.

    Resolves HOST's addresses and its TLSA records (both must be
    DNSSEC-authentic), connects, does STARTTLS, and checks the certificate
    chain against the usable TLSA records: shows the record that matched
    (or why none did), the TLS version and cipher. Honours KITTIWAKE_DNS.

    Exit status: 0 verified, 1 user error, 2 not verified (no TLSA, not
    DNSSEC-authentic, no STARTTLS, no match), 3 temporary failure (DNS
    SERVFAIL or timeout, cannot connect).
    """
    from kittiwake.dns import InvalidName, to_ascii

    host, port = parse_target(target)
    if _is_ip(host):
        raise UserError(f"{host}: DANE needs a host name (TLSA records are found by name)")
    try:
        host = to_ascii(host).lower()
    except InvalidName as exc:
        raise UserError(str(exc)) from None
    resolver = resolver_for(ctx)
    report, code = run(lambda: dane_dial(resolver, host, port, implicit=implicit_tls,
                                         ehlo_name=_ehlo_name(ehlo), timeout=timeout))
    if as_json:
        print_json(report)
    else:
        _print_dane(report)
    if code:
        raise click.exceptions.Exit(code)


def _authentic(flag: bool) -> str:
    return "DNSSEC-authentic" if flag else "NOT DNSSEC-authentic"


def _print_dane(report: dict[str, Any]) -> None:
    click.echo(f"{report['host']} port {report['port']}")
    addresses = report["addresses"]
    if addresses is not None:
        found = ", ".join(addresses["records"]) or f"none ({addresses['status']})"
        click.echo(f"Addresses: {found} ({_authentic(addresses['authentic'])})")
    tlsa = report["tlsa"]
    if tlsa is not None:
        click.echo(f"TLSA {tlsa['name']}: {tlsa['status']} ({_authentic(tlsa['authentic'])})")
        for rec in tlsa["records"]:
            why = f"  [unusable: {rec['unusable']}]" if rec["unusable"] else ""
            click.echo(f"  {rec['description']}{why}")
    if report["address"]:
        starttls = "" if report["starttls"] is None else \
            (", STARTTLS" if report["starttls"] else ", no STARTTLS")
        click.echo(f"Connected to {report['address']}{starttls}")
    if report["tls"]:
        click.echo(f"TLS: {report['tls']['version']}, {report['tls']['cipher']}")
        cert = report["tls"].get("certificate") or {}
        if cert.get("subject"):
            click.echo(f"  certificate: {cert['subject']} (issuer {cert['issuer']})")
    verification = report["verification"]
    if verification is not None and verification["matched"]:
        click.echo(f"Matched: {verification['matched_description']}")
    click.echo(f"DNSSEC: lookups were {'all ' if report['dnssec'] else 'not all '}"
               "DNSSEC-authentic")
    verdict = "VERIFIED" if report["verified"] else "NOT verified"
    click.echo(f"{verdict}: {report['reason']}")
