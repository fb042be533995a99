"""What both serving classes share: reading a request, answering in the form it came, and the
one place an error becomes Seldon's error answer."""
from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

from google.protobuf import json_format
from seldon_core.flask_utils import SeldonMicroserviceException
from seldon_core.proto import prediction_pb2

from loanxai.core.codecs import MAX_PUID_CHARACTERS
from loanxai.core.schema import FeatureSchema
from loanxai.errors import LoanError

__all__ = ["caller_present", "connected", "input_metadata", "seldon_error", "serve_json"]

logger = logging.getLogger(__name__)


#: whether the caller of the request this thread answers is still connected (set by the server's
#: guard for each REST request; always true over gRPC, where it cannot be told)
caller_present: ContextVar[Callable[[], bool]] = ContextVar("caller_present", default=lambda: True)


def connected(sock: socket.socket | None) -> bool:
    """Whether the peer of ``sock`` has not closed its side: a peek that reads nothing means it
    has (bytes waiting, such as a pipelined request, or none yet, mean it is still there)."""
    if sock is None:
        return True
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def seldon_error(error: LoanError) -> SeldonMicroserviceException:
    """``error`` as the seldon-core wrapper answers it: its status, and Seldon's body
    ``{"status": {"code": -1, "info": <message>, "reason": <reason>, "status": 1}}``, and its headers."""
    answer = SeldonMicroserviceException(error.message, status_code=error.status_code, reason=error.reason)
    answer.args = (error.message,)  # gRPC answers an exception with its text: the message REST puts in the body
    answer.headers = error.headers
    return answer


def serve_json(
    handler: Callable[[dict[str, Any]], dict[str, Any]], request: Any
) -> dict[str, Any] | prediction_pb2.SeldonMessage:
    """Run ``handler`` on the request as a JSON dict.

    ``predict_raw`` gets JSON from the REST server and a protobuf SeldonMessage from the gRPC
    server (off unless GRPC_WORKERS > 0); the answer goes back in the form that came in. A
    :class:`~loanxai.errors.LoanError` becomes its status and Seldon's error body; any other
    exception (a bug of ours) is logged whole and answered 500 with the request's id, never
    with Python's words.
    """
    is_proto = isinstance(request, prediction_pb2.SeldonMessage)
    message = json_format.MessageToDict(request) if is_proto else request
    try:
        response = handler(message)
    except LoanError as error:
        raise seldon_error(error) from None
    except Exception:
        request_id = _request_id(message)
        logger.exception("internal error answering request %s", request_id)
        raise seldon_error(LoanError(f"internal error answering request {request_id} (logged with that id); "
                                     "the service keeps serving")) from None
    return json_format.ParseDict(response, prediction_pb2.SeldonMessage()) if is_proto else response


def input_metadata(schema: FeatureSchema) -> list[dict[str, Any]]:
    """The request forms both services accept, for the wrapper's metadata endpoint."""
    names = list(schema.feature_names)
    return [
        {"messagetype": "ndarray", "schema": {"names": names, "shape": [len(names)]}},
        {"messagetype": "tensor", "schema": {"names": names, "shape": [len(names)]}},
        {"messagetype": "jsonData", "schema": schema.to_dict()},
    ]


def _request_id(message: Any) -> str:
    """The request's id (``meta.puid``) when it gave a valid one, else a new one."""
    meta = message.get("meta") if isinstance(message, Mapping) else None
    puid = meta.get("puid") if isinstance(meta, Mapping) else None
    return puid if isinstance(puid, str) and 0 < len(puid) <= MAX_PUID_CHARACTERS else uuid.uuid4().hex
