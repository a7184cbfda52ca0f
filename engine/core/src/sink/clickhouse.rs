//! ClickHouse: the tables made from the one schema definition, and batches encoded as
//! `RowBinary` straight from their Arrow columns.
//!
//! Two dialects, chosen from the server's version ([`Dialect::of_version`]):
//!
//! * **legacy** — ClickHouse before 20.1 (Debian 12 ships 18.16), which has no `DateTime64`,
//!   `Map`, codecs or TTL: times are `Int64` nanoseconds since the epoch, the vendor map is
//!   `Nested(key, value)` (two arrays), retention drops old partitions.
//! * **modern** — `DateTime64(9, 'UTC')`, `Map(String, Nullable(String))`,
//!   `LowCardinality` for repetitive text, ZSTD for the nearly unique columns, and a TTL.
//!
//! In both, an `ALIAS` column `<name>_time` gives each time as a `DateTime` (seconds), so
//! dashboards and queries read the same names on either. `DateTime64(9)` is sent as the same 64-bit count of nanoseconds as `Int64`, so one encoder
//! serves both; only the vendor map is laid out per dialect (`Nested`: two arrays; `Map`:
//! key and value pairs). IP addresses are text in every dialect, as in the Parquet archive
//! (18.16 has no IP types).

use std::fmt::Write as _;

use arrow::array::{Array, ArrayRef, AsArray, StringArray};
use arrow::datatypes::{
    DataType, TimestampNanosecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use std::path::Path;
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use canh_metrics::Metrics;
use canh_schema::fields::{FieldDef, FieldType};
use canh_schema::{Batch, Table};
use tokio::runtime::Runtime;
use tracing::{error, info, warn};

use crate::config::ClickHouseConfig;
pub use crate::sink::clickhouse_client::Endpoint;
use crate::sink::spool::Spool;

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
    /// With a cluster (a name of the servers' `remote_servers`), each table is a Distributed
    /// table over `<table>_local` MergeTree tables on every shard.
    pub cluster: Option<String>,
}

