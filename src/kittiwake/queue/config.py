"""Settings of the outgoing queue; the model lives with the other config models."""

from kittiwake.config.static import QueueConfig

__all__ = ["QueueConfig"]
