"""moto server with its writes made atomic, as DynamoDB's and Kinesis's are.

The test harness (tests/src/moto.rs) runs this instead of `moto_server`, with the same
arguments, using the venv that bin/test installs (moto[server]==5.2.5, pinned there).

Why: moto's threaded server takes no lock around a write, so concurrent requests race in
ways AWS never does:
- DynamoDB: the items of a table live in a `defaultdict` keyed by `DynamoType` objects whose
  `__hash__`/`__eq__` are Python code. Two concurrent writes that first touch the same
  partition key can each create that key's inner dict, and the item written into the
  losing dict is gone although its BatchWriteItem answered 200 with no UnprocessedItems.
  Measured here with 8 threads, each writing the same 25 new keys: 2 of 20,000 items lost
  (issue 18: the 30% fault test found 9,999 of 10,000). A conditional PutItem checks, then
  writes, so two concurrent ones of one key can both pass their check.
- Kinesis: a shard's next sequence number is max + 1 without a lock, so concurrent
  PutRecords into one shard can overwrite each other's records.

kinarch keeps its own requests concurrent (the product must not serialize what AWS applies
atomically); this wrapper serializes the emulator's state changes instead. One lock for
all of them: the emulator is a test double and a few microseconds each cost nothing.
"""

import functools
import os
import re
import sys
import threading

import werkzeug.serving

from moto.dynamodb.models import DynamoDBBackend
from moto.kinesis.models import Shard
from moto.server import main

_WRITE_LOCK = threading.RLock()


def _atomic(cls, name):
    unlocked = getattr(cls, name)

    @functools.wraps(unlocked)
    def locked(*args, **kwargs):
        with _WRITE_LOCK:
            return unlocked(*args, **kwargs)

    setattr(cls, name, locked)


for _name in ("put_item", "update_item", "delete_item", "transact_write_items"):
    _atomic(DynamoDBBackend, _name)
_atomic(Shard, "put_record")


def _report_port(make_server):
    """Writes the port the server bound into $KINARCH_MOTO_PORT_FILE (atomically).

    The harness starts moto with `-p 0` and waits for this file: a port probed free and then
    passed to moto can be taken in between by another test's listener, and a harness that
    only checks that the port answers would then talk to that listener (a fault proxy in
    front of another test's moto) as if it were its own emulator.
    """
    port_file = os.environ.get("KINARCH_MOTO_PORT_FILE")

    @functools.wraps(make_server)
    def reporting(*args, **kwargs):
        server = make_server(*args, **kwargs)
        if port_file:
            with open(port_file + ".tmp", "w") as f:
                f.write(str(server.server_port))
            os.replace(port_file + ".tmp", port_file)
        return server

    return reporting


werkzeug.serving.make_server = _report_port(werkzeug.serving.make_server)

if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\.pyw|\.exe)?$", "", sys.argv[0])
    sys.exit(main())