impl Layout {
    /// The name of the table that stores a table's rows on a server: `<table>_local` in a
    /// cluster, else the table itself.
    pub fn storage_name(&self, table: Table) -> String {
        match self.cluster {
            Some(_) => format!("{}_local", table.name()),
            None => table.name().to_owned(),
        }
    }
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

/// `CREATE DATABASE IF NOT EXISTS` for the layout's database.
pub fn create_database(layout: &Layout) -> String {
    format!("CREATE DATABASE IF NOT EXISTS {}", quote(&layout.database))
}

/// `CREATE TABLE IF NOT EXISTS` for the table that stores a table's rows (see
/// [`Layout::storage_name`]): MergeTree partitioned by day of `@timestamp`, sorted by
/// organization, time and source address (the filters of nearly every query), and column
/// comments from the schema.
pub fn create_table(table: Table, layout: &Layout) -> String {
    let d = layout.dialect;
    let mut sql = format!(
        "CREATE TABLE IF NOT EXISTS {}.{} (\n",
        quote(&layout.database),
        quote(&layout.storage_name(table))
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
    // Every time also as `<name>_time`, a DateTime (seconds): the same name in both dialects
    // for dashboards and ad-hoc queries.
    for f in table
        .fields()
        .iter()
        .filter(|f| f.ty == FieldType::Timestamp)
    {
        let col = f.column();
        let expr = match d {
            Dialect::Legacy => format!("toDateTime(intDiv({}, 1000000000))", quote(&col)),
            Dialect::Modern => format!("toDateTime({})", quote(&col)),
        };
        let _ = writeln!(sql, "  {} ALIAS {expr},", quote(&format!("{col}_time")));
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

/// In a cluster, the Distributed table over every shard's `<table>_local` (rows spread at
/// random, so shards fill evenly); `None` without a cluster.
pub fn create_distributed(table: Table, layout: &Layout) -> Option<String> {
    let cluster = layout.cluster.as_ref()?;
    let db = quote(&layout.database);
    Some(format!(
        "CREATE TABLE IF NOT EXISTS {db}.{} AS {db}.{} \
         ENGINE = Distributed({}, {}, {}, rand())",
        quote(table.name()),
        quote(&layout.storage_name(table)),
        quote(cluster),
        quote(&layout.database),
        quote(&layout.storage_name(table)),
    ))
}

/// The `INSERT` statement whose data [`encode_native`] writes.
pub fn insert_sql(table: Table, layout: &Layout) -> String {
    format!(
        "INSERT INTO {}.{} FORMAT Native",
        quote(&layout.database),
        quote(table.name())
    )
}

/// Appends a batch of `table` as one block of ClickHouse's `Native` format: column after
/// column, each in one piece (null map, then values; arrays as end offsets, then elements),
/// which the server reads far faster than rows. `LowCardinality` columns are sent as their
/// plain type, which current servers convert on insert.
pub fn encode_native(
    table: Table,
    dialect: Dialect,
    records: &RecordBatch,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let fields = table.fields();
    let columns = columns(table, dialect, records)?;
    let legacy_maps = columns
        .iter()
        .filter(|c| matches!(c, Column::Map(_, Dialect::Legacy)))
        .count();
    varint((fields.len() + legacy_maps) as u64, out);
    varint(records.num_rows() as u64, out);
    for (f, c) in fields.iter().zip(&columns) {
        let name = f.column();
        let ty = column_type(f, dialect);
        let plain = |ty: &str| -> String {
            ty.strip_prefix("LowCardinality(")
                .and_then(|t| t.strip_suffix(')'))
                .unwrap_or(ty)
                .to_owned()
        };
        match c {
            Column::Map(m, Dialect::Legacy) => {
                let (keys, values) = (m.keys().as_string::<i32>(), m.values().as_string::<i32>());
                let (offsets, range) = array_offsets(m.value_offsets(), m.nulls());
                bytes(format!("{name}.key").as_bytes(), out);
                bytes(b"Array(String)", out);
                out.extend_from_slice(&offsets);
                for i in range.iter().flat_map(|r| r.clone()) {
                    bytes(keys.value(i).as_bytes(), out);
                }
                bytes(format!("{name}.value").as_bytes(), out);
                bytes(b"Array(Nullable(String))", out);
                out.extend_from_slice(&offsets);
                native_nullable_strings(values, range, out);
            }
            Column::Map(m, Dialect::Modern) => {
                let (keys, values) = (m.keys().as_string::<i32>(), m.values().as_string::<i32>());
                let (offsets, range) = array_offsets(m.value_offsets(), m.nulls());
                bytes(name.as_bytes(), out);
                bytes(ty.as_bytes(), out);
                out.extend_from_slice(&offsets);
                for i in range.iter().flat_map(|r| r.clone()) {
                    bytes(keys.value(i).as_bytes(), out);
                }
                native_nullable_strings(values, range, out);
            }
            Column::List(l) => {
                let values = l.values().as_string::<i32>();
                let (offsets, range) = array_offsets(l.value_offsets(), l.nulls());
                bytes(name.as_bytes(), out);
                bytes(ty.as_bytes(), out);
                out.extend_from_slice(&offsets);
                native_nullable_strings(values, range, out);
            }
            _ => {
                bytes(name.as_bytes(), out);
                bytes(plain(&ty).as_bytes(), out);
                c.write_native(out);
            }
        }
    }
    Ok(())
}

/// The end offsets (UInt64, from 0) of an array column with Arrow offsets and nulls, and the
/// elements sent, as index ranges: a null array is sent empty, as [`encode`] sends it.
fn array_offsets(
    offsets: &[i32],
    nulls: Option<&arrow::buffer::NullBuffer>,
) -> (Vec<u8>, Vec<std::ops::Range<usize>>) {
    let mut out = Vec::with_capacity(offsets.len().saturating_sub(1) * 8);
    let mut ranges: Vec<std::ops::Range<usize>> = Vec::new();
    let mut end = 0u64;
    for (row, w) in offsets.windows(2).enumerate() {
        let (a, b) = (w[0] as usize, w[1] as usize);
        if b > a && !nulls.is_some_and(|n| n.is_null(row)) {
            end += (b - a) as u64;
            match ranges.last_mut() {
                Some(last) if last.end == a => last.end = b,
                _ => ranges.push(a..b),
            }
        }
        out.extend_from_slice(&end.to_le_bytes());
    }
    (out, ranges)
}

/// A `Nullable(String)` column in one piece: the null map, then every value (empty for nulls).
fn native_nullable_strings(
    values: &StringArray,
    ranges: Vec<std::ops::Range<usize>>,
    out: &mut Vec<u8>,
) {
    for i in ranges.iter().flat_map(|r| r.clone()) {
        out.push(u8::from(values.is_null(i)));
    }
    for i in ranges.into_iter().flatten() {
        if values.is_null(i) {
            out.push(0);
        } else {
            bytes(values.value(i).as_bytes(), out);
        }
    }
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

/// A batch's columns, typed against the table's fields.
fn columns<'a>(
    table: Table,
    dialect: Dialect,
    records: &'a RecordBatch,
) -> Result<Vec<Column<'a>>, EncodeError> {
    let fields = table.fields();
    if records.num_columns() != fields.len() {
        return Err(EncodeError::Columns {
            table: table.name(),
            got: records.num_columns(),
            want: fields.len(),
        });
    }
    fields
        .iter()
        .zip(records.columns())
        .map(|(f, c)| Column::of(f, c, dialect).ok_or_else(|| type_error(table, f, c)))
        .collect()
}

/// Appends a batch of `table` as `RowBinary`, row by row in the table's column order.
pub fn encode(
    table: Table,
    dialect: Dialect,
    records: &RecordBatch,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let columns = columns(table, dialect, records)?;
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

    /// The whole column in `Native` form (not for arrays and maps, which
    /// [`encode_native`] writes).
    fn write_native(&self, out: &mut Vec<u8>) {
        fn null_map(a: &dyn Array, nullable: bool, out: &mut Vec<u8>) {
            if nullable {
                out.extend((0..a.len()).map(|i| u8::from(a.is_null(i))));
            }
        }
        fn fixed<T: arrow::datatypes::ArrowPrimitiveType>(
            a: &arrow::array::PrimitiveArray<T>,
            nullable: bool,
            out: &mut Vec<u8>,
        ) {
            null_map(a, nullable, out);
            let values = a.values().inner();
            let width = std::mem::size_of::<T::Native>();
            let start = a.offset() * width;
            out.extend_from_slice(&values.as_slice()[start..start + a.len() * width]);
        }
        match self {
            Column::Time(a, n) => fixed(*a, *n, out),
            Column::U8(a, n) => fixed(*a, *n, out),
            Column::U16(a, n) => fixed(*a, *n, out),
            Column::U32(a, n) => fixed(*a, *n, out),
            Column::U64(a, n) => fixed(*a, *n, out),
            Column::Text(a, n) => {
                null_map(*a, *n, out);
                for i in 0..a.len() {
                    bytes(
                        if a.is_null(i) {
                            b""
                        } else {
                            a.value(i).as_bytes()
                        },
                        out,
                    );
                }
            }
            Column::Bytes(a, n) => {
                null_map(*a, *n, out);
                for i in 0..a.len() {
                    bytes(if a.is_null(i) { b"" } else { a.value(i) }, out);
                }
            }
            Column::List(_) | Column::Map(..) => {}
        }
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

/// Why `RowBinary` data could not be read back.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{table}: row {row}, column {column}: {what}")]
pub struct DecodeError {
    pub table: &'static str,
    pub row: usize,
    pub column: String,
    pub what: &'static str,
}

/// Reads `RowBinary` rows of `SELECT *` from a table (the inverse of [`encode`]) into a batch
/// of the table's schema. An empty array reads as an empty list.
pub fn decode(
    table: Table,
    dialect: Dialect,
    mut data: &[u8],
) -> Result<Option<Batch>, DecodeError> {
    let fields = table.fields();
    let mut b = canh_schema::TableBuilder::new(table, 1024);
    let mut row = 0;
    while !data.is_empty() {
        for (i, f) in fields.iter().enumerate() {
            let err = |what| DecodeError {
                table: table.name(),
                row,
                column: f.column(),
                what,
            };
            let r = &mut data;
            match f.ty {
                FieldType::StrList => {
                    for _ in 0..read_varint(r).ok_or_else(|| err("truncated"))? {
                        if let Some(v) = read_nullable_str(r).ok_or_else(|| err("bad string"))? {
                            b.push_list(i, v);
                        }
                    }
                }
                FieldType::StrMap => {
                    let n = read_varint(r).ok_or_else(|| err("truncated"))?;
                    match dialect {
                        Dialect::Legacy => {
                            let mut keys = Vec::new();
                            for _ in 0..n {
                                keys.push(read_str(r).ok_or_else(|| err("bad key"))?);
                            }
                            if read_varint(r) != Some(n) {
                                return Err(err("keys and values differ in number"));
                            }
                            for k in keys {
                                let v = read_nullable_str(r).ok_or_else(|| err("bad value"))?;
                                b.insert_map(i, k, v);
                            }
                        }
                        Dialect::Modern => {
                            for _ in 0..n {
                                let k = read_str(r).ok_or_else(|| err("bad key"))?;
                                let v = read_nullable_str(r).ok_or_else(|| err("bad value"))?;
                                b.insert_map(i, k, v);
                            }
                        }
                    }
                }
                ty => {
                    if f.nullable {
                        match take(r, 1).ok_or_else(|| err("truncated"))?[0] {
                            0 => {}
                            1 => continue,
                            _ => return Err(err("bad null marker")),
                        }
                    }
                    match ty {
                        FieldType::Timestamp => {
                            let v = take(r, 8).ok_or_else(|| err("truncated"))?;
                            b.set_ts(i, i64::from_le_bytes(v.try_into().unwrap_or_default()));
                        }
                        FieldType::Str => {
                            b.set_str(i, read_str(r).ok_or_else(|| err("bad string"))?)
                        }
                        FieldType::Bytes => {
                            let n = read_varint(r).ok_or_else(|| err("truncated"))?;
                            let v = take(r, n as usize).ok_or_else(|| err("truncated"))?;
                            b.set_bytes(i, v);
                        }
                        FieldType::U8 | FieldType::U16 | FieldType::U32 | FieldType::U64 => {
                            let width = match ty {
                                FieldType::U8 => 1,
                                FieldType::U16 => 2,
                                FieldType::U32 => 4,
                                _ => 8,
                            };
                            let v = take(r, width).ok_or_else(|| err("truncated"))?;
                            let mut le = [0u8; 8];
                            le[..width].copy_from_slice(v);
                            b.set_uint(i, u64::from_le_bytes(le));
                        }
                        FieldType::StrList | FieldType::StrMap => {}
                    }
                }
            }
        }
        b.end_row();
        row += 1;
    }
    b.finish().map_err(|_| DecodeError {
        table: table.name(),
        row,
        column: String::new(),
        what: "the rows do not make a batch",
    })
}

/// The length of the complete rows at the start of `data` (what [`decode`] can read now
/// from a stream; the rest waits for more bytes), and how many.
pub fn complete_rows(table: Table, dialect: Dialect, data: &[u8]) -> (usize, usize) {
    let (mut rest, mut rows, mut end) = (data, 0, 0);
    let skip_str = |r: &mut &[u8]| -> Option<()> {
        let n = read_varint(r)?;
        take(r, usize::try_from(n).ok()?).map(|_| ())
    };
    let skip_nullable_str = |r: &mut &[u8]| -> Option<()> {
        if take(r, 1)?[0] == 0 {
            skip_str(r)?;
        }
        Some(())
    };
    let row = |r: &mut &[u8]| -> Option<()> {
        for f in table.fields() {
            match f.ty {
                FieldType::StrList => {
                    for _ in 0..read_varint(r)? {
                        skip_nullable_str(r)?;
                    }
                }
                FieldType::StrMap => {
                    let n = read_varint(r)?;
                    if dialect == Dialect::Legacy {
                        for _ in 0..n {
                            skip_str(r)?;
                        }
                        read_varint(r)?;
                        for _ in 0..n {
                            skip_nullable_str(r)?;
                        }
                    } else {
                        for _ in 0..n {
                            skip_str(r)?;
                            skip_nullable_str(r)?;
                        }
                    }
                }
                ty => {
                    if f.nullable && take(r, 1)?[0] != 0 {
                        continue;
                    }
                    match ty {
                        FieldType::Timestamp | FieldType::U64 => take(r, 8).map(|_| ())?,
                        FieldType::U32 => take(r, 4).map(|_| ())?,
                        FieldType::U16 => take(r, 2).map(|_| ())?,
                        FieldType::U8 => take(r, 1).map(|_| ())?,
                        _ => skip_str(r)?,
                    }
                }
            }
        }
        Some(())
    };
    while !rest.is_empty() {
        if row(&mut rest).is_none() {
            break;
        }
        rows += 1;
        end = data.len() - rest.len();
    }
    (end, rows)
}

fn take<'a>(data: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if data.len() < n {
        return None;
    }
    let (head, rest) = data.split_at(n);
    *data = rest;
    Some(head)
}

fn read_varint(data: &mut &[u8]) -> Option<u64> {
    let mut x = 0u64;
    for shift in (0..64).step_by(7) {
        let b = take(data, 1)?[0];
        x |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(x);
        }
    }
    None
}

fn read_str<'a>(data: &mut &'a [u8]) -> Option<&'a str> {
    let n = read_varint(data)?;
    std::str::from_utf8(take(data, usize::try_from(n).ok()?)?).ok()
}

