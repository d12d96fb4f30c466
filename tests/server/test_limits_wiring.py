"""The process shares one set of connection slots and one login limiter, built from [limits]."""

from __future__ import annotations

from pathlib import Path

from kittiwake.config import load
from kittiwake.server.app import Server


def test_every_listener_shares_the_configured_limits(tmp_path: Path) -> None:
    (tmp_path / "kittiwake.conf").write_text("""
hostname = "mail.example.org"
data_dir = "data"
[listeners.public]
ips = ["127.0.0.1"]
smtp = { enabled = true, port = 15250 }
[listeners.internal]
ips = ["127.0.0.2"]
submission = { enabled = true, port = 15870 }
[limits]
max_connections = 50
max_connections_per_ip = 7
listen_backlog = 300
[limits.login]
window_minutes = 10
network_max_failures = 12
max_delay_seconds = 2
trust_days = 1
""")
    (tmp_path / "domains.conf").write_text("")
    config = load(tmp_path)
    server = Server(config)
    try:
        public, internal = (server._smtp_context(listener)
                            for listener in config.static.listeners.values())
        assert public.connections is internal.connections is server.connection_slots
        assert public.login_limiter is internal.login_limiter is server.login_limiter
        assert (server.connection_slots.max_total, server.connection_slots.max_per_ip) == (50, 7)
        assert public.limits.listen_backlog == internal.limits.listen_backlog == 300
        policy = server.login_limiter.policy
        assert (policy.window, policy.network_max_failures) == (600, 12)
        assert (policy.max_delay, policy.trust, policy.ip_max_failures) == (2, 86400, 10)
    finally:
        server.store.close()
