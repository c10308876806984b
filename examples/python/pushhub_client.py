"""What the pushhub merchant and receiver examples share: a channel, credentials, retries.

The stubs come from proto/pushhub/v1/pushhub.proto (see docs/clients.md):
    python3 -m grpc_tools.protoc -I proto --python_out=examples/python \
        --grpc_python_out=examples/python proto/pushhub/v1/pushhub.proto
"""

import base64
import json
import os
import random
import time

import grpc

from pushhub.v1 import pushhub_pb2, pushhub_pb2_grpc

# The hub's stable error reason travels in this trailer (docs/protocol.md#errors).
REASON_TRAILER = "pushhub-reason"


def connect(address, ca_file=None):
    """A stub on one channel: TLS when a CA file is given, plaintext otherwise."""
    if ca_file:
        with open(ca_file, "rb") as f:
            channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=f.read()))
    else:
        channel = grpc.insecure_channel(address)
    return pushhub_pb2_grpc.PushHubServiceStub(channel)


def load_or_register(stub, path, role, **register_fields):
    """The account saved in `path`, registered on the first run.

    The password is shown once, so it is saved (readable only by you) before anything else.
    """
    if not os.path.exists(path):
        reply = stub.Register(pushhub_pb2.RegisterRequest(role=role, **register_fields), timeout=10)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"id": reply.id, "password": reply.password}, f)
    with open(path) as f:
        return json.load(f)


def auth_metadata(credentials):
    """The `authorization` header every call but Register carries."""
    token = base64.b64encode(f"{credentials['id']}:{credentials['password']}".encode()).decode()
    return (("authorization", f"Basic {token}"),)


def reason(error):
    """The stable reason of a failed call ('' when the hub sent none, e.g. a network error)."""
    for key, value in error.trailing_metadata() or ():
        if key == REASON_TRAILER:
            return value
    return ""


def backoff(attempt, base=0.2, cap=10.0):
    """Exponential backoff with full jitter."""
    time.sleep(random.uniform(0, min(cap, base * 2**attempt)))


def call_with_retry(method, request, metadata, attempts=6):
    """A unary call, retried only while the hub is UNAVAILABLE.

    Pushes and withdrawals carry a request_id that stays the same across the retries: the
    hub applies a request id once, so a reply lost on the way never delivers twice.
    """
    for attempt in range(attempts):
        try:
            return method(request, metadata=metadata, timeout=10)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE or attempt == attempts - 1:
                raise
            backoff(attempt)
