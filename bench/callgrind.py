"""Reading a callgrind dump (``--callgrind-out-file``) for the CPU benchmarks."""

from __future__ import annotations

from pathlib import Path


def instructions(dump: Path) -> int:
    """The instructions (Ir) a dump counted: its ``summary:`` or ``totals:`` line."""
    ir = 0
    for line in dump.read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            ir = max(ir, int(line.split()[1]))
    return ir
