"""A pushhub receiver in Python: a local store of its current info, kept by one resumable stream.

    python3 receiver.py [--address HOST:PORT] [--credentials FILE] [--state FILE] [--ca FILE]

The first run registers a receiver and saves its credentials (mode 0600); later runs reuse
them and resume after the cursor saved with the items in the state file. Ctrl-C stops it.
"""

import argparse
import datetime
import json
import os
import threading
import time

import grpc
from google.protobuf.json_format import MessageToDict

from pushhub.v1 import pushhub_pb2 as pb
from pushhub_client import auth_metadata, backoff, connect, load_or_register, reason

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--address", default="127.0.0.1:50051")
parser.add_argument("--credentials", default="receiver.json")
parser.add_argument("--state", default="receiver-state.json")
parser.add_argument("--ca", help="CA certificate (PEM) of a hub that serves TLS")
args = parser.parse_args()


class Store:
    """The receiver's items, its cursor and the history the cursor belongs to, saved together
    after every response."""

    def __init__(self, path, receiver_id):
        self.path = path
        self.state = {"receiver": receiver_id, "cursor": 0, "history": "", "items": {}}
        # A reset's new state, gathered until its caught_up replaces the state (never saved
        # half-way: a crash before then resumes from the old state and is reset again).
        self.pending = None
        if os.path.exists(path):
            with open(path) as f:
                self.state = {"history": "", **json.load(f)}
            # The items and cursor of one receiver must never be resumed as another's.
            if self.state["receiver"] != receiver_id:
                raise SystemExit(f"this store belongs to receiver {self.state['receiver']}, not {receiver_id}")

    @property
    def cursor(self):
        return self.state["cursor"]

    @property
    def history(self):
        return self.state["history"]

    def apply(self, event):
        """Apply one event; the change it makes, as a line to print (or None)."""
        kind = event.WhichOneof("event")
        if kind == "reset":
            # The hub's database was restored: the state that follows replaces this one.
            self.pending = {"receiver": self.state["receiver"], "cursor": 0, "history": event.reset.history_id, "items": {}}
            return None
        target = self.pending or self.state
        items = target["items"]
        if kind == "item":
            item = MessageToDict(event.item)
            key = item["info"].get("key", "")
            replaced = [i for i, old in items.items() if key and old["info"].get("key") == key
                        and old["merchantId"] == item["merchantId"] and old["audience"] == item["audience"]]
            for item_id in replaced:
                del items[item_id]
            items[item["itemId"]] = item
            target["cursor"] = event.item.sequence
            if self.pending:
                return None
            return f"{'replaced' if replaced else 'added'} {item['info']['title']}"
        if kind == "withdrawal":
            target["cursor"] = event.withdrawal.sequence
            old = items.pop(event.withdrawal.item_id, None)
            if self.pending:
                return None
            cause = "replaced" if event.withdrawal.replaced else "withdrawn"
            return f"removed {old['info']['title']} ({cause})" if old else None
        if kind == "caught_up":
            target["cursor"] = event.caught_up.sequence
            target["history"] = event.caught_up.history_id or target["history"]
            if self.pending:
                self.state, self.pending = self.pending, None
                return f"reset: caught up at {self.cursor} ({len(items)} items)"
            return f"caught up at {self.cursor} ({len(items)} items)"
        return None  # a heartbeat

    def expire(self):
        """Drop items past their valid_until; the lines to print."""
        now = datetime.datetime.now(datetime.timezone.utc)
        items = self.state["items"]
        ended = [i for i, item in items.items() if datetime.datetime.fromisoformat(item["info"]["validUntil"]) <= now]
        return [f"removed {items.pop(i)['info']['title']} (expired)" for i in ended]

    def reset(self):
        self.state.update(cursor=0, history="", items={})

    def save(self):
        # Written whole and renamed into place, so a crash leaves the old state or the new one.
        with open(self.path + ".tmp", "w") as f:
            json.dump(self.state, f)
        os.replace(self.path + ".tmp", self.path)


def follow(hub, auth, store):
    """Subscribe after the store's cursor and apply every response, until the stream breaks."""
    call = hub.Subscribe(pb.SubscribeRequest(after_sequence=store.cursor, history_id=store.history), metadata=auth)
    # A connection that sends nothing (not even a heartbeat) for twice the heartbeat interval is
    # dead, even if TCP has not noticed: cancel the call so that the loop below reconnects.
    watch = {"last": time.monotonic(), "interval": 30.0, "done": False}

    def watchdog():
        while not watch["done"]:
            time.sleep(0.5)
            if time.monotonic() - watch["last"] > 2 * watch["interval"]:
                call.cancel()
                return

    threading.Thread(target=watchdog, daemon=True).start()
    try:
        for response in call:
            watch["last"] = time.monotonic()
            lines = []
            for event in response.events:
                if event.WhichOneof("event") == "heartbeat":
                    watch["interval"] = event.heartbeat.interval_ms / 1000
                lines.append(store.apply(event))
            lines += store.expire()
            store.save()  # one write per response, after the whole batch is applied
            for line in filter(None, lines):
                print(line, flush=True)
    finally:
        watch["done"] = True


def main():
    hub = connect(args.address, args.ca)
    credentials = load_or_register(hub, args.credentials, pb.ROLE_RECEIVER)
    print("receiver", credentials["id"], flush=True)
    store = Store(args.state, credentials["id"])
    auth = auth_metadata(credentials)
    attempt = 0
    while True:
        try:
            follow(hub, auth, store)
            attempt = 0
        except grpc.RpcError as error:
            code = error.code()
            if code == grpc.StatusCode.OUT_OF_RANGE and reason(error) == "CURSOR_OUT_OF_RANGE":
                # A hub older than history ids: its database was replaced, start over.
                store.reset()
                print("cursor out of range: starting over", flush=True)
            elif code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED,
                          grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
                # Hub restarting, network gone, too slow, or a silent connection: resume.
                backoff(attempt)
                attempt += 1
            else:
                raise SystemExit(f"{code.name} {reason(error)}: {error.details()}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("stopped", flush=True)
