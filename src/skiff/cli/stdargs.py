"""argparse with docker's manners, kept for the container commands until they move to the lean
parser in skiff.cli.args (main replaced argparse there; the containers branch predates it)."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

USAGE_EXIT = 125


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: {message}\nSee '{self.prog} --help'.", file=sys.stderr)
        sys.exit(USAGE_EXIT)


def parser(command: str, description: str) -> ArgumentParser:
    return ArgumentParser(prog=f"skiff {command}", description=description)


def add_format(p: argparse.ArgumentParser, *, short: bool = True) -> None:
    flags = ["-f", "--format"] if short else ["--format"]
    p.add_argument(*flags, dest="format", default="", help="format output with a Go template")
