#!/usr/bin/env python3
"""Entry point: ``python run.py --mode train`` (see README.md)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from symstdp_genn.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="run.py"))
