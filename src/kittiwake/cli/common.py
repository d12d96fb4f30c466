"""Shared pieces of CLI commands: one-line user errors, JSON output, the resolver.

Errors a user can cause (bad arguments, bad config, unreachable resolver)
are raised as :class:`UserError` and printed as one line, ``kittiwake: ...``,
with exit status 1; never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from kittiwake.config import Config

T = TypeVar("T")


class UserError(click.ClickException):
    """A problem the user can fix, shown as one line."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"kittiwake: {self.format_message()}", err=True)


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    """Run an async command body on a fresh event loop."""
    return asyncio.run(coro_fn())  # type: ignore[arg-type]


def print_json(value: Any) -> None:
    """One JSON document on stdout, for scripts."""
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def load_config(ctx: click.Context, keys_apart: bool = False) -> Config:
    """Load both config files of ``--config`` or fail with every problem, one per line
    (``keys_apart``: see :func:`kittiwake.config.load.load`)."""
    from kittiwake.config import ConfigError, load

    try:
        return load(Path(ctx.find_root().obj["config_dir"]), keys_apart=keys_apart)
    except ConfigError as exc:
        for problem in exc.problems[:-1]:
            click.echo(problem, err=True)
        raise UserError(exc.problems[-1]) from None


def make_resolver(ctx: click.Context | None = None, cache: bool = False) -> Any:
    """The resolver for a command: KITTIWAKE_DNS, then config, then resolv.conf;
    ``cache`` keeps answers within their TTL (for the long-running server)."""
    from kittiwake.dns import ResolverConfigError, default_resolver

    explicit: list[str] | None = None
    state = (ctx.find_root().obj if ctx else None) or {}
    static = state.get("static_config")
    if static is not None:
        explicit = list(static.dns.resolvers) or None
    try:
        return default_resolver(explicit, cache=cache)
    except ResolverConfigError as exc:
        raise UserError(str(exc)) from None


def read_input(path: str | None) -> bytes:
    """The bytes of FILE, or of standard input when FILE is absent or '-'."""
    if path in (None, "-"):
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as f:  # type: ignore[arg-type]
            return f.read()
    except OSError as exc:
        raise UserError(f"{path}: {exc.strerror}") from None


def table(rows: list[list[str]], headers: list[str]) -> str:
    """Rows as an aligned plain-text table with a header line."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)
