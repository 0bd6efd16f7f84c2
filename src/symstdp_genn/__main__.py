"""``python -m symstdp_genn``: the same command line as ``run.py`` and ``symstdp-genn``."""

import sys

try:  # Ctrl-C while the command line's modules load ends as any other Ctrl-C
    from .cli import main
except KeyboardInterrupt:
    sys.stderr.write("interrupted\n")
    sys.exit(130)

if __name__ == "__main__":
    sys.exit(main(prog="python -m symstdp_genn"))
