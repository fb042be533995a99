"""``python -m loanxai.images``: see :mod:`loanxai.ops.images`."""
import sys

from loanxai.ops.images import main

if __name__ == "__main__":
    sys.exit(main())
