"""LIST and LSUB answers (RFC 9051 §6.3.9, RFC 5258 LIST-EXTENDED, RFC 6154).

Pure functions over the account's mailbox names, subscriptions and
special-use attributes; the session turns the :class:`ListItem` results into
``* LIST`` / ``* LSUB`` responses. Names are Unicode with ``/`` as the
hierarchy separator; the store calls the inbox ``Inbox`` and IMAP ``INBOX``
(RFC 9051 §5.1: case-insensitive), which :func:`imap_name` and
:func:`store_name` translate.

Wildcards (RFC 9051 §6.3.9): ``*`` matches any characters, ``%`` any but
the separator; the reference name is prefixed to the pattern. When ``%``
ends a pattern, a hierarchy level that matches but does not exist is still
listed (with ``\\NonExistent``, which implies ``\\Noselect``, RFC 5258
§3.4) when it has children, so clients can walk the tree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["SEPARATOR", "ListItem", "ListOptions", "imap_name", "list_mailboxes", "lsub",
           "store_name"]

SEPARATOR = "/"


def imap_name(name: str) -> str:
    """The store's ``Inbox[/...]`` as IMAP's ``INBOX[/...]``."""
    first, sep, rest = name.partition(SEPARATOR)
    return "INBOX" + sep + rest if first == "Inbox" else name


def store_name(name: str) -> str:
    """An IMAP mailbox name as the store names it (INBOX in any case -> Inbox)."""
    first, sep, rest = name.partition(SEPARATOR)
    return "Inbox" + sep + rest if first.upper() == "INBOX" else name


@dataclass(frozen=True)
class ListOptions:
    """LIST-EXTENDED selection and return options (RFC 5258 §3, RFC 6154 §5)."""

    subscribed: bool = False  # selection: only subscribed (includes non-existent)
    recursive_match: bool = False  # selection: parents of matching children too
    special_use: bool = False  # selection: only special-use mailboxes
    return_subscribed: bool = False
    return_children: bool = True
    return_special_use: bool = True


@dataclass
class ListItem:
    """One ``* LIST (attributes) "/" name [extended data]`` line."""

    name: str  # IMAP form (INBOX, not Inbox)
    attributes: list[str] = field(default_factory=list)
    childinfo: list[str] = field(default_factory=list)  # RFC 5258 CHILDINFO ("SUBSCRIBED")


def _pattern(reference: str, pattern: str) -> re.Pattern[str]:
    full = reference + pattern
    out = []
    for ch in full:
        if ch == "*":
            out.append(".*")
        elif ch == "%":
            out.append(f"[^{re.escape(SEPARATOR)}]*")
        else:
            out.append(re.escape(ch))
    regex = "".join(out)
    # INBOX is case-insensitive (RFC 9051 §5.1): match the first level so.
    head, sep, tail = full.partition(SEPARATOR)
    if head.upper() == "INBOX":
        regex = "(?i:INBOX)" + "".join(
            re.escape(c) if c not in "*%" else (".*" if c == "*" else f"[^{SEPARATOR}]*")
            for c in sep + tail)
    return re.compile(regex + r"\Z", re.DOTALL)


def _parents(name: str) -> Iterable[str]:
    parts = name.split(SEPARATOR)
    for i in range(1, len(parts)):
        yield SEPARATOR.join(parts[:i])


def list_mailboxes(mailboxes: Mapping[str, str], subscriptions: Iterable[str],
                   reference: str, patterns: Iterable[str],
                   options: ListOptions = ListOptions()) -> list[ListItem]:
    """The LIST answer: ``mailboxes`` maps each IMAP name to its special use ('' for none)."""
    patterns = list(patterns)
    subscribed = {imap_name(s) for s in subscriptions}
    existing = dict(mailboxes)
    if patterns == [""] and not options.subscribed:
        # RFC 9051 §6.3.9: the hierarchy delimiter and the reference's root.
        root = reference.split(SEPARATOR)[0] if reference else ""
        return [ListItem(root, ["\\Noselect"])]
    regexes = [_pattern(reference, p) for p in patterns]
    trailing_percent = any((reference + p).endswith("%") for p in patterns)

    def matches(name: str) -> bool:
        return any(r.match(name) for r in regexes)

    # Every name the tree knows: mailboxes, their implied parents, subscriptions.
    universe = set(existing)
    for name in list(existing):
        universe.update(_parents(name))
    if options.subscribed:
        universe.update(subscribed)
        for name in list(subscribed):
            universe.update(_parents(name))
    has_children = {p for name in universe for p in _parents(name) if name in existing}

    items: list[ListItem] = []
    for name in sorted(universe, key=_sort_key):
        exists = name in existing
        if options.subscribed:
            selected = name in subscribed and matches(name)
            childinfo = []
            if (options.recursive_match and not selected and matches(name)
                    and any(s.startswith(name + SEPARATOR) for s in subscribed)):
                childinfo = ["SUBSCRIBED"]
            if not selected and not childinfo:
                continue
        else:
            childinfo = []
            if not matches(name):
                continue
            if not exists and not (trailing_percent and name in has_children):
                continue
        if options.special_use and not (exists and existing[name]):
            continue
        attrs: list[str] = []
        if not exists:
            attrs.append("\\NonExistent")
        if options.return_children or not exists:
            attrs.append("\\HasChildren" if name in has_children else "\\HasNoChildren")
        if (options.return_subscribed or options.subscribed) and name in subscribed:
            attrs.append("\\Subscribed")
        if options.return_special_use and exists and existing[name]:
            attrs.append(existing[name])
        items.append(ListItem(name, attrs, childinfo))
    return items


def lsub(mailboxes: Iterable[str], subscriptions: Iterable[str], reference: str,
         pattern: str) -> list[ListItem]:
    """The IMAP4rev1 LSUB answer (RFC 3501 §6.3.9).

    Subscribed names that match; with a trailing ``%``, an unsubscribed
    parent of subscribed children is listed with ``\\Noselect``.
    """
    existing = set(mailboxes)
    subscribed = {imap_name(s) for s in subscriptions}
    regex = _pattern(reference, pattern)
    out: dict[str, ListItem] = {}
    for name in sorted(subscribed, key=_sort_key):
        if regex.match(name):
            out[name] = ListItem(name, [] if name in existing else ["\\Noselect"])
    if pattern.endswith("%"):
        for name in subscribed:
            for parent in _parents(name):
                if parent not in out and regex.match(parent):
                    out[parent] = ListItem(parent, ["\\Noselect"])
    return [out[n] for n in sorted(out, key=_sort_key)]


def _sort_key(name: str) -> tuple[int, str]:
    return (0 if name.split(SEPARATOR)[0] == "INBOX" else 1, name)
