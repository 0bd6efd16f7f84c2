#!/usr/bin/env python3
"""Entry point: ``python run.py --mode train`` (see README.md)."""

import sys

try:  # Ctrl-C while Python loads numpy and the package (~0.3 s) ends as any other Ctrl-C
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

    from symstdp_genn.cli import main
except KeyboardInterrupt:
    sys.stderr.write("interrupted\n")
    sys.exit(130)

if __name__ == "__main__":
    sys.exit(main(prog="run.py"))
