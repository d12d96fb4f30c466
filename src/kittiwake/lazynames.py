"""A package's names loaded from their submodules on first use (PEP 562).

A package whose ``__init__`` would import all its submodules makes every process
that needs one small part of it (a CPU worker, say) load the rest too; with
``__getattr__ = lazynames.loader(__name__, {"Name": "submodule", ...})`` each name
is imported when first asked for, then kept in the package's namespace.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping


def loader(package: str, home: Mapping[str, str]) -> Callable[[str], object]:
    """The module ``__getattr__`` of ``package``: ``home`` maps each name to the
    submodule that defines it."""
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> object:
        module = home.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    return __getattr__
