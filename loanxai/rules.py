"""``python -m loanxai.rules``: see :mod:`loanxai.monitoring.rules`."""
import sys

from loanxai.monitoring.rules import main

if __name__ == "__main__":
    sys.exit(main())
