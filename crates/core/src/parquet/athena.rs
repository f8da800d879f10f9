//! Athena over the Parquet archive: the `CREATE EXTERNAL TABLE` statement, with partition
//! projection on `date` and `hour`, so Athena finds the partitions from the layout (see
//! [`crate::domain::parquet`]) without a crawler or `MSCK REPAIR TABLE`.

use arrow_schema::DataType;
use chrono::NaiveDate;

use super::schema::columns;

/// Athena's type of a column of the contract.
fn athena_type(data_type: &DataType) -> &'static str {
    match data_type {
        DataType::Utf8 => "string",
        DataType::Int64 => "bigint",
        DataType::Binary => "binary",
        DataType::Boolean => "boolean",
        DataType::Timestamp(..) => "timestamp",
        other => unreachable!("the contract has no column of type {other}"),
    }
}

/// The statement creating table `table_name` over a stream's files under `stream_location`
/// (`s3://BUCKET/PREFIX/<stream>/`), its `date` partitions projected from `first_day` to
/// today (Athena's `NOW`), `hour` from 00 to 23. Columns as the contract names them (Athena
/// matches Parquet columns by name, case-insensitively).
pub fn athena_ddl(table_name: &str, stream_location: &str, first_day: NaiveDate) -> String {
    let location = if stream_location.ends_with('/') {
        stream_location.to_owned()
    } else {
        format!("{stream_location}/")
    }
    .replace('\'', "''");
    let columns = columns()
        .iter()
        .map(|(name, data_type, _)| format!("  `{name}` {}", athena_type(data_type)))
        .collect::<Vec<_>>()
        .join(",\n");
    format!(
        "CREATE EXTERNAL TABLE IF NOT EXISTS `{table_name}` (\n{columns}\n)\n\
         PARTITIONED BY (`date` string, `hour` string)\n\
         STORED AS PARQUET\n\
         LOCATION '{location}'\n\
         TBLPROPERTIES (\n  \
           'projection.enabled' = 'true',\n  \
           'projection.date.type' = 'date',\n  \
           'projection.date.format' = 'yyyy-MM-dd',\n  \
           'projection.date.range' = '{first_day},NOW',\n  \
           'projection.date.interval' = '1',\n  \
           'projection.date.interval.unit' = 'DAYS',\n  \
           'projection.hour.type' = 'integer',\n  \
           'projection.hour.range' = '0,23',\n  \
           'projection.hour.digits' = '2',\n  \
           'storage.location.template' = '{location}date=${{date}}/hour=${{hour}}/'\n\
         );\n",
        first_day = first_day.format("%Y-%m-%d"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_projects_the_layouts_partitions_and_names_every_column() {
        let ddl = athena_ddl(
            "orders_parquet",
            "s3://history/kinarch/orders",
            NaiveDate::from_ymd_opt(2026, 5, 1).unwrap(),
        );
        for column in [
            "`partitionKey` string",
            "`sequenceNumber` string",
            "`subSequenceNumber` bigint",
            "`explicitHashKey` string",
            "`data` binary",
            "`approximateArrivalTimestamp` timestamp",
            "`shardId` string",
            "`archivedAt` timestamp",
            "`oversize` boolean",
            "`recordSize` bigint",
        ] {
            assert!(ddl.contains(column), "{column}\n{ddl}");
        }
        assert!(
            ddl.contains("LOCATION 's3://history/kinarch/orders/'"),
            "{ddl}"
        );
        assert!(
            ddl.contains("'projection.date.range' = '2026-05-01,NOW'"),
            "{ddl}"
        );
        assert!(
            ddl.contains(
                "'storage.location.template' = \
                 's3://history/kinarch/orders/date=${date}/hour=${hour}/'"
            ),
            "{ddl}"
        );
        assert!(ddl.trim_end().ends_with(");"), "{ddl}");
    }
}
