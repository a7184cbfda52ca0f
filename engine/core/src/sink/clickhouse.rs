//! ClickHouse: the tables made from the one schema definition, and batches encoded as
//! `RowBinary` straight from their Arrow columns.
//!
//! Two dialects, chosen from the server's version ([`Dialect::of_version`]):
//!
//! * **legacy** — ClickHouse before 20.1 (Debian 12 ships 18.16), which has no `DateTime64`,
//!   `Map`, codecs or TTL: times are `Int64` nanoseconds since the epoch (an `ALIAS` column
//!   `<name>_time` gives them as `DateTime`), the vendor map is `Nested(key, value)` (two
//!   arrays), retention drops old partitions.
//! * **modern** — `DateTime64(9, 'UTC')`, `Map(String, Nullable(String))`,
//!   `LowCardinality` for repetitive text, ZSTD for the nearly unique columns, and a TTL.
//!
//! `DateTime64(9)` is sent as the same 64-bit count of nanoseconds as `Int64`, so one encoder
//! serves both; only the vendor map is laid out per dialect (`Nested`: two arrays; `Map`:
//! key and value pairs). IP addresses are text in every dialect, as in the Parquet archive
//! (18.16 has no IP types).

use std::fmt::Write as _;

use arrow::array::{Array, ArrayRef, AsArray, StringArray};
use arrow::datatypes::{
    DataType, TimestampNanosecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow::record_batch::RecordBatch;
use canh_schema::fields::{FieldDef, FieldType};
use canh_schema::Table;

/// The SQL a server understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Legacy,
    Modern,
}

impl Dialect {
    /// The dialect of a server from its `version()` (`18.16.1`, `24.8.4.13`); unknown
    /// versions are treated as modern.
    pub fn of_version(version: &str) -> Dialect {
        let major: u32 = version
            .split('.')
            .next()
            .and_then(|m| m.trim().parse().ok())
            .unwrap_or(u32::MAX);
        if major < 20 {
            Dialect::Legacy
        } else {
            Dialect::Modern
        }
    }
}

/// How the tables are laid out.
#[derive(Debug, Clone)]
pub struct Layout {
    pub database: String,
    pub dialect: Dialect,
    /// Rows older than this many days are dropped (TTL on modern servers; the sink drops old
    /// partitions on legacy ones). `None`: kept for ever.
    pub retention_days: Option<u32>,
}

/// The ClickHouse type of a column.
pub fn column_type(f: &FieldDef, dialect: Dialect) -> String {
    let nullable = |t: &str| {
        if f.nullable {
            format!("Nullable({t})")
        } else {
            t.to_owned()
        }
    };
    match (f.ty, dialect) {
        (FieldType::Timestamp, Dialect::Legacy) => nullable("Int64"),
        (FieldType::Timestamp, Dialect::Modern) => nullable("DateTime64(9, 'UTC')"),
        (FieldType::Str, Dialect::Modern) if !f.distinct => {
            format!("LowCardinality({})", nullable("String"))
        }
        (FieldType::Str | FieldType::Bytes, _) => nullable("String"),
        (FieldType::U8, _) => nullable("UInt8"),
        (FieldType::U16, _) => nullable("UInt16"),
        (FieldType::U32, _) => nullable("UInt32"),
        (FieldType::U64, _) => nullable("UInt64"),
        // ClickHouse arrays cannot be null: a missing list is stored empty.
        (FieldType::StrList, _) => "Array(Nullable(String))".to_owned(),
        (FieldType::StrMap, Dialect::Legacy) => "Nested(key String, value Nullable(String))".into(),
        (FieldType::StrMap, Dialect::Modern) => "Map(String, Nullable(String))".into(),
    }
}

/// The expression of a table's time in seconds (for partitions and the sort key).
fn time_expr(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Legacy => "toDateTime(intDiv(`timestamp`, 1000000000))",
        Dialect::Modern => "toDateTime(`timestamp`)",
    }
}

/// Quotes a name for ClickHouse SQL.
pub fn quote(name: &str) -> String {
    format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
}

