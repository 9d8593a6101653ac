"""Sub-commands of `omnimini`, one module each, registered in cli.py with `app.add_typer`."""
