"""``python -m loanxai.records``: see :mod:`loanxai.records.cli`."""
import sys

from loanxai.records.cli import main

sys.exit(main())
