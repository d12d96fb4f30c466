"""``kittiwake quickstart you@example.org``: set up a real server for a domain.

Writes config, keys, the account and a systemd unit (see
:mod:`kittiwake.setup.quickstart`), prints the password once, every DNS
record to publish (zone file and words) and what to do next.
"""

from __future__ import annotations

import ipaddress
import pwd
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from kittiwake.cli.common import UserError

if TYPE_CHECKING:
    from kittiwake.setup import DNSRecord, DomainFacts
    from kittiwake.setup.quickstart import Options, Outcome


def _address(address: str) -> str:
    """you@example.org with the domain in A-labels, or one line saying what is wrong."""
    from kittiwake.dns import InvalidName, mail_domain
    from kittiwake.publicsuffix import is_public_suffix
    from kittiwake.smtp.address import AddressError, parse_address

    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or domain.startswith("["):
        raise UserError(f"{address!r}: expected your address, like you@example.org")
    try:
        ascii_domain = mail_domain(domain).ascii
        parse_address(f"{local}@{ascii_domain}")
    except (InvalidName, AddressError) as exc:
        raise UserError(f"{address!r} is not a valid address: {exc}") from None
    if is_public_suffix(ascii_domain):
        raise UserError(f"{ascii_domain!r} is a public suffix (like com or co.uk); give an"
                        " address at your own domain")
    from kittiwake.cli.account import ACCOUNT_NAME

    if ACCOUNT_NAME.fullmatch(local) is None:
        raise UserError(f"{address!r}: the local part {local!r} becomes the account name,"
                        " which allows 1-64 letters, digits, '.', '_' or '-'")
    return f"{local.lower()}@{ascii_domain}"


def _hostname(hostname: str) -> str:
    from kittiwake.config.base import _check_host_name
    from kittiwake.dns import InvalidName, mail_domain

    try:
        return _check_host_name(mail_domain(hostname).ascii)
    except (InvalidName, ValueError) as exc:
        raise UserError(f"--hostname {hostname!r}: {exc}") from None


def local_public_ips() -> list[str]:
    """This machine's public addresses, as the routing table picks them for the Internet.

    A UDP socket "connected" to a global address sends nothing; its local
    address is the one the kernel would use. Private addresses (behind NAT)
    are left out: they are not what the world sees.
    """
    found = []
    for family, target in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        # TEST-NET/documentation targets: only the route matters, no packet is sent.
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.connect((target, 9))
                ip = ipaddress.ip_address(s.getsockname()[0])
        except OSError:
            continue
        if ip.is_global:
            found.append(str(ip))
    return found


def _ips(given: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for text in given:
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            raise UserError(f"--ip {text!r} is not an IP address (e.g. 198.51.100.7 or"
                            " 2001:db8::7)") from None
        if ip.is_unspecified or ip.is_multicast:
            raise UserError(f"--ip {text}: give the server's own public address, not {ip}")
        if str(ip) not in out:
            out.append(str(ip))
    if out:
        return out
    detected = local_public_ips()
    if not detected:
        raise UserError("cannot tell this machine's public IP address (none of its addresses"
                        " is public: behind NAT?); give it with --ip (repeat for IPv6)")
    return detected


@click.command(name="quickstart")
@click.argument("address")
@click.option("--hostname", default=None, metavar="HOST",
              help="The server's host name (MX target, TLS certificate); default mail.DOMAIN.")
@click.option("--ip", "ips", multiple=True, metavar="IP",
              help="Public IP address of the server (repeat for IPv4 and IPv6); used for the"
                   " listeners, SPF, A/AAAA and reverse DNS. Default: detected.")
@click.option("--existing-webserver", is_flag=True,
              help="Another web server has ports 80/443: kittiwake's web service listens on"
                   " 127.0.0.1 and the web server proxies to it.")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=".", show_default=True,
              help="Directory for config/ and data/ (and the systemd unit).")
@click.option("--acme-directory", default=None, metavar="URL",
              help="ACME directory URL (default: Let's Encrypt).")
@click.option("--acme-ca-file", default=None, metavar="FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Extra CA certificate to trust the ACME directory's HTTPS with (test CAs).")
@click.option("--acme-issuer", "acme_issuers", multiple=True, metavar="DOMAIN",
              help="CAA issuer domain of the ACME authority (known for Let's Encrypt).")
@click.option("--user", default="kittiwake", show_default=True,
              help="Unprivileged user `serve` runs as after binding its ports.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the records (and password) as JSON instead of text.")
def quickstart_command(address: str, hostname: str | None, ips: tuple[str, ...],
                       existing_webserver: bool, directory: Path, acme_directory: str | None,
                       acme_ca_file: Path | None, acme_issuers: tuple[str, ...], user: str,
                       as_json: bool) -> None:
    """Set up kittiwake for ADDRESS's domain: config, keys, account, DNS records."""
    from kittiwake.setup import domain_facts, records_for, render_json
    from kittiwake.setup.quickstart import LETS_ENCRYPT, Options, QuickstartError, quickstart

    clean = _address(address)
    domain = clean.rsplit("@", 1)[1]
    host = _hostname(hostname or f"mail.{domain}")
    issuers = [_hostname(i) for i in acme_issuers]
    opts = Options(address=clean, hostname=host, directory=directory.resolve(),
                   ips=_ips(ips), existing_webserver=existing_webserver,
                   acme_directory=acme_directory or LETS_ENCRYPT,
                   acme_ca_file=str(acme_ca_file.resolve()) if acme_ca_file else "",
                   acme_issuers=issuers, user=user, executable=_executable())
    try:
        outcome = quickstart(opts)
    except QuickstartError as exc:
        raise UserError(str(exc)) from None
    facts = domain_facts(outcome.config, domain)
    records = records_for(facts)
    if as_json:
        import json

        data = json.loads(render_json(records, facts))
        data.update({"account": outcome.account, "address": clean,
                     "password": outcome.password,
                     "config_dir": str(outcome.config.config_dir),
                     "files": [str(f) for f in outcome.files]})
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(report(opts, outcome, facts, records))


