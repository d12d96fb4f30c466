"""``kittiwake dkim ...``: make DKIM keys and DNS records, sign and verify messages.

    kittiwake dkim gen ed25519|rsa [--bits N] --out key.pem   # created with mode 0600
    kittiwake dkim txt key.pem                      # TXT value for SELECTOR._domainkey.DOMAIN
    kittiwake dkim sign --domain D --selector S --key key.pem [FILE] > signed.eml
    kittiwake dkim verify [--json] [FILE]

``verify`` exit status: 0 every signature passed, 1 user error, 2 some
signature did not pass (fail, permerror, neutral, policy) or there is no
signature, 3 only temporary errors stand between the message and a pass
(temperror: try again later).
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any

import click

from kittiwake.cli.common import UserError, make_resolver, print_json, read_input, run, table

EXIT_NOT_PASS = 2
EXIT_TEMPORARY = 3


def resolver_factory(ctx: click.Context) -> Any:
    """The resolver ``verify`` uses; tests replace this seam."""
    return make_resolver(ctx)


@click.group(name="dkim")
def dkim_group() -> None:
    """DKIM keys, DNS records, signing and verification (RFC 6376, 8463)."""


@dkim_group.command("gen")
@click.argument("kind", type=click.Choice(["ed25519", "rsa"], case_sensitive=False))
@click.option("--bits", type=int, default=2048, show_default=True,
              help="RSA key size (at least 1024; RFC 8301).")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the key to this new file, readable only by you (mode 0600),"
                   " instead of standard output.")
def gen(kind: str, bits: int, out: Path | None) -> None:
    """Make a new private key (PKCS#8 PEM) of KIND.

    With --out FILE it is written to FILE, created with mode 0600 (an
    existing FILE is not overwritten). Without it the key goes to standard
    output; a file made with the shell's '>' is then readable by others
    unless your umask says otherwise, so prefer --out.
    """
    from kittiwake.dkim import generate_key

    try:
        pem = generate_key(kind.lower(), bits=bits)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if out is None:
        click.echo(pem.decode(), nl=False)
        _warn_if_stdout_is_readable()
        return
    from kittiwake.server.tls import write_private_file

    try:
        write_private_file(out, pem, exclusive=True)
    except FileExistsError:
        raise UserError(f"--out {out}: file exists; not overwritten (choose a new name)"
                        ) from None
    except OSError as exc:
        raise UserError(f"--out {out}: {exc.strerror}") from None
    click.echo(f"private key written to {out} (mode 0600, readable only by you)", err=True)


def _warn_if_stdout_is_readable() -> None:
    """Say so when the key just went into a file that others may read."""
    try:
        st = os.fstat(sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        return  # not a real file descriptor (e.g. captured output)
    if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077:
        click.echo(f"warning: the private key went to a file with mode"
                   f" {stat.S_IMODE(st.st_mode):04o}, readable by others: chmod 600 it,"
                   " or use --out FILE next time", err=True)


def _load_key_file(path: str, private_only: bool) -> Any:
    from kittiwake.dkim import load_private_key, load_public_key

    data = read_input(path)
    try:
        return load_private_key(data)
    except ValueError as exc:
        if private_only:
            raise UserError(f"{path}: {exc}") from None
        try:
            return load_public_key(data)
        except ValueError:
            raise UserError(f"{path}: {exc}; not a PEM public key either") from None


@dkim_group.command("txt")
@click.argument("keyfile", type=click.Path(dir_okay=False))
def txt(keyfile: str) -> None:
    """Print the DNS TXT record value for KEYFILE (private or public key PEM).

    Publish it at SELECTOR._domainkey.DOMAIN.
    """
    from kittiwake.dkim import dns_record

    click.echo(dns_record(_load_key_file(keyfile, private_only=False)))


@dkim_group.command("sign")
@click.option("--domain", "-d", required=True, help="Signing domain (d=).")
@click.option("--selector", "-s", required=True, help="Selector (s=).")
@click.option("--key", "keyfile", required=True, type=click.Path(dir_okay=False),
              help="Private key PEM file.")
@click.option("--canonicalization", "-c", default="relaxed/relaxed", show_default=True,
              help="HEADER/BODY canonicalization: simple or relaxed.")
@click.option("--identity", "-i", default=None, help="Agent or user identifier (i=).")
@click.option("--expire", type=int, default=None,
              help="Seconds until the signature expires (x=).")
@click.argument("file", required=False)
def sign_command(domain: str, selector: str, keyfile: str, canonicalization: str,
                 identity: str | None, expire: int | None, file: str | None) -> None:
    """Sign FILE (standard input when absent) and print the signed message."""
    from kittiwake.dkim import sign_message

    key = _load_key_file(keyfile, private_only=True)
    head, _, body = canonicalization.lower().partition("/")
    message = read_input(file)
    try:
        signed = sign_message(message, domain, selector, key,
                              canonicalization=(head, body or "simple"), identity=identity,
                              expiration=expire)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    sys.stdout.buffer.write(signed)
    sys.stdout.buffer.flush()


@dkim_group.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object a signature.")
@click.argument("file", required=False)
@click.pass_context
def verify_command(ctx: click.Context, as_json: bool, file: str | None) -> None:
    """Verify every DKIM signature of FILE (standard input when absent).

    Exit status: 0 all signatures passed, 1 user error, 2 a signature did
    not pass or there is none, 3 temporary (DNS) errors only.
    """
    from kittiwake.dkim import Status, verify

    message = read_input(file)
    resolver = resolver_factory(ctx)
    results = run(lambda: verify(resolver, message))
    if as_json:
        print_json([r.to_json() for r in results])
    elif not results:
        click.echo("no DKIM signatures")
    else:
        rows = []
        for r in results:
            notes = [r.error] if r.error else []
            if r.body_length_limited:
                notes.append("l= leaves part of the body unsigned")
            if r.testing:
                notes.append("key in testing mode (t=y)")
            rows.append([r.status.value, r.domain, r.selector, r.algorithm,
                         "yes" if r.authentic else "no", "; ".join(notes)])
        click.echo(table(rows, ["STATUS", "DOMAIN", "SELECTOR", "ALGORITHM", "DNSSEC", "NOTE"]))
    statuses = {r.status for r in results}
    if not results or statuses - {Status.PASS, Status.TEMPERROR}:
        ctx.exit(EXIT_NOT_PASS)
    if Status.TEMPERROR in statuses:
        ctx.exit(EXIT_TEMPORARY)
