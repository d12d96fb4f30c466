"""``kittiwake admin``: operator commands that work on the data directly.

``admin imapserve ACCOUNT`` runs one pre-authenticated IMAP session on
standard input and output (RFC 9051 §7.1.4 PREAUTH greeting), for
migrations over SSH (``ssh host kittiwake admin imapserve alice`` as the
tunnel command of mbsync, offlineimap or imapsync). Logs go to standard
error. Changes made by a running server show up at the session's next
SELECT (the live change broadcast is per process).
"""

from __future__ import annotations

import asyncio
import sys

import click

from kittiwake.cli.common import UserError, load_config


@click.group(name="admin")
def admin_group() -> None:
    """Operator commands."""


@admin_group.command(name="imapserve")
@click.argument("account")
@click.pass_context
def imapserve_command(ctx: click.Context, account: str) -> None:
    """A pre-authenticated IMAP session for ACCOUNT on stdin/stdout."""
    from kittiwake import log

    config = load_config(ctx)
    if account not in config.domains.accounts:
        known = ", ".join(sorted(config.domains.accounts)) or "none"
        raise UserError(f"no account {account!r} in domains.conf (known: {known})")
    level = ctx.find_root().obj.get("loglevel") or "warn"
    log.setup(level=level, packages=dict(config.static.log.packages),
              format=config.static.log.format)
    try:
        asyncio.run(_serve(config, account))
    except KeyboardInterrupt:
        pass


async def _serve(config, account: str) -> None:  # type: ignore[no-untyped-def]
    from kittiwake.imapserver.connection import IMAPConnection
    from kittiwake.imapserver.context import IMAPContext
    from kittiwake.store import Store

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin,
                                                        sys.stdout)
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    store = Store(config.data_dir)
    try:
        ctx = IMAPContext(hostname=config.static.hostname, store=store, domains=config.domains,
                          plaintext_login=True)
        await IMAPConnection(ctx, "imap", reader, writer, preauth=account).run()
    finally:
        store.close()
