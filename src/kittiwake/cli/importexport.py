"""``kittiwake import mbox|maildir`` and ``kittiwake export mbox|maildir``."""

from __future__ import annotations

from pathlib import Path

import click

from kittiwake.cli.account import _load, _open_account
from kittiwake.cli.common import UserError, table
from kittiwake.cli.progress import Progress, human_bytes


def _source_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@click.command(name="import")
@click.argument("fmt", metavar="mbox|maildir", type=click.Choice(["mbox", "maildir"]))
@click.argument("account")
@click.argument("mailbox")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.pass_context
def import_command(ctx: click.Context, fmt: str, account: str, mailbox: str, path: Path) -> None:
    """Import an mbox file or a Maildir (or a directory or .zip/.tgz of them) into MAILBOX.

    Flags are kept: mbox Status/X-Status/X-Keywords headers, Maildir info
    flags and Dovecot keyword files. Sub-mailboxes found in a directory or
    archive are created below MAILBOX.
    """
    from kittiwake.store import StoreError
    from kittiwake.store.importer import import_path

    if fmt == "maildir" and path.is_file() and not path.name.lower().endswith(
            (".zip", ".tar", ".tgz", ".tar.gz")):
        raise UserError(f"{path}: a Maildir is a directory with cur/ and new/, this is a file"
                        " (did you mean `import mbox`?)")
    if fmt == "mbox" and path.is_dir() and (path / "cur").is_dir():
        raise UserError(f"{path}: this is a Maildir (did you mean `import maildir`?)")
    config = _load(ctx)
    store = _open_account(config, account)
    progress = Progress("imported", _source_size(path))
    try:
        try:
            result = import_path(store, mailbox, path, progress.update)
        finally:
            elapsed = progress.done()
        indexed, index_seconds = _index(store)
    except StoreError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"import failed: {exc}") from None
    finally:
        store.close()
    rows = [[name, f"{n:,}"] for name, n in sorted(result.mailboxes.items())]
    if rows:
        click.echo(table(rows, ["mailbox", "imported"]))
    rate = result.imported / elapsed if elapsed else 0
    click.echo(f"imported {result.imported:,} messages ({human_bytes(result.bytes)}) in"
               f" {elapsed:.1f} s ({rate:,.0f}/s); skipped {len(result.skipped)}")
    for source, reason in result.skipped[:50]:
        click.echo(f"  skipped {source}: {reason}")
    if len(result.skipped) > 50:
        click.echo(f"  ... and {len(result.skipped) - 50} more")
    if indexed:
        click.echo(f"indexed {indexed:,} messages for search in {index_seconds:.1f} s")


def _index(store) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    """Index what the import added (and anything else pending), with a progress line.

    Interrupted (Ctrl-C), the imported messages stay; the rest of the index is
    done by the server's background indexer when it opens the account, or by
    the next import. Text extraction runs in worker processes (one per core
    beyond the first); the index rows are written here.
    """
    from kittiwake.cpupool import CpuPool, default_workers
    from kittiwake.store.importer import index_pending

    progress = Progress("indexed for search")
    pool = CpuPool(default_workers(), preload=["kittiwake.message.searchtext"])
    try:
        pool.start()
        count = index_pending(store, pool, lambda done, _total: progress.update(done))
    finally:
        pool.close()
    return count, progress.done() if count else 0.0


@click.command(name="export")
@click.argument("fmt", metavar="mbox|maildir", type=click.Choice(["mbox", "maildir"]))
@click.argument("account")
@click.argument("destdir", type=click.Path(file_okay=False, path_type=Path))
@click.argument("mailbox", required=False)
@click.pass_context
def export_command(ctx: click.Context, fmt: str, account: str, destdir: Path,
                   mailbox: str | None) -> None:
    """Export ACCOUNT (or one MAILBOX) to DESTDIR as mbox files or Maildirs."""
    from kittiwake.store import StoreError
    from kittiwake.store.exporter import export

    config = _load(ctx)
    store = _open_account(config, account)
    progress = Progress("exported")
    try:
        counts = export(store, fmt, destdir, mailbox, lambda n: progress.update(n))
    except StoreError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"export failed: {exc}") from None
    finally:
        store.close()
    progress.done()
    click.echo(table([[n, f"{c:,}"] for n, c in counts.items()], ["mailbox", "messages"]))
    click.echo(f"exported {sum(counts.values()):,} messages to {destdir}")
