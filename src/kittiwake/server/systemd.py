"""The systemd unit for ``kittiwake serve`` (written by ``kittiwake quickstart``).

``Type=notify``: systemd waits for READY=1 (:mod:`kittiwake.server.sdnotify`),
sent once every listener is bound. The service starts as root so that it can
bind ports 25, 465, 587, 143, 993, 80 and 443, then drops to the ``user`` of
kittiwake.conf itself (:mod:`kittiwake.server.privileges`); so no ``User=``
line, and no ambient capabilities are needed. ``NoNewPrivileges=yes`` is
compatible with that: it only stops execve from gaining privileges, and
setuid to a lower user needs none. ``ExecReload`` sends SIGHUP (reload
certificate files; the service reports RELOADING=1 then READY=1).

Hardening keeps what serve needs: the file system is read-only
(``ProtectSystem=strict``) except the data and config directories
(``ReadWritePaths=``: serve fixes their ownership as root before it drops,
see privileges.prepare_files; after the drop it can only write what its
user owns); ``CapabilityBoundingSet`` is limited to binding low ports,
changing user and changing file ownership; system calls to
``@system-service``. Not set: ``MemoryDenyWriteExecute`` (libffi, which
ctypes and cffi use, may need writable-executable memory) and
``PrivateUsers`` (it would make the drop to the configured uid impossible).
Stopping is SIGTERM (a graceful shutdown, as ``kittiwake stop``).
"""

from __future__ import annotations

from pathlib import Path

from kittiwake.config import load_static


def unit_text(executable: str, config_file: Path) -> str:
    """The text of ``kittiwake.service`` for ``executable`` (the kittiwake command).

    ``config_file`` is the path of kittiwake.conf; its directory is passed as
    ``--config`` and its ``data_dir`` becomes the only writable path.
    Raises kittiwake.config.ConfigError when kittiwake.conf does not load.
    """
    config_dir = config_file.resolve().parent
    static = load_static(config_dir)
    data_dir = (config_dir / static.data_dir).resolve()
    command = f"{executable} --config {config_dir}"
    return f"""\
[Unit]
Description=kittiwake mail server
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
NotifyAccess=main
ExecStart={command} serve
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=5s
TimeoutStopSec={int(static.shutdown_grace_seconds) + 30}s
LimitNOFILE=65536
UMask=0027

# serve starts as root, binds its ports and drops to user = "{static.user}" itself.
CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_SETUID CAP_SETGID
CapabilityBoundingSet=CAP_CHOWN CAP_FOWNER CAP_DAC_OVERRIDE
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths={data_dir} {config_dir}
ProtectHome=read-only
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM

[Install]
WantedBy=multi-user.target
"""
