"""``python -m gleitzeit_nb.replay migrate STORE.sqlite [FOLDER]``: convert an SQLite store."""

from __future__ import annotations

import argparse
import sys

from .errors import ReplayStoreError
from .migrate import default_target, migrate_sqlite


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gleitzeit_nb.replay",
                                     description="Tools for the record/replay store.")
    commands = parser.add_subparsers(dest="command", required=True)
    migrate = commands.add_parser(
        "migrate", help="convert an SQLite store (older gleitzeit_nb) into a folder of JSON files",
        description="Convert an SQLite replay store into the text store (one JSON file per "
                    "recording). The SQLite file is only read; delete it afterwards.")
    migrate.add_argument("source", help="the SQLite file, e.g. notebooks/llm-replay.sqlite")
    migrate.add_argument("target", nargs="?",
                         help="the folder to write (default: the file's name without .sqlite)")
    args = parser.parse_args(argv)
    target = args.target or default_target(args.source)
    try:
        written, skipped = migrate_sqlite(args.source, target)
    except ReplayStoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{written} recordings from {args.source} written to {target}/")
    if skipped:
        print(f"skipped {len(skipped)} rows without a sha256 key or text: {', '.join(skipped)}",
              file=sys.stderr)
    print(f"Check the folder (git add {target}), then delete {args.source}. If GLEITZEIT_STORE "
          f"or %config LLMMagics.store named the old file, point it at {target} now.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
