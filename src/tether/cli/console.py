"""Where the command speaks to the user: stderr, so that stdout stays for results."""

from __future__ import annotations

import typer
from rich.console import Console

console = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Say what went wrong in one line; raise the returned Exit to end with ``code``."""
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)