fn read_nullable_str<'a>(data: &mut &'a [u8]) -> Option<Option<&'a str>> {
    match take(data, 1)?[0] {
        0 => read_str(data).map(Some),
        1 => Some(None),
        _ => None,
    }
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
    /// Connects to `url` (`http://127.0.0.1:8123`) as `default` and asks the server's version.
    pub async fn connect(url: &str) -> Result<Server, clickhouse::error::Error> {
        Server::open(&Endpoint::new(url)).await
    }

    /// Connects to a server and asks its version.
    pub async fn open(endpoint: &Endpoint) -> Result<Server, clickhouse::error::Error> {
        let client = endpoint
            .client()
            .map_err(clickhouse::error::Error::Custom)?;
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

    /// A query's result as `RowBinary`, chunk by chunk.
    pub fn row_binary(
        &self,
        sql: &str,
    ) -> Result<clickhouse::query::BytesCursor, clickhouse::error::Error> {
        self.client.query_raw(sql).fetch_bytes("RowBinary")
    }

    /// Creates the database and every table (in a cluster: this server's shard tables and
    /// the Distributed tables over them), when missing.
    pub async fn create(&self, layout: &Layout) -> Result<(), clickhouse::error::Error> {
        self.execute(&create_database(layout)).await?;
        for t in Table::ALL {
            self.execute(&create_table(t, layout)).await?;
            if let Some(sql) = create_distributed(t, layout) {
                self.execute(&sql).await?;
            }
        }
        Ok(())
    }

    /// Inserts batches in one `INSERT`, one Native block each ([`encode_native`]), each
    /// encoded as the one before it is sent: one batch's encoding is in memory at a time, not
    /// the whole `INSERT`'s, and the server reads while Canh encodes. A batch that cannot be
    /// encoded (a fault of the encoder, not of the rows) abandons the request unfinished.
    pub async fn insert(
        &self,
        table: Table,
        layout: &Layout,
        batches: &[RecordBatch],
    ) -> Result<(), InsertError> {
        let mut insert = self.client.insert_formatted_with(insert_sql(table, layout));
        for b in batches {
            let mut data = Vec::new();
            encode_native(table, layout.dialect, b, &mut data)?;
            insert.send(data.into()).await?;
        }
        Ok(insert.end().await?)
    }
}

