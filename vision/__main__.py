"""`python -m vision SUBCOMMAND ...`: a small dispatcher over the modules in vision/cli/."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

# Each name is a module vision.cli.<name> with add_parser(subparsers) and run(args) -> int.
# Missing optional modules are skipped so one subcommand never blocks the others.
SUBCOMMANDS = ("annotate", "contact_sheet")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Callable[[Any], Any]]]:
    parser = argparse.ArgumentParser(
        prog="python -m vision", description="Vision tools: annotate images/videos, and more."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    runners: dict[str, Callable[[Any], Any]] = {}
    for name in SUBCOMMANDS:
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
    parser, runners = build_parser()
    args = parser.parse_args(argv)
    result = runners[args.command](args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
