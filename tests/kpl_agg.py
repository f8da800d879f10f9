"""KPL containers made by awslabs' own aggregator (PyPI `aws-kinesis-agg`), for the tests.

stdin: JSON `{"containers": [[[partition_key, explicit_hash_key or null, data_base64], ...], ...]}`
stdout: JSON list, one `{"partitionKey": ..., "data": base64}` per container, each holding
exactly the user records given (the script fails if the aggregator had to split them).

With `deaggregate` as first argument, stdin is a JSON list of `{"partitionKey", "sequenceNumber",
"data"}` Kinesis records and stdout the user records the deaggregator finds in them.
"""
import base64
import json
import sys

from aws_kinesis_agg.aggregator import RecordAggregator
from aws_kinesis_agg.deaggregator import deaggregate_records


def aggregate(request):
    out = []
    for users in request["containers"]:
        agg = RecordAggregator()
        for key, ehk, data in users:
            full = agg.add_user_record(key, base64.b64decode(data), ehk)
            if full is not None:
                sys.exit("the aggregator split a container: give it fewer records")
        record = agg.clear_and_get()
        pk, _ehk, body = record.get_contents()
        assert body[:4] == b"\xf3\x89\x9a\xc2", "container starts with the KPL magic"
        out.append({"partitionKey": pk, "data": base64.b64encode(body).decode()})
    return out


def deaggregate(records):
    kinesis = [
        {
            "kinesis": {
                "partitionKey": r["partitionKey"],
                "sequenceNumber": r["sequenceNumber"],
                "data": r["data"],
            }
        }
        for r in records
    ]
    return [
        {
            "partitionKey": u["kinesis"]["partitionKey"],
            "explicitHashKey": u["kinesis"].get("explicitHashKey"),
            "data": u["kinesis"]["data"],
        }
        for u in deaggregate_records(kinesis)
    ]


if __name__ == "__main__":
    request = json.load(sys.stdin)
    if sys.argv[1:] == ["deaggregate"]:
        json.dump(deaggregate(request), sys.stdout)
    else:
        json.dump(aggregate(request), sys.stdout)
