"""``python -m loanxai.report``: see :mod:`loanxai.report`."""
import sys

from loanxai.report import main

sys.exit(main())