/// Why an `INSERT` failed.
#[derive(Debug, thiserror::Error)]
pub enum InsertError {
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error(transparent)]
    Server(#[from] clickhouse::error::Error),
}

async fn text(client: &clickhouse::Client, sql: &str) -> Result<String, clickhouse::error::Error> {
    let bytes = client
        .query_raw(sql)
        .fetch_bytes("TabSeparated")?
        .collect()
        .await?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Why an insert failed, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The server is unreachable, slow, overloaded or missing the table: try again later.
    Transient(String),
    /// The server refused the data itself: trying again gives the same answer.
    Invalid(String),
}

/// ClickHouse error codes that mean "this data is wrong", not "try again": parse and type
/// errors, unknown columns, arrays of different sizes, nulls in non-null columns, …
const INVALID_DATA_CODES: &[u32] = &[
    6, 16, 26, 27, 32, 33, 38, 41, 53, 62, 69, 70, 72, 73, 117, 130, 131, 190, 321, 349,
];

/// The `Code: N` of a ClickHouse exception message.
fn error_code(message: &str) -> Option<u32> {
    let rest = &message[message.find("Code: ")? + 6..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Sorts an error of the client into [`Failure`]s.
pub fn classify(e: &clickhouse::error::Error) -> Failure {
    use clickhouse::error::Error;
    let text = e.to_string();
    match e {
        Error::BadResponse(m) if error_code(m).is_some_and(|c| INVALID_DATA_CODES.contains(&c)) => {
            Failure::Invalid(text)
        }
        _ => Failure::Transient(text),
    }
}

/// Rows of one table waiting to be inserted.
#[derive(Default)]
struct Pending {
    batches: Vec<RecordBatch>,
    rows: usize,
    since: Option<Instant>,
}

/// An `INSERT` under way, with what it sends (spooled if it fails).
struct Flight {
    table: Table,
    batches: Vec<RecordBatch>,
    rows: usize,
    result: tokio::task::JoinHandle<Result<(), Failure>>,
}

/// One `INSERT` of the batches of a table ([`Server::insert`]), answered within `timeout`.
async fn insert_batches(
    server: &Server,
    layout: &Layout,
    table: Table,
    batches: &[RecordBatch],
    timeout: Duration,
) -> Result<(), Failure> {
    match tokio::time::timeout(timeout, server.insert(table, layout, batches)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(InsertError::Encode(e))) => Err(Failure::Invalid(e.to_string())),
        Ok(Err(InsertError::Server(e))) => Err(classify(&e)),
        Err(_) => Err(Failure::Transient("insert: timed out".into())),
    }
}

/// How many times a spooled chunk that the server answers with an error other than a network
/// failure or a known data error is tried before it goes to `dead/` (it would otherwise block
/// the spool for ever).
const MAX_ATTEMPTS: u32 = 20;

/// Drops the daily partitions before `cutoff` (`YYYYMMDD`) of every table on a server.
async fn drop_partitions_before(server: &Server, layout: &Layout, cutoff: u32) {
    for t in Table::ALL {
        let table = layout.storage_name(t);
        let sql = format!(
            "SELECT DISTINCT partition FROM system.parts WHERE database = '{}' AND table = '{table}' AND active",
            layout.database,
        );
        let Ok(parts) = server.text(&sql).await else {
            return;
        };
        for p in parts.lines().filter_map(|p| p.trim().parse::<u32>().ok()) {
            if p < cutoff {
                let drop = format!(
                    "ALTER TABLE {}.{} DROP PARTITION {p}",
                    quote(&layout.database),
                    quote(&table)
                );
                match server.execute(&drop).await {
                    Ok(()) => info!(table, partition = p, "retention: partition dropped"),
                    Err(e) => {
                        warn!(error = %e, table, partition = p, "retention: cannot drop partition")
                    }
                }
            }
        }
    }
}

/// The sink: batches in, `INSERT`s out; the spool while the server cannot take them.
struct Sink {
    config: ClickHouseConfig,
    metrics: Metrics,
    server: Option<(Server, Layout)>,
    /// In a cluster, every shard server (for their tables and retention).
    shards: Vec<(Server, Layout)>,
    spool: Option<Spool>,
    pending: [Pending; 3],
    /// INSERTs under way, oldest first (at most `config.parallel_inserts`).
    flights: std::collections::VecDeque<Flight>,
    /// False from the first failure until the spool has drained.
    up: bool,
    retry_at: Instant,
    backoff: Duration,
    /// Failed attempts on the oldest spooled chunk.
    attempts: u32,
    retention_at: Instant,
}

const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

impl Sink {
    fn table_index(t: Table) -> usize {
        t as usize
    }

    fn add(&mut self, batch: Batch) {
        let p = &mut self.pending[Self::table_index(batch.table)];
        p.rows += batch.rows();
        p.since.get_or_insert_with(Instant::now);
        p.batches.push(batch.records);
    }

    /// Connects (and creates the tables) if not connected.
    async fn connect(&mut self) -> Result<(), Failure> {
        if self.server.is_some() {
            return Ok(());
        }
        let timeout = self.config.timeout;
        let config = &self.config;
        let ready = |url: String| async move {
            let server = Server::open(&Endpoint {
                url,
                ..config.endpoint()
            })
            .await?;
            let layout = Layout {
                database: config.database.clone(),
                dialect: server.dialect,
                retention_days: config.retention_days,
                cluster: config.cluster.clone(),
            };
            server.create(&layout).await?;
            Ok::<_, clickhouse::error::Error>((server, layout))
        };
        let connect = async {
            // The shards' own tables first: the Distributed tables read and write them.
            let mut shards = Vec::new();
            for url in &config.shards {
                shards.push(ready(url.clone()).await?);
            }
            Ok::<_, clickhouse::error::Error>((ready(config.url.clone()).await?, shards))
        };
        match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(((server, layout), shards))) => {
                info!(url = %self.config.url, version = %server.version, dialect = ?server.dialect, shards = shards.len(), "ClickHouse connected; tables ready");
                self.server = Some((server, layout));
                self.shards = shards;
                Ok(())
            }
            Ok(Err(e)) => Err(Failure::Transient(format!("connecting: {e}"))),
            Err(_) => Err(Failure::Transient("connecting: timed out".into())),
        }
    }

    /// One `INSERT` of the batches of a table, waited for.
    async fn insert(&mut self, table: Table, batches: &[RecordBatch]) -> Result<(), Failure> {
        self.connect().await?;
        let Some((server, layout)) = &self.server else {
            return Err(Failure::Transient("not connected".into()));
        };
        let result = insert_batches(server, layout, table, batches, self.config.timeout).await;
        self.failed_over(&result);
        result
    }

    /// After a transient failure the server is connected to again next time: it may have
    /// restarted, lost the tables or moved.
    fn failed_over(&mut self, result: &Result<(), Failure>) {
        if let Err(Failure::Transient(_)) = result {
            self.server = None;
        }
    }

    /// Starts an `INSERT` of the batches of a table without waiting for it.
    fn launch(&mut self, rt: &Runtime, table: Table, batches: Vec<RecordBatch>, rows: usize) {
        let connected = rt.block_on(self.connect());
        let result = match (connected, &self.server) {
            (Ok(()), Some((server, layout))) => {
                let (server, layout) = (server.clone(), layout.clone());
                let (send, timeout) = (batches.clone(), self.config.timeout);
                rt.spawn(
                    async move { insert_batches(&server, &layout, table, &send, timeout).await },
                )
            }
            (Err(e), _) => rt.spawn(std::future::ready(Err(e))),
            (Ok(()), None) => rt.spawn(std::future::ready(Err(Failure::Transient(
                "not connected".into(),
            )))),
        };
        self.flights.push_back(Flight {
            table,
            batches,
            rows,
            result,
        });
        self.metrics
            .set_clickhouse("inserts_in_flight", self.flights.len() as u64);
    }

    /// Takes the answers of finished `INSERT`s, oldest first (with `wait`, waits for the
    /// oldest one at least): counted, or spooled after a transient failure, or moved to the
    /// dead letters.
    fn land(&mut self, rt: &Runtime, mut wait: bool) {
        while let Some(f) = self.flights.front() {
            if !(wait || f.result.is_finished()) {
                break;
            }
            let Some(f) = self.flights.pop_front() else {
                break;
            };
            let result = rt
                .block_on(f.result)
                .unwrap_or_else(|e| Err(Failure::Transient(format!("insert task: {e}"))));
            self.failed_over(&result);
            self.settle(f.table, &f.batches, f.rows, result);
            wait = false;
        }
        self.metrics
            .set_clickhouse("inserts_in_flight", self.flights.len() as u64);
    }

    /// Waits for every `INSERT` under way.
    fn land_all(&mut self, rt: &Runtime) {
        while !self.flights.is_empty() {
            self.land(rt, true);
        }
    }

    /// What an `INSERT` of new rows came to.
    fn settle(
        &mut self,
        table: Table,
        batches: &[RecordBatch],
        rows: usize,
        result: Result<(), Failure>,
    ) {
        match result {
            Ok(()) => {
                if !self.up {
                    info!("ClickHouse is back");
                    self.up = true;
                    self.backoff = MIN_BACKOFF;
                }
                self.metrics
                    .clickhouse(table.name(), "inserted", rows as u64);
            }
            Err(Failure::Transient(why)) => {
                self.went_down(&why);
                self.spool(table, batches, rows);
            }
            Err(Failure::Invalid(why)) => self.dead(table, batches, rows, &why),
        }
    }

    fn went_down(&mut self, why: &str) {
        if self.up {
            warn!(error = %why, "ClickHouse unavailable; spooling batches to disk");
        }
        self.up = false;
        self.retry_at = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    fn spool(&mut self, table: Table, batches: &[RecordBatch], rows: usize) {
        let Some(spool) = &mut self.spool else {
            self.metrics
                .clickhouse(table.name(), "dropped", rows as u64);
            return;
        };
        match spool.push(table, batches) {
            Ok(true) => self
                .metrics
                .clickhouse(table.name(), "spooled", rows as u64),
            Ok(false) => {
                warn!(
                    rows,
                    table = table.name(),
                    "ClickHouse spool full; rows kept only in the Parquet archive"
                );
                self.metrics
                    .clickhouse(table.name(), "dropped", rows as u64);
            }
            Err(e) => {
                error!(error = %e, rows, "cannot spool; rows kept only in the Parquet archive");
                self.metrics.error("clickhouse", "spool_io");
                self.metrics
                    .clickhouse(table.name(), "dropped", rows as u64);
            }
        }
    }

    fn dead(&mut self, table: Table, batches: &[RecordBatch], rows: usize, why: &str) {
        error!(error = %why, rows, table = table.name(), "ClickHouse rejected a batch; moved to the dead-letter folder");
        self.metrics.clickhouse(table.name(), "dead", rows as u64);
        let pushed = self
            .spool
            .as_mut()
            .map(|s| s.push_dead(table, batches, why));
        if !matches!(pushed, Some(Ok(()))) {
            self.metrics
                .clickhouse(table.name(), "dropped", rows as u64);
        }
    }

    /// Inserts (or spools) the rows of a table.
    fn flush(&mut self, rt: &Runtime, t: usize) {
        let p = std::mem::take(&mut self.pending[t]);
        if p.batches.is_empty() {
            return;
        }
        let table = Table::ALL[t];
        // While anything is spooled, new rows queue behind it: the spool drains oldest first.
        // While the server is down and nothing is spooled (no spool folder), they wait for the
        // retry time and are tried directly. With `parallel_inserts` under way, the oldest is
        // waited for; when the server is down or rows are spooled, all of them, so that one
        // that fails is spooled ahead of these rows.
        while self.flights.len() >= self.config.parallel_inserts.max(1) {
            self.land(rt, true);
        }
        let spooled = self.spool.as_ref().is_some_and(|s| !s.is_empty());
        if spooled || !self.up {
            self.land_all(rt);
        }
        let spooled = self.spool.as_ref().is_some_and(|s| !s.is_empty());
        if spooled || (!self.up && Instant::now() < self.retry_at) {
            self.spool(table, &p.batches, p.rows);
            return;
        }
        self.launch(rt, table, p.batches, p.rows);
    }

    /// Sends spooled chunks, oldest first, until the spool is empty, a chunk fails, or the
    /// time budget is spent (so that new batches keep being taken in).
    async fn replay(&mut self, budget: Duration) {
        let started = Instant::now();
        while started.elapsed() < budget {
            let Some(spool) = &self.spool else { return };
            let Some(front) = spool.front().cloned() else {
                break;
            };
            let batches = match spool.read_front() {
                Some(Ok(b)) => b,
                Some(Err(why)) => {
                    error!(error = %why, seq = front.seq, "damaged spool file moved to dead/");
                    self.metrics
                        .clickhouse(front.table.name(), "dead", front.rows);
                    if let Some(s) = &mut self.spool {
                        s.dead(&why);
                    }
                    continue;
                }
                None => break,
            };
            match self.insert(front.table, &batches).await {
                Ok(()) => {
                    self.attempts = 0;
                    self.metrics
                        .clickhouse(front.table.name(), "replayed", front.rows);
                    if let Some(Err(e)) = self.spool.as_mut().map(Spool::pop) {
                        error!(error = %e, "cannot remove a replayed spool file");
                        self.metrics.error("clickhouse", "spool_io");
                        // Not removed: the chunk would be sent again. Stop replaying.
                        self.spool = None;
                        return;
                    }
                }
                Err(Failure::Invalid(why)) => {
                    self.attempts = 0;
                    error!(error = %why, seq = front.seq, "ClickHouse rejected a spooled batch; moved to dead/");
                    self.metrics
                        .clickhouse(front.table.name(), "dead", front.rows);
                    if let Some(s) = &mut self.spool {
                        s.dead(&why);
                    }
                }
                Err(Failure::Transient(why)) => {
                    self.attempts += 1;
                    let network = why.starts_with("connecting")
                        || why.contains("network error")
                        || why.contains("timed out");
                    if !network && self.attempts >= MAX_ATTEMPTS {
                        let why = format!("{why} (after {} attempts)", self.attempts);
                        self.attempts = 0;
                        self.metrics
                            .clickhouse(front.table.name(), "dead", front.rows);
                        if let Some(s) = &mut self.spool {
                            s.dead(&why);
                        }
                        continue;
                    }
                    self.went_down(&why);
                    return;
                }
            }
        }
        if self.spool.as_ref().is_none_or(Spool::is_empty) {
            if !self.up {
                info!("ClickHouse is back; the spool has drained");
            }
            self.up = true;
            self.backoff = MIN_BACKOFF;
        }
    }

    /// Drops whole days past the retention on servers without TTL (in a cluster, on every
    /// shard).
    async fn retention(&mut self) {
        let Some(days) = self.config.retention_days else {
            return;
        };
        if Instant::now() < self.retention_at || !self.up {
            return;
        }
        self.retention_at = Instant::now() + Duration::from_secs(3600);
        let cutoff =
            jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * i64::from(days));
        let cutoff: u32 = cutoff.strftime("%Y%m%d").to_string().parse().unwrap_or(0);
        let servers = if self.shards.is_empty() {
            self.server.iter().collect::<Vec<_>>()
        } else {
            self.shards.iter().collect()
        };
        for (server, layout) in servers {
            if layout.dialect == Dialect::Legacy {
                drop_partitions_before(server, layout, cutoff).await;
            }
        }
    }

    fn gauges(&self) {
        let m = &self.metrics;
        let (bytes, files, age) = match &self.spool {
            Some(s) => (
                s.bytes(),
                s.len() as u64,
                s.front().map_or(0, |e| {
                    (canh_schema::raw::now_ns().saturating_sub(e.spooled_ns) / 1_000_000_000).max(0)
                        as u64
                }),
            ),
            None => (0, 0, 0),
        };
        m.set_clickhouse("spool_bytes", bytes);
        m.set_clickhouse("spool_files", files);
        m.set_clickhouse("spool_oldest_age_seconds", age);
        m.set_clickhouse("up", u64::from(self.up));
    }

    /// Takes the answers of finished inserts, flushes the tables that are due, replays the
    /// spool when its retry time has come (once nothing else is under way); when closing,
    /// waits for every insert.
    fn tick(&mut self, rt: &Runtime, closing: bool) {
        self.land(rt, false);
        for t in 0..self.pending.len() {
            let p = &self.pending[t];
            let due = p.rows >= self.config.batch_rows
                || p.since
                    .is_some_and(|s| s.elapsed() >= self.config.flush_interval);
            if due || (closing && p.rows > 0) {
                self.flush(rt, t);
            }
        }
        if closing {
            self.land_all(rt);
        }
        let spooled = self.spool.as_ref().is_some_and(|s| !s.is_empty());
        if spooled && Instant::now() >= self.retry_at {
            self.land_all(rt);
            rt.block_on(self.replay(if closing {
                Duration::ZERO
            } else {
                Duration::from_millis(500)
            }));
        }
        rt.block_on(self.retention());
        self.gauges();
    }
}

