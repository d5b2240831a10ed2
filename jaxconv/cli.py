"""The ``jaxconv`` command line (also ``python -m jaxconv``)."""

from __future__ import annotations

import argparse
import sys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jaxconv", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="print the chapter's worked examples through both implementations")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from jaxconv import demo

        return demo.main()
    raise AssertionError(args.command)  # argparse already refused unknown commands


if __name__ == "__main__":
    sys.exit(main())
