"""`python -m v2v ...` (also what `torchrun -m v2v train ...` runs)."""
import sys

from v2v.cli import main

if __name__ == "__main__":
    sys.exit(main())
