"""``python -m loanxai.gate``: see :mod:`loanxai.fairness.gate`."""
import sys

from loanxai.fairness.gate import main

if __name__ == "__main__":
    sys.exit(main())