/// `CREATE TABLE IF NOT EXISTS` for a table: MergeTree partitioned by day of `@timestamp`,
/// sorted by organization, time and source address (the filters of nearly every query), and
/// column comments from the schema.
pub fn create_table(table: Table, layout: &Layout) -> String {
    let d = layout.dialect;
    let mut sql = format!(
        "CREATE TABLE IF NOT EXISTS {}.{} (\n",
        quote(&layout.database),
        quote(table.name())
    );
    for f in table.fields() {
        let _ = write!(sql, "  {} {}", quote(&f.column()), column_type(f, d));
        if d == Dialect::Modern && f.distinct && matches!(f.ty, FieldType::Str) {
            sql.push_str(" CODEC(ZSTD(3))");
        }
        if !f.doc.is_empty() {
            let _ = write!(sql, " COMMENT '{}'", f.doc.trim().replace('\'', "\\'"));
        }
        sql.push_str(",\n");
    }
    if d == Dialect::Legacy {
        // Times as DateTime for queries (seconds; the stored column keeps nanoseconds).
        for f in table
            .fields()
            .iter()
            .filter(|f| f.ty == FieldType::Timestamp)
        {
            let col = f.column();
            let _ = writeln!(
                sql,
                "  {} ALIAS toDateTime(intDiv({}, 1000000000)),",
                quote(&format!("{col}_time")),
                quote(&col)
            );
        }
    }
    sql.truncate(sql.trim_end_matches([',', '\n']).len());
    let time = time_expr(d);
    let _ = write!(
        sql,
        "\n) ENGINE = MergeTree\nPARTITION BY toYYYYMMDD({time})\n\
         ORDER BY (ifNull(`organization_name`, ''), {time}, ifNull(`source_ip`, ''))"
    );
    if let (Dialect::Modern, Some(days)) = (d, layout.retention_days) {
        let _ = write!(
            sql,
            "\nTTL toDateTime(`timestamp`) + INTERVAL {days} DAY DELETE"
        );
    }
    sql
}

/// The `INSERT` statement whose data [`encode`] writes.
pub fn insert_sql(table: Table, layout: &Layout) -> String {
    format!(
        "INSERT INTO {}.{} FORMAT RowBinary",
        quote(&layout.database),
        quote(table.name())
    )
}

/// Why a batch could not be encoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EncodeError {
    #[error("{table}: the batch has {got} columns, the table {want}")]
    Columns {
        table: &'static str,
        got: usize,
        want: usize,
    },
    #[error("{table}.{column}: Arrow type {got} where the schema has {want:?}")]
    Type {
        table: &'static str,
        column: String,
        got: String,
        want: FieldType,
    },
}

/// Appends a batch of `table` as `RowBinary`, row by row in the table's column order.
pub fn encode(
    table: Table,
    dialect: Dialect,
    records: &RecordBatch,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let fields = table.fields();
    if records.num_columns() != fields.len() {
        return Err(EncodeError::Columns {
            table: table.name(),
            got: records.num_columns(),
            want: fields.len(),
        });
    }
    let columns: Vec<Column<'_>> = fields
        .iter()
        .zip(records.columns())
        .map(|(f, c)| Column::of(f, c, dialect).ok_or_else(|| type_error(table, f, c)))
        .collect::<Result<_, _>>()?;
    for row in 0..records.num_rows() {
        for c in &columns {
            c.write(row, out);
        }
    }
    Ok(())
}

fn type_error(table: Table, f: &FieldDef, c: &ArrayRef) -> EncodeError {
    EncodeError::Type {
        table: table.name(),
        column: f.column(),
        got: c.data_type().to_string(),
        want: f.ty,
    }
}