/// The ClickHouse sink thread: takes the batches the archive has written, inserts them in
/// batches of `batch_rows` (or every `flush_interval`; up to `parallel_inserts` at once),
/// spools them to `spool_dir` while the server cannot take them and replays the spool in order
/// when it can. Returns when `input` closes, after a last flush (to the server, or to the
/// spool, replayed at the next start).
pub fn run(
    config: ClickHouseConfig,
    spool_dir: &Path,
    input: crossbeam_channel::Receiver<Batch>,
    metrics: Metrics,
) {
    let spool = match Spool::open(spool_dir, config.spool_max_size) {
        Ok((s, problems)) => {
            for p in problems {
                warn!(problem = %p, "ClickHouse spool");
            }
            if !s.is_empty() {
                info!(
                    files = s.len(),
                    bytes = s.bytes(),
                    "ClickHouse spool not empty; replaying it"
                );
            }
            Some(s)
        }
        Err(e) => {
            error!(error = %e, "cannot open the ClickHouse spool; an outage will lose rows for ClickHouse (the Parquet archive keeps them)");
            metrics.error("clickhouse", "spool_io");
            None
        }
    };
    // One worker runs the INSERTs under way while this thread waits for input.
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("clickhouse-insert")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!(error = %e, "cannot start the ClickHouse sink");
            for b in input.iter() {
                metrics.clickhouse(b.table.name(), "dropped", b.rows() as u64);
            }
            return;
        }
    };
    let mut sink = Sink {
        up: spool.as_ref().is_none_or(Spool::is_empty),
        config,
        metrics,
        server: None,
        shards: Vec::new(),
        spool,
        pending: Default::default(),
        flights: Default::default(),
        retry_at: Instant::now(),
        backoff: MIN_BACKOFF,
        attempts: 0,
        retention_at: Instant::now(),
    };
    let tick = Duration::from_millis(100);
    loop {
        match input.recv_timeout(tick) {
            Ok(batch) => {
                sink.add(batch);
                // Take in whatever else is queued before flushing.
                while let Ok(b) = input.try_recv() {
                    sink.add(b);
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        }
        sink.tick(&rt, false);
    }
    sink.tick(&rt, true);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_sorted_into_retry_and_dead_letter() {
        use clickhouse::error::Error;
        let bad = Error::BadResponse(
            "Code: 27, e.displayText() = DB::Exception: Cannot parse input".into(),
        );
        assert!(matches!(classify(&bad), Failure::Invalid(_)));
        let busy = Error::BadResponse("Code: 241, e.displayText() = Memory limit".into());
        assert!(matches!(classify(&busy), Failure::Transient(_)));
        assert!(matches!(classify(&Error::TimedOut), Failure::Transient(_)));
        assert_eq!(
            error_code("Code: 60. DB::Exception: Table x doesn't exist"),
            Some(60)
        );
        assert_eq!(error_code("no code"), None);
    }

    /// A stand-in for the server's HTTP interface that answers `SELECT version()` as 18.16
    /// and DDL with nothing, and holds every INSERT until `together` of them are under way at
    /// once. Returns its URL.
    fn server_holding_inserts(together: usize) -> String {
        use axum::body::Bytes;
        use axum::http::Uri;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            rt.block_on(async move {
                let gate = std::sync::Arc::new(tokio::sync::Barrier::new(together));
                let app = axum::Router::new().fallback(move |uri: Uri, body: Bytes| {
                    let gate = gate.clone();
                    async move {
                        let query = uri.query().unwrap_or_default().to_owned();
                        let text = format!("{query} {}", String::from_utf8_lossy(&body));
                        if query.contains("INSERT") {
                            gate.wait().await;
                            String::new()
                        } else if text.contains("version") {
                            "18.16.1\n".to_owned()
                        } else {
                            String::new()
                        }
                    }
                });
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                tx.send(listener.local_addr().expect("address"))
                    .expect("send");
                axum::serve(listener, app).await.expect("serve");
            });
        });
        format!("http://{}", rx.recv().expect("address"))
    }

    /// Two batches, one INSERT each, against a server that answers INSERTs only once two are
    /// under way: with `parallel_inserts = 2` both land; one at a time, the first waits out
    /// the timeout and both are spooled.
    #[test]
    fn inserts_are_under_way_together() {
        use canh_schema::fields::events::Col;
        // Generous where both must land (a loaded machine may be slow to start the second);
        // short where the first is meant to time out.
        for (parallel, landed, timeout) in [(2, true, 20), (1, false, 2)] {
            let url = server_holding_inserts(2);
            let dir = tempfile::tempdir().expect("tempdir");
            let mut config = ClickHouseConfig::new(&url);
            config.batch_rows = 3;
            config.flush_interval = Duration::from_secs(600);
            config.timeout = Duration::from_secs(timeout);
            config.parallel_inserts = parallel;
            let metrics = Metrics::new();
            let (tx, rx) = crossbeam_channel::unbounded();
            let sink = {
                let (dir, metrics) = (dir.path().to_owned(), metrics.clone());
                std::thread::spawn(move || run(config, &dir, rx, metrics))
            };
            for _ in 0..2 {
                let mut b = canh_schema::TableBuilder::new(Table::Events, 3);
                for i in 0..3 {
                    b.set_ts(Col::Timestamp, i);
                    b.set_ts(Col::EventCreated, i);
                    b.set_str(Col::EventOriginal, "line");
                    b.set_str(Col::ParseStatus, "ok");
                    b.end_row();
                }
                tx.send(b.finish().expect("batch").expect("rows"))
                    .expect("send");
                // The second batch comes while the first INSERT is under way.
                std::thread::sleep(Duration::from_millis(300));
            }
            drop(tx);
            sink.join().expect("sink");
            let text = metrics.render();
            let rows = |kind: &str| {
                text.lines()
                    .find(|l| {
                        l.starts_with("canh_clickhouse_rows_total")
                            && l.contains(&format!("kind=\"{kind}\""))
                    })
                    .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            if landed {
                assert_eq!((rows("inserted"), rows("spooled")), (6, 0), "{text}");
            } else {
                assert_eq!((rows("inserted"), rows("spooled")), (0, 6), "{text}");
            }
        }
    }

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
            assert_eq!(read_varint(&mut &out[..]), Some(x));
        }
    }

    #[test]
    fn rows_decode_back_to_the_batch_they_were_encoded_from() {
        use canh_schema::fields::events::Col;
        let mut b = canh_schema::TableBuilder::new(Table::Events, 4);
        b.set_ts(Col::Timestamp, 1_764_460_800_123_456_789);
        b.set_str(Col::SourceIp, "10.0.0.1");
        b.set_str(Col::OrganizationName, "Sở Tài chính");
        b.set_uint(Col::DestinationPort, 443);
        b.push_list(Col::EventCategory, "network");
        b.push_list(Col::EventCategory, "authentication");
        b.insert_map(Col::VendorFields, "srcintf", Some("port1"));
        b.insert_map(Col::VendorFields, "policyid", None);
        b.set_str(Col::EventOriginal, "line 1");
        b.set_ts(Col::EventCreated, 7);
        b.set_str(Col::ParseStatus, "ok");
        b.end_row();
        b.set_ts(Col::Timestamp, -5);
        b.set_ts(Col::EventCreated, 8);
        b.set_str(Col::EventOriginal, "line 2\n\t");
        b.set_str(Col::ParseStatus, "failed");
        b.end_row();
        let batch = b.finish().expect("batch").expect("rows");
        for dialect in [Dialect::Legacy, Dialect::Modern] {
            let mut data = Vec::new();
            encode(Table::Events, dialect, &batch.records, &mut data).expect("encode");
            let back = decode(Table::Events, dialect, &data)
                .expect("decode")
                .expect("rows");
            assert_eq!(back.records, batch.records, "{dialect:?}");
            // Truncated data is an error, never a panic; the complete rows are found.
            for cut in [1, data.len() / 2, data.len() - 1] {
                assert!(decode(Table::Events, dialect, &data[..cut]).is_err());
                assert!(complete_rows(Table::Events, dialect, &data[..cut]).1 < 2);
            }
            assert_eq!(
                complete_rows(Table::Events, dialect, &data),
                (data.len(), 2)
            );
        }
    }

    #[test]
    fn ddl_follows_the_schema_in_both_dialects() {
        for dialect in [Dialect::Legacy, Dialect::Modern] {
            let layout = Layout {
                database: "canh".into(),
                dialect,
                retention_days: Some(30),
                cluster: None,
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
            assert!(sql.contains("`timestamp_time` ALIAS"), "{sql}");
        }
    }
}
