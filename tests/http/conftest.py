"""Fixtures of the HTTP content tests (defined in httphelpers.py)."""

from httphelpers import ca, client_tls, config, ctx, serve, server_tls

__all__ = ["ca", "client_tls", "config", "ctx", "serve", "server_tls"]
