"""A pushhub merchant in Python: push specific and public info, list it, withdraw it.

    python3 merchant.py [--address HOST:PORT] [--credentials FILE] [--ca FILE] [RECEIVER_ID]

The first run registers a merchant and saves its credentials (mode 0600); later runs reuse
them. With a receiver id it also pushes that receiver a points balance.
"""

import argparse
import datetime
import uuid

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from pushhub.v1 import pushhub_pb2 as pb
from pushhub_client import auth_metadata, call_with_retry, connect, load_or_register, reason

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("receiver_id", nargs="?")
parser.add_argument("--address", default="127.0.0.1:50051")
parser.add_argument("--credentials", default="merchant.json")
parser.add_argument("--ca", help="CA certificate (PEM) of a hub that serves TLS")
args = parser.parse_args()

hub = connect(args.address, args.ca)
credentials = load_or_register(hub, args.credentials, pb.ROLE_MERCHANT, region_code="11", display_name="Python Bakery")
auth = auth_metadata(credentials)
print("merchant", credentials["id"], flush=True)

if args.receiver_id:
    # A key makes the next push with the same key replace this one on the receiver.
    pushed = call_with_retry(hub.PushSpecific, pb.PushSpecificRequest(
        receiver_id=args.receiver_id,
        info=pb.ServiceInfo(key="points", title="Your points", points=pb.Points(balance=120, earned=20)),
        request_id=str(uuid.uuid4()),
    ), auth)
    print(f"pushed {pushed.item_id} at sequence {pushed.sequence}", flush=True)

# Public info reaches every receiver, also those offline or registered later.
valid_until = Timestamp()
valid_until.FromDatetime(datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=7))
voucher = call_with_retry(hub.PushPublic, pb.PushPublicRequest(
    info=pb.ServiceInfo(
        key="bread5",
        title="5 EUR off",
        valid_until=valid_until,
        voucher=pb.Voucher(code="BREAD5", amount_off=500, currency="EUR"),
    ),
    request_id=str(uuid.uuid4()),
), auth)
print(f"pushed {voucher.item_id} at sequence {voucher.sequence}", flush=True)

# What this merchant has live for everyone, page by page.
page_token = ""
while True:
    page = hub.ListItems(pb.ListItemsRequest(audience=pb.AUDIENCE_PUBLIC, page_token=page_token), metadata=auth, timeout=10)
    for item in page.items:
        print("live", item.item_id, item.info.key, item.info.title, flush=True)
    page_token = page.next_page_token
    if not page_token:
        break

withdrawn = call_with_retry(hub.Withdraw, pb.WithdrawRequest(item_id=voucher.item_id, request_id=str(uuid.uuid4())), auth)
print(f"withdrew {withdrawn.item_id} at sequence {withdrawn.sequence}", flush=True)

try:
    hub.Withdraw(pb.WithdrawRequest(key="no-such-key"), metadata=auth, timeout=10)
except grpc.RpcError as error:
    print("failed", error.code().name, reason(error), flush=True)  # failed NOT_FOUND ITEM_NOT_FOUND
