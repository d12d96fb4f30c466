"""The traditional sendmail command line, as programs call ``/usr/sbin/sendmail``.

Options follow sendmail(8) and Postfix's sendmail(1): single-letter options
that may be grouped (``-ti``), option values attached or separate (``-fADDR``
or ``-f ADDR``), and the ``-o``/``-b``/``-e`` families whose letters follow
the option (``-oi``, ``-odi``, ``-bm``). Options that only tune a local
sendmail daemon (delivery mode, error mode, DSN, body type, ...) are accepted
and ignored, so existing callers keep working; anything else is refused with
one line naming the option, before any input is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["ArgsError", "Options", "parse_args"]


class ArgsError(ValueError):
    """The command line asks for something this sendmail does not do."""


@dataclass
class Options:
    """What the command line asked for."""

    recipients: list[str] = field(default_factory=list)
    from_header_recipients: bool = False  # -t
    ignore_dots: bool = False  # -i / -oi: a lone "." line does not end the input
    sender: str | None = None  # -f / -r; "" is the null reverse-path
    full_name: str | None = None  # -F
    ignored: list[str] = field(default_factory=list)  # accepted, no effect


# Flags that take no value; "t" and "i" matter, the others are accepted and ignored:
# -v verbose, -m "me too" (obsolete), -n no aliasing, -U initial submission,
# -G gateway submission.
_FLAGS = set("tivmnUG")
# Options with a value: -f/-r sender, -F full name; ignored: -B body type,
# -N DSN notify, -R DSN ret, -V envelope id, -O option=value, -L syslog tag,
# -h hop count, -C configuration, -p protocol, -X traffic log.
_VALUED = set("frFBNRVOLhCpX")
# -b modes: only "deliver a message" (-bm, the default) is what we do.
_MODES = {"m"}
_REFUSED_MODES = {
    "s": "SMTP on standard input (-bs)",
    "p": "printing the queue (-bp)",
    "d": "running as a daemon (-bd)",
    "D": "running as a daemon (-bD)",
    "i": "rebuilding aliases (-bi)",
    "v": "verifying addresses (-bv)",
    "t": "address test mode (-bt)",
    "a": "ARPANET mode (-ba)",
    "h": "printing persistent host status (-bh)",
    "H": "purging host status (-bH)",
}
# -o options of sendmail 8 that only tune local behaviour (besides -oi).
_O_IGNORED = ("e", "d", "m", "o", "A", "Q", "L", "B", "T")


def parse_args(argv: Sequence[str]) -> Options:
    """Parse a sendmail command line (without the program name). Raises ArgsError."""
    opts = Options()
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            opts.recipients.extend(args[i:])
            break
        if not arg.startswith("-") or arg == "-":
            opts.recipients.append(arg)
            continue
        letter = arg[1]
        if letter == "o":
            _parse_o(arg, opts)
            continue
        if letter == "b":
            mode = arg[2:]
            if mode in _MODES:
                opts.ignored.append(arg)
                continue
            what = _REFUSED_MODES.get(mode[:1])
            raise ArgsError(f"{arg}: {what or 'unknown mode'} is not supported; "
                            "this sendmail only submits a message (-bm)")
        if letter == "e" and len(arg) == 3 and arg[2] in "mepqw":
            opts.ignored.append(arg)  # error reporting mode: we always exit non-zero
            continue
        if letter == "A" and arg in ("-Am", "-Ac"):
            opts.ignored.append(arg)
            continue
        if letter == "q":
            raise ArgsError(f"{arg}: running the queue is not supported (there is no local"
                            " queue: failed messages are kept in the failures directory)")
        # A group of single-letter options, the last of which may take a value.
        pos = 1
        while pos < len(arg):
            ch = arg[pos]
            pos += 1
            if ch in _FLAGS:
                if ch == "t":
                    opts.from_header_recipients = True
                elif ch == "i":
                    opts.ignore_dots = True
                else:
                    opts.ignored.append(f"-{ch}")
                continue
            if ch in _VALUED:
                if pos < len(arg):
                    value = arg[pos:]
                elif i < len(args):
                    value = args[i]
                    i += 1
                else:
                    raise ArgsError(f"option -{ch} needs a value")
                _set_value(ch, value, opts)
                break
            raise ArgsError(f"unknown option -{ch} (in {arg!r}); see `kittiwake sendmail"
                            " --help` for the options understood")
    return opts


def _parse_o(arg: str, opts: Options) -> None:
    option = arg[2:]
    if option == "i":
        opts.ignore_dots = True  # -oi: same as -i
    elif option and option[0] in _O_IGNORED:
        opts.ignored.append(arg)
    else:
        raise ArgsError(f"unknown option {arg}; see `kittiwake sendmail --help` for the"
                        " options understood")


def _set_value(ch: str, value: str, opts: Options) -> None:
    if ch in "fr":
        # "<>" (or an empty value) is the null reverse-path (RFC 5321 §4.5.5).
        sender = value.strip()
        if sender.startswith("<") and sender.endswith(">"):
            sender = sender[1:-1].strip()
        opts.sender = sender
    elif ch == "F":
        opts.full_name = value
    else:
        opts.ignored.append(f"-{ch} {value}")
