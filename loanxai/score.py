"""``python -m loanxai.score``: see :mod:`loanxai.clients.score`."""
import sys

from loanxai.clients.score import main

if __name__ == "__main__":
    sys.exit(main())
