"""``python -m loanxai.train``: see :mod:`loanxai.training.train`."""
import sys

from loanxai.training.train import main

if __name__ == "__main__":
    sys.exit(main())
