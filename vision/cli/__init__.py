"""Subcommands of `python -m vision`: each module exposes add_parser(subparsers) and run(args)."""
