"""The `tether` command (`tether.cli.commands`), one module per subcommand or concern."""

from tether.cli.commands import app, main

__all__ = ["app", "main"]
