"""``python -m loanxai.cluster``: see :mod:`loanxai.ops.cluster`."""
import sys

from loanxai.ops.cluster import main

if __name__ == "__main__":
    sys.exit(main())
