"""The ``kittiwake`` command line (click)."""
