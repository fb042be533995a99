"""``python -m loanxai.promote``: see :mod:`loanxai.ops.promote`."""
import sys

from loanxai.ops.promote import main

if __name__ == "__main__":
    sys.exit(main())
