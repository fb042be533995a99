"""``python -m loanxai.compare``: see :mod:`loanxai.report.compare`."""
import sys

from loanxai.report.compare import main

if __name__ == "__main__":
    sys.exit(main())
