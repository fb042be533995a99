"""``make run``, ``make demo``, ``make replay``: see :mod:`loanxai.ops.local` (``--help`` lists the ports)."""
import sys

from loanxai.ops.local import main

if __name__ == "__main__":
    sys.exit(main())