def _executable() -> str:
    found = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    if found is not None and found.name == "kittiwake" and found.exists():
        return str(found)
    import shutil

    return shutil.which("kittiwake") or "kittiwake"


def report(opts: Options, outcome: Outcome, facts: DomainFacts,
           records: list[DNSRecord]) -> str:
    """Everything quickstart tells the user, in the order they need it."""
    from kittiwake.setup import render_words, render_zone
    from kittiwake.setup.quickstart import INTERNAL_HTTP_PORT, INTERNAL_IP

    config_dir = outcome.config.config_dir
    lines = [f"kittiwake is set up for {facts.domain} in {opts.directory}:", ""]
    lines += [f"  {f}" for f in outcome.files]
    lines += ["",
              f"Your account: {opts.address} (account name {outcome.account})",
              f"Password:     {outcome.password}",
              "  It is shown only this once and stored only as SCRAM/CRAM secrets: write it"
              " down now.",
              f"  Change it with `kittiwake --config {config_dir} account setpassword"
              f" {outcome.account}`.",
              f"Mail clients: IMAP {facts.hostname} port 993 (TLS), submission port 465 (TLS)"
              " or 587 (STARTTLS), user name: your address.",
              "",
              "Publish these DNS records (zone-file form; names are absolute):", "",
              render_zone(records, facts).rstrip(), "",
              "The same records in words:", "",
              render_words(records, facts).rstrip(), ""]
    if opts.existing_webserver:
        backend = f"http://{INTERNAL_IP}:{INTERNAL_HTTP_PORT}"
        d = facts.domain
        lines += [
            "Your web server keeps ports 80 and 443. Make it proxy these to kittiwake at"
            f" {backend}, passing the Host header (and X-Forwarded-For/-Proto):",
            f"  http://{facts.hostname}/.well-known/acme-challenge/   (ACME http-01 for"
            " kittiwake's certificate)",
            f"  http://mta-sts.{d}/.well-known/acme-challenge/ and"
            f" http://autoconfig.{d}/.well-known/acme-challenge/",
            f"  https://mta-sts.{d}/.well-known/mta-sts.txt   (MTA-STS policy; your web server"
            f" needs a certificate for mta-sts.{d})",
            f"  https://autoconfig.{d}/mail/config-v1.1.xml   (Thunderbird autoconfig)",
            f"  https://autodiscover.{d}/autodiscover/autodiscover.xml   (Outlook"
            " autodiscover)",
            "  With the web server in front, point mta-sts., autoconfig. and autodiscover. at"
            " the web server's address rather than CNAMEs to the mail host if they differ.",
            "  For nginx, e.g.:",
            f"    server {{ listen 80; server_name {facts.hostname} mta-sts.{d} autoconfig.{d};",
            f"      location /.well-known/acme-challenge/ {{ proxy_pass {backend};"
            " proxy_set_header Host $host; } }",
            f"    server {{ listen 443 ssl; server_name mta-sts.{d} autoconfig.{d}"
            f" autodiscover.{d}; (ssl_certificate ...)",
            f"      location / {{ proxy_pass {backend}; proxy_set_header Host $host;"
            " proxy_set_header X-Forwarded-For $remote_addr;"
            " proxy_set_header X-Forwarded-Proto https; } }",
            ""]
    lines += ["Next steps:"]
    step = 1
    if opts.user:
        try:
            pwd.getpwnam(opts.user)
        except KeyError:
            lines.append(f"  {step}. Create the user the server runs as: `useradd --system"
                         f" --home-dir {opts.directory} {opts.user}` and `chown -R"
                         f" {opts.user}: {outcome.config.data_dir} {config_dir}/dkim"
                         f" {config_dir}/hostkeys`.")
            step += 1
    lines += [f"  {step}. Publish the records above, and ask your hosting provider for the"
              " reverse DNS (PTR) records.",
              f"  {step + 1}. Start the server: `kittiwake --config {config_dir} serve`, or"
              f" with systemd: `cp {outcome.unit_file} /etc/systemd/system/ && systemctl"
              " daemon-reload && systemctl enable --now kittiwake`.",
              f"  {step + 2}. Check the published records: `kittiwake --config {config_dir}"
              f" config dnscheck {facts.domain}` (again after the first certificate arrives;"
              " `config dnsrecords` prints the records again).",
              f"  {step + 3}. Test: send mail to and from {opts.address}, e.g. to a mail"
              " tester, and look at the DKIM, SPF and DMARC results."]
    return "\n".join(lines)
