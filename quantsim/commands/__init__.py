"""Subcommands of the `quantsim` CLI, one module each (see quantsim/cli.py)."""
