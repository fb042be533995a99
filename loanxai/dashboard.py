"""``python -m loanxai.dashboard``: see :mod:`loanxai.monitoring.dashboard`."""
import sys

from loanxai.monitoring.dashboard import main

if __name__ == "__main__":
    sys.exit(main())