/// A column, typed once per batch.
enum Column<'a> {
    Time(
        &'a arrow::array::PrimitiveArray<TimestampNanosecondType>,
        bool,
    ),
    Text(&'a arrow::array::StringArray, bool),
    Bytes(&'a arrow::array::BinaryArray, bool),
    U8(&'a arrow::array::PrimitiveArray<UInt8Type>, bool),
    U16(&'a arrow::array::PrimitiveArray<UInt16Type>, bool),
    U32(&'a arrow::array::PrimitiveArray<UInt32Type>, bool),
    U64(&'a arrow::array::PrimitiveArray<UInt64Type>, bool),
    List(&'a arrow::array::ListArray),
    Map(&'a arrow::array::MapArray, Dialect),
}

impl<'a> Column<'a> {
    fn of(f: &FieldDef, c: &'a ArrayRef, dialect: Dialect) -> Option<Column<'a>> {
        let n = f.nullable;
        Some(match (f.ty, c.data_type()) {
            (FieldType::Timestamp, DataType::Timestamp(..)) => {
                Column::Time(c.as_primitive_opt()?, n)
            }
            (FieldType::Str, DataType::Utf8) => Column::Text(c.as_string_opt()?, n),
            (FieldType::Bytes, DataType::Binary) => Column::Bytes(c.as_binary_opt()?, n),
            (FieldType::U8, DataType::UInt8) => Column::U8(c.as_primitive_opt()?, n),
            (FieldType::U16, DataType::UInt16) => Column::U16(c.as_primitive_opt()?, n),
            (FieldType::U32, DataType::UInt32) => Column::U32(c.as_primitive_opt()?, n),
            (FieldType::U64, DataType::UInt64) => Column::U64(c.as_primitive_opt()?, n),
            (FieldType::StrList, DataType::List(_)) => {
                let l = c.as_list_opt::<i32>()?;
                l.values().as_string_opt::<i32>()?;
                Column::List(l)
            }
            (FieldType::StrMap, DataType::Map(..)) => {
                let m = c.as_map_opt()?;
                m.keys().as_string_opt::<i32>()?;
                m.values().as_string_opt::<i32>()?;
                Column::Map(m, dialect)
            }
            _ => return None,
        })
    }

    fn write(&self, row: usize, out: &mut Vec<u8>) {
        /// The null marker of a `Nullable` column; true when a value follows.
        fn present(a: &dyn Array, nullable: bool, row: usize, out: &mut Vec<u8>) -> bool {
            if !nullable {
                return true;
            }
            let null = a.is_null(row);
            out.push(u8::from(null));
            !null
        }
        match self {
            Column::Time(a, n) => {
                if present(*a, *n, row, out) {
                    out.extend_from_slice(&a.value(row).to_le_bytes());
                }
            }
            Column::Text(a, n) => {
                if present(*a, *n, row, out) {
                    bytes(a.value(row).as_bytes(), out);
                }
            }
            Column::Bytes(a, n) => {
                if present(*a, *n, row, out) {
                    bytes(a.value(row), out);
                }
            }
            Column::U8(a, n) => {
                if present(*a, *n, row, out) {
                    out.push(a.value(row));
                }
            }
            Column::U16(a, n) => {
                if present(*a, *n, row, out) {
                    out.extend_from_slice(&a.value(row).to_le_bytes());
                }
            }
            Column::U32(a, n) => {
                if present(*a, *n, row, out) {
                    out.extend_from_slice(&a.value(row).to_le_bytes());
                }
            }
            Column::U64(a, n) => {
                if present(*a, *n, row, out) {
                    out.extend_from_slice(&a.value(row).to_le_bytes());
                }
            }
            Column::List(l) => {
                let values = l.values().as_string::<i32>();
                let range = if l.is_null(row) {
                    0..0
                } else {
                    let o = l.value_offsets();
                    o[row] as usize..o[row + 1] as usize
                };
                nullable_strings(values, range, out);
            }
            Column::Map(m, dialect) => {
                let (keys, values) = (m.keys().as_string::<i32>(), m.values().as_string::<i32>());
                let range = if m.is_null(row) {
                    0..0
                } else {
                    let o = m.value_offsets();
                    o[row] as usize..o[row + 1] as usize
                };
                match dialect {
                    // `Nested(key, value)`: the array of keys, then the array of values.
                    Dialect::Legacy => {
                        varint(range.len() as u64, out);
                        for i in range.clone() {
                            bytes(keys.value(i).as_bytes(), out);
                        }
                        nullable_strings(values, range, out);
                    }
                    // `Map`: the count, then key and value pairs.
                    Dialect::Modern => {
                        varint(range.len() as u64, out);
                        for i in range {
                            bytes(keys.value(i).as_bytes(), out);
                            nullable_string(values, i, out);
                        }
                    }
                }
            }
        }
    }
}

fn nullable_strings(values: &StringArray, range: std::ops::Range<usize>, out: &mut Vec<u8>) {
    varint(range.len() as u64, out);
    for i in range {
        nullable_string(values, i, out);
    }
}

fn nullable_string(values: &StringArray, i: usize, out: &mut Vec<u8>) {
    if values.is_null(i) {
        out.push(1);
    } else {
        out.push(0);
        bytes(values.value(i).as_bytes(), out);
    }
}

fn bytes(b: &[u8], out: &mut Vec<u8>) {
    varint(b.len() as u64, out);
    out.extend_from_slice(b);
}

/// LEB128, as RowBinary writes lengths.
fn varint(mut x: u64, out: &mut Vec<u8>) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// A ClickHouse server over HTTP, with the dialect its version speaks.
#[derive(Clone)]
pub struct Server {
    client: clickhouse::Client,
    pub version: String,
    pub dialect: Dialect,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("version", &self.version)
            .field("dialect", &self.dialect)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Connects to `url` (`http://127.0.0.1:8123`) and asks the server's version.
    pub async fn connect(url: &str) -> Result<Server, clickhouse::error::Error> {
        // Validation reads RowBinaryWithNamesAndTypes headers, which 18.16 cannot send.
        let client = clickhouse::Client::default()
            .with_url(url)
            .with_validation(false);
        let version = text(&client, "SELECT version()").await?.trim().to_owned();
        Ok(Server {
            dialect: Dialect::of_version(&version),
            version,
            client,
        })
    }

    /// Runs a statement that returns nothing (DDL), as written (no `?` placeholders).
    pub async fn execute(&self, sql: &str) -> Result<(), clickhouse::error::Error> {
        self.client.query_raw(sql).execute().await
    }

    /// A query's result in `TabSeparated` form.
    pub async fn text(&self, sql: &str) -> Result<String, clickhouse::error::Error> {
        text(&self.client, sql).await
    }

    /// Creates the database and every table, when missing.
    pub async fn create(&self, layout: &Layout) -> Result<(), clickhouse::error::Error> {
        self.execute(&format!(
            "CREATE DATABASE IF NOT EXISTS {}",
            quote(&layout.database)
        ))
        .await?;
        for t in Table::ALL {
            self.execute(&create_table(t, layout)).await?;
        }
        Ok(())
    }

    /// Inserts rows encoded by [`encode`] in one `INSERT`.
    pub async fn insert(
        &self,
        table: Table,
        layout: &Layout,
        data: Vec<u8>,
    ) -> Result<(), clickhouse::error::Error> {
        let mut insert = self.client.insert_formatted_with(insert_sql(table, layout));
        insert.send(data.into()).await?;
        insert.end().await
    }
}

async fn text(client: &clickhouse::Client, sql: &str) -> Result<String, clickhouse::error::Error> {
    let bytes = client
        .query_raw(sql)
        .fetch_bytes("TabSeparated")?
        .collect()
        .await?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_choose_the_dialect() {
        assert_eq!(Dialect::of_version("18.16.1"), Dialect::Legacy);
        assert_eq!(Dialect::of_version("19.17.4.11"), Dialect::Legacy);
        assert_eq!(Dialect::of_version("24.8.4.13"), Dialect::Modern);
        assert_eq!(Dialect::of_version("26.1.1"), Dialect::Modern);
    }

    #[test]
    fn varints_are_leb128() {
        for (x, want) in [
            (0u64, &[0u8][..]),
            (127, &[127]),
            (128, &[0x80, 1]),
            (300, &[0xac, 0x02]),
        ] {
            let mut out = Vec::new();
            varint(x, &mut out);
            assert_eq!(out, want, "{x}");
        }
    }

    #[test]
    fn ddl_follows_the_schema_in_both_dialects() {
        for dialect in [Dialect::Legacy, Dialect::Modern] {
            let layout = Layout {
                database: "canh".into(),
                dialect,
                retention_days: Some(30),
            };
            let sql = create_table(Table::Events, &layout);
            for f in Table::Events.fields() {
                assert!(sql.contains(&quote(&f.column())), "{}", f.column());
            }
            assert!(sql.contains("PARTITION BY toYYYYMMDD("), "{sql}");
            assert_eq!(sql.contains("TTL"), dialect == Dialect::Modern, "{sql}");
            assert_eq!(
                sql.contains("DateTime64(9, 'UTC')"),
                dialect == Dialect::Modern
            );
            assert_eq!(
                sql.contains("`timestamp_time` ALIAS"),
                dialect == Dialect::Legacy
            );
        }
    }
}
