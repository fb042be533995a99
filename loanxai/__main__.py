"""``python -m loanxai``: the one command line (:mod:`loanxai.core.cli`)."""
import sys

from loanxai.core.cli import main

sys.exit(main())
