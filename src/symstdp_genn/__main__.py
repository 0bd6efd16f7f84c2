"""``python -m symstdp_genn``: the same command line as ``run.py`` and ``symstdp-genn``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m symstdp_genn"))
