"""What other readers see in the Parquet files kinarch writes (tests/tests/parquet_peers.rs).

argv[1]: a directory laid out as the archive's S3 prefix
(`<stream>/date=YYYY-MM-DD/hour=HH/<shard>-<first>-<last>.parquet`).
stdin: JSON `{"probe": [[relative_file, key], ...]}`: keys whose bloom filter DuckDB probes.
stdout: JSON
  - "files": per file (relative path): pyarrow's view: "schema" [[name, arrow type, nullable]],
    "parquet" [[name, physical type, logical type]], "metadata" (key-value), "rows" (in file
    order), and per row group per column chunk "chunks" [[column, compression, has
    statistics, has min/max, null count]]; DuckDB's "bloom" [[row group, column, offset,
    length]] from parquet_metadata();
  - "duckdb": every row of read_parquet(DIR/**/*.parquet, hive_partitioning = true), with the
    partition columns `date` and `hour`, ordered by shard, sequence number (numerically) and
    sub-sequence number;
  - "probe": per probed [file, key], DuckDB's parquet_bloom_probe: [[row group, excludes]].
Rows have data as base64 and timestamps as epoch milliseconds.
"""
import base64
import datetime
import json
import os
import sys

import duckdb
import pyarrow.parquet as pq


def millis(ts):
    """pyarrow gives datetimes with tz=UTC: exact epoch milliseconds from their parts."""
    delta = ts - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000


def pyarrow_view(path):
    pf = pq.ParquetFile(path)
    arrow = pf.schema_arrow
    schema = [[f.name, str(f.type), f.nullable] for f in arrow]
    parquet = []
    for i in range(len(pf.schema)):
        column = pf.schema.column(i)
        parquet.append([column.name, column.physical_type, str(column.logical_type)])
    metadata = {k.decode(): v.decode() for k, v in (pf.metadata.metadata or {}).items()}
    chunks = []
    for g in range(pf.metadata.num_row_groups):
        group = pf.metadata.row_group(g)
        for c in range(group.num_columns):
            chunk = group.column(c)
            stats = chunk.statistics
            chunks.append([
                g,
                chunk.path_in_schema,
                chunk.compression,
                chunk.is_stats_set,
                bool(stats is not None and stats.has_min_max),
                None if stats is None or not stats.has_null_count else stats.null_count,
            ])
    rows = []
    for row in pf.read().to_pylist():
        for name in ("approximateArrivalTimestamp", "archivedAt"):
            row[name] = millis(row[name])
        data = row["data"]
        row["data"] = None if data is None else base64.b64encode(data).decode()
        rows.append(row)
    return {
        "schema": schema,
        "parquet": parquet,
        "metadata": metadata,
        "row_groups": pf.metadata.num_row_groups,
        "chunks": chunks,
        "rows": rows,
    }


def main():
    root = sys.argv[1]
    request = json.load(sys.stdin)
    con = duckdb.connect()
    files = {}
    for directory, _, names in os.walk(root):
        for name in sorted(names):
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, root)
            view = pyarrow_view(path)
            view["bloom"] = [
                list(r)
                for r in con.execute(
                    "SELECT row_group_id, path_in_schema, bloom_filter_offset, bloom_filter_length "
                    "FROM parquet_metadata(?) ORDER BY row_group_id, column_id",
                    [path],
                ).fetchall()
            ]
            files[relative] = view
    rows = con.execute(
        f"""
        SELECT partitionKey, sequenceNumber, subSequenceNumber, explicitHashKey,
               to_base64(data) AS data,
               epoch_ms(approximateArrivalTimestamp) AS approximateArrivalTimestamp,
               shardId, epoch_ms(archivedAt) AS archivedAt, oversize, recordSize,
               CAST("date" AS VARCHAR) AS "date", CAST(hour AS INTEGER) AS hour,
               typeof(approximateArrivalTimestamp) AS arrival_type, typeof(data) AS data_type
        FROM read_parquet('{root}/**/*.parquet', hive_partitioning = true)
        ORDER BY shardId, length(sequenceNumber), sequenceNumber, subSequenceNumber NULLS FIRST
        """
    )
    names = [d[0] for d in rows.description]
    duck = [dict(zip(names, r)) for r in rows.fetchall()]
    probes = []
    for relative, key in request.get("probe", []):
        result = con.execute(
            "SELECT row_group_id, bloom_filter_excludes FROM parquet_bloom_probe(?, 'partitionKey', ?) "
            "ORDER BY row_group_id",
            [os.path.join(root, relative), key],
        ).fetchall()
        probes.append([list(r) for r in result])
    json.dump({"files": files, "duckdb": duck, "probe": probes}, sys.stdout)


if __name__ == "__main__":
    main()
