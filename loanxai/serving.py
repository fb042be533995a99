"""What both Seldon serving classes share: reading requests and raising errors the wrapper answers."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf import json_format
from seldon_core.flask_utils import SeldonMicroserviceException
from seldon_core.proto import prediction_pb2

from loanxai.schema import FeatureSchema, InputError


def serve_json(
    handler: Callable[[dict[str, Any]], dict[str, Any]], request: Any
) -> dict[str, Any] | prediction_pb2.SeldonMessage:
    """Run ``handler`` on the request as a JSON dict.

    ``predict_raw`` gets JSON from the REST server and a protobuf SeldonMessage from the gRPC
    server (off unless GRPC_WORKERS > 0); the answer goes back in the form that came in.
    :class:`~loanxai.schema.InputError` becomes a 400 naming the problem.
    """
    is_proto = isinstance(request, prediction_pb2.SeldonMessage)
    message = json_format.MessageToDict(request) if is_proto else request
    try:
        response = handler(message)
    except (InputError, SeldonMicroserviceException) as error:
        raise (bad_request(error) if isinstance(error, InputError) else _with_args(error)) from None
    return json_format.ParseDict(response, prediction_pb2.SeldonMessage()) if is_proto else response


def bad_request(error: InputError) -> SeldonMicroserviceException:
    """The 400 answering ``error``, its message naming the problem."""
    return _with_args(SeldonMicroserviceException(str(error), status_code=400, reason="MICROSERVICE_BAD_DATA"))


def _with_args(error: SeldonMicroserviceException) -> SeldonMicroserviceException:
    # gRPC answers an exception with its text: give it the message REST puts in the body
    error.args = (error.message,)
    return error


def input_metadata(schema: FeatureSchema) -> list[dict[str, Any]]:
    """The request forms both services accept, for the wrapper's metadata endpoint."""
    names = list(schema.feature_names)
    return [
        {"messagetype": "ndarray", "schema": {"names": names, "shape": [len(names)]}},
        {"messagetype": "tensor", "schema": {"names": names, "shape": [len(names)]}},
        {"messagetype": "jsonData", "schema": schema.to_dict()},
    ]
