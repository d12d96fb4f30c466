"""``kittiwake sendmail``: a drop-in for ``/usr/sbin/sendmail`` that submits with AUTH.

Cron jobs, web applications and scripts pipe a message into ``sendmail``;
this command submits it to the server configured in
``$KITTIWAKE_SUBMIT_CONF`` (default ``/etc/kittiwake-submit.conf``, see
:mod:`kittiwake.sendmail.settings`) over STARTTLS or TLS with the strongest
SASL mechanism offered (RFC 6409, RFC 4954). A message that cannot be
submitted is kept in the failures directory and the exit status says why
(sysexits.h: 75 try again later, 67 unknown recipient, 69 refused, 78
configuration, 64 usage).

Installing it as the system's sendmail: a symlink ``/usr/sbin/sendmail ->
kittiwake`` is *not* enough, because ``kittiwake`` is a command group that
needs the subcommand name. Install a two-line wrapper instead::

    cat > /usr/sbin/sendmail <<'SH'
    #!/bin/sh
    exec /path/to/kittiwake sendmail "$@"
    SH
    chmod 755 /usr/sbin/sendmail

(and ``/usr/lib/sendmail`` the same way if programs look there).
"""

from __future__ import annotations

import sys

import click

from kittiwake.cli.common import run

EPILOG = """\b
Options (sendmail(8) compatible):
  -t          recipients from the To, Cc and Bcc fields (plus any arguments)
  -i, -oi     a line with only "." does not end the message
  -f ADDR     envelope sender (-f '<>' for none); default: `from` in the config
  -F NAME     full name for the From field added when the message has none
Accepted and ignored: -bm -odi -odb -odq -oem -oee -oep -oeq -oew -om -oo -v -m
-n -U -G -Am -Ac -B TYPE -N DSN -R RET -V ENVID -O OPT=VAL -L TAG -h N -C FILE.
\b
Exit status: 0 sent, 64 usage, 67 unknown recipient, 69 refused,
75 temporary failure (try again), 78 configuration problem. On failure
the message is kept in failures_dir (default ~/.kittiwake-sendmail-failures).
"""


@click.command(
    "sendmail", epilog=EPILOG, add_help_option=False,
    options_metavar="[-t] [-i] [-f SENDER] [-F NAME]",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.argument("argv", nargs=-1, type=click.UNPROCESSED, metavar="[RECIPIENT]...")
@click.pass_context
def sendmail_command(ctx: click.Context, argv: tuple[str, ...]) -> None:
    """Send the message on standard input, like /usr/sbin/sendmail.

    Submits to the server in $KITTIWAKE_SUBMIT_CONF (default
    /etc/kittiwake-submit.conf), a TOML file with host, port (587), tls
    ("starttls", "tls", or "none" for localhost only), username, password
    or password_file, from (default sender), failures_dir, ca_file.
    Adds From, Date and Message-ID when missing, removes Bcc, and turns
    bare LF line ends into CRLF.
    """
    if "--help" in argv or "-h" in argv[:1]:
        click.echo(ctx.get_help())
        ctx.exit(0)
    ctx.exit(sendmail_main(list(argv)))


def _say(text: str) -> None:
    click.echo(f"kittiwake sendmail: {' '.join(text.split())}", err=True)


def sendmail_main(argv: list[str]) -> int:
    """The whole command: returns the exit status. Never loses a message it has read."""
    from kittiwake.sendmail import (
        EX_CONFIG,
        EX_SOFTWARE,
        EX_USAGE,
        ArgsError,
        NoRecipients,
        SettingsError,
        keep_failure,
        load_settings,
        normalize_line_ends,
        parse_args,
        prepare_message,
        read_message,
        submit,
    )
    from kittiwake.sendmail.settings import default_failures_dir

    try:
        opts = parse_args(argv)
    except ArgsError as exc:
        _say(str(exc))
        return EX_USAGE
    raw = read_message(sys.stdin.buffer, opts.ignore_dots)
    failures_dir = default_failures_dir()
    mailfrom = opts.sender or ""
    recipients = list(opts.recipients)
    data = normalize_line_ends(raw)

    def keep(reason: str, code: int) -> int:
        try:
            path = keep_failure(failures_dir, data, reason=reason, mailfrom=mailfrom,
                                recipients=recipients)
        except OSError as exc:
            _say(f"{reason}; and the message could not be saved ({exc}): it is on standard"
                 " error below")
            sys.stderr.buffer.write(data)
            sys.stderr.flush()
            return code
        _say(f"{reason}; message kept in {path}")
        return code

    try:
        settings = load_settings()
    except SettingsError as exc:
        return keep(str(exc), EX_CONFIG)
    failures_dir = settings.failures_dir
    if opts.sender is None:
        fallback = settings.sender or (settings.username if settings.username and
                                       "@" in settings.username else None)
        if fallback is None:
            return keep(f"no sender: give -f ADDRESS or set `from` in {settings.path}",
                        EX_CONFIG)
        mailfrom = fallback
    try:
        prepared = prepare_message(raw, mailfrom=mailfrom, recipients=opts.recipients,
                                   from_header_recipients=opts.from_header_recipients,
                                   full_name=opts.full_name)
    except NoRecipients as exc:
        return keep(str(exc), EX_USAGE)
    data = prepared.data
    recipients = prepared.recipients
    try:
        failure = run(lambda: submit(settings, prepared))
    except Exception as exc:  # a bug must not lose the message either
        return keep(f"internal error: {type(exc).__name__}: {exc}", EX_SOFTWARE)
    if failure is None:
        return 0
    recipients = failure.recipients
    return keep(failure.reason, failure.exit_code)


__all__ = ["sendmail_command", "sendmail_main"]
