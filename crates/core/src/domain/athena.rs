//! Athena over a DynamoDB export of an archive table: the `CREATE EXTERNAL TABLE` statement.
//!
//! A DynamoDB export in `DYNAMODB_JSON` format writes gzipped JSON lines under
//! `<prefix>/AWSDynamoDB/<export id>/data/`, one item per line as
//! `{"Item": {"partitionKey": {"S": "..."}, "approximateArrivalTimestamp": {"N": "..."}}}`
//! (the attribute types of the low-level API). The table below reads those lines with the
//! OpenX JSON SerDe, one column `item` whose fields are the archive contract's attributes
//! and kinarch's additive ones, each a struct of its DynamoDB type. Numbers stay text
//! (`N` is a decimal string): cast them in the query (`CAST(item.approximateArrivalTimestamp.n
//! AS double)`), so no arrival time is rounded by the export's reading.

/// The contract's attributes and kinarch's additive ones, with their DynamoDB type.
const ATTRIBUTES: &[(&str, &str)] = &[
    ("partitionKey", "S"),
    ("sequenceNumber", "S"),
    ("lastUpdate", "S"),
    ("recordData", "S"),
    ("approximateArrivalTimestamp", "N"),
    ("shardId", "S"),
    ("expireAfter", "N"),
    ("subSequenceNumber", "N"),
    ("explicitHashKey", "S"),
    ("oversize", "BOOL"),
    ("recordSize", "N"),
    ("recordLocation", "S"),
];

/// A name Athena takes for a table: lower case, `[a-z0-9_]`, from the archive table's name
/// (`orders-archive-ALL` → `orders_archive_all`).
pub fn athena_table_name(archive_table: &str) -> String {
    let name: String = archive_table
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("t_{name}")
    } else {
        name
    }
}

/// The `CREATE EXTERNAL TABLE` for the export whose data files are under `data_location`
/// (`s3://BUCKET/PREFIX/AWSDynamoDB/<export id>/data/`).
pub fn create_table_ddl(archive_table: &str, data_location: &str) -> String {
    let fields = ATTRIBUTES
        .iter()
        .map(|(name, kind)| {
            let column_type = match *kind {
                "BOOL" => "boolean",
                _ => "string",
            };
            format!("    {name}: struct<{kind}: {column_type}>")
        })
        .collect::<Vec<_>>()
        .join(",\n");
    let location = if data_location.ends_with('/') {
        data_location.to_owned()
    } else {
        format!("{data_location}/")
    };
    format!(
        "CREATE EXTERNAL TABLE IF NOT EXISTS {name} (\n  item struct<\n{fields}\n  >\n)\n\
         ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'\n\
         LOCATION '{location}'\n\
         TBLPROPERTIES ('has_encrypted_data' = 'false');\n",
        name = athena_table_name(archive_table),
        location = location.replace('\'', "''"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_athena_accepts() {
        assert_eq!(
            athena_table_name("orders-archive-ALL"),
            "orders_archive_all"
        );
        assert_eq!(
            athena_table_name("a.b-archive-LATEST"),
            "a_b_archive_latest"
        );
        assert_eq!(athena_table_name("1st-archive-ALL"), "t_1st_archive_all");
    }

    #[test]
    fn the_ddl_has_every_attribute_with_its_dynamodb_type() {
        let ddl = create_table_ddl(
            "orders-archive-ALL",
            "s3://bucket/exports/AWSDynamoDB/01700000000000-abcdef/data",
        );
        assert!(ddl.starts_with("CREATE EXTERNAL TABLE IF NOT EXISTS orders_archive_all ("));
        for line in [
            "    partitionKey: struct<S: string>,",
            "    sequenceNumber: struct<S: string>,",
            "    lastUpdate: struct<S: string>,",
            "    recordData: struct<S: string>,",
            "    approximateArrivalTimestamp: struct<N: string>,",
            "    shardId: struct<S: string>,",
            "    expireAfter: struct<N: string>,",
            "    oversize: struct<BOOL: boolean>,",
            "    recordLocation: struct<S: string>\n",
        ] {
            assert!(ddl.contains(line), "{line:?} in\n{ddl}");
        }
        assert!(
            ddl.contains("LOCATION 's3://bucket/exports/AWSDynamoDB/01700000000000-abcdef/data/'")
        );
        assert!(ddl.contains("org.openx.data.jsonserde.JsonSerDe"));
        assert!(ddl.trim_end().ends_with(';'));
    }
}
