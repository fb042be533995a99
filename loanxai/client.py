"""``python -m loanxai.client``, and the Python client's documented home: see :mod:`loanxai.clients.api`."""
import sys

from loanxai.clients.api import LoanClient, main, seldon_client, seldon_predict
from loanxai.errors import ServiceError

__all__ = ["LoanClient", "ServiceError", "seldon_client", "seldon_predict"]

if __name__ == "__main__":
    sys.exit(main())
