"""``python -m loanxai.microservice``: see :mod:`loanxai.serving.server.supervisor`."""
import sys

from loanxai.serving.server.supervisor import main

if __name__ == "__main__":
    sys.exit(main())
