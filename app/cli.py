"""The `facetwin` program: one command line that composes the stages.

Each sub-command lives in its own module under `facetwin/commands/` and exposes
``register(subparsers)``; modules are discovered, so adding a stage never edits this file.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from facetwin import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facetwin",
        description="Digital twin of a 25-servo robot face that learns to mimic human expressions.",
    )
    parser.add_argument("--version", action="version", version=f"facetwin {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    from facetwin.app import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"facetwin.app.commands.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Headless by default: EGL works on CPUs (Mesa llvmpipe) and on NVIDIA GPUs alike.
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except CLIError as exc:
        print(f"facetwin {args.command}: error: {exc}", file=sys.stderr)
        return 2


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


if __name__ == "__main__":
    sys.exit(main())
