"""`python -m vision SUBCOMMAND ...`: a small dispatcher over the modules in vision/cli/."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

# Command name -> module vision.cli.<module> with add_parser(subparsers) and run(args) -> int.
# Modules are imported only when needed (all of them for --help), and a missing one is skipped
# so one subcommand never blocks the others.
SUBCOMMANDS = {"annotate": "annotate", "contact-sheet": "contact_sheet"}


def build_parser(
    only: str | None = None,
) -> tuple[argparse.ArgumentParser, dict[str, Callable[[argparse.Namespace], int]]]:
    """The parser with every available subcommand, or just `only` when it is a known one."""
    parser = argparse.ArgumentParser(
        prog="python -m vision", description="Vision tools: annotate images/videos, and more."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    runners: dict[str, Callable[[argparse.Namespace], int]] = {}
    modules = [SUBCOMMANDS[only]] if only in SUBCOMMANDS else list(SUBCOMMANDS.values())
    for name in modules:
        module_name = f"vision.cli.{name}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        before = set(sub.choices)
        module.add_parser(sub)
        for command in set(sub.choices) - before:
            runners[command] = module.run
    return parser, runners


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, runners = build_parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    result = runners[args.command](args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
