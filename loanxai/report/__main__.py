"""``python -m loanxai.report``: see :mod:`loanxai.report.build`."""
import sys

from loanxai.report.build import main

sys.exit(main())
