"""``python -m loanxai.console``: see :mod:`loanxai.console.server`."""
import sys

from loanxai.console.server import main

sys.exit(main())
