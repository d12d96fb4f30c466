"""``kittiwake version``."""

from __future__ import annotations

import platform

import click

from kittiwake import __version__


@click.command(name="version")
def version_command() -> None:
    """Print the kittiwake and Python versions."""
    click.echo(f"kittiwake {__version__} (Python {platform.python_version()})")
