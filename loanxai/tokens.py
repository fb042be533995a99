"""``python -m loanxai.tokens``: see :mod:`loanxai.ops.tokens`."""
import sys

from loanxai.ops.tokens import main

if __name__ == "__main__":
    sys.exit(main())
