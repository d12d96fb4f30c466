"""kittiwake: a complete, secure mail server for people who host email for their own domains."""

__version__ = "0.1.0"
