"""``python -m loanxai.figures``: see :mod:`loanxai.report.production`."""
import sys

from loanxai.report.production import main

if __name__ == "__main__":
    sys.exit(main())
