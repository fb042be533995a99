"""``python -m loanxai.replay``: see :mod:`loanxai.ops.replay`."""
import sys

from loanxai.ops.replay import main

if __name__ == "__main__":
    sys.exit(main())
