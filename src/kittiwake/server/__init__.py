"""The running server: listeners, control socket, signals, graceful shutdown."""
