//! Row-by-row Arrow builders for one table.
//!
//! A parser calls the `set_*` methods for the columns it knows in the current row and then
//! [`TableBuilder::end_row`], which appends a null to every column it did not set. Setting a
//! column twice in one row keeps the first value: builders cannot overwrite, and a parser that
//! finds a field twice should not shift every later row.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, ListBuilder, MapBuilder, StringBuilder, TimestampNanosecondBuilder,
    UInt16Builder, UInt32Builder, UInt64Builder, UInt8Builder,
};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use crate::fields::{FieldType, Table};

enum Column {
    Ts(TimestampNanosecondBuilder),
    Str(StringBuilder),
    Bytes(BinaryBuilder),
    U8(UInt8Builder),
    U16(UInt16Builder),
    U32(UInt32Builder),
    U64(UInt64Builder),
    List(ListBuilder<StringBuilder>),
    Map(MapBuilder<StringBuilder, StringBuilder>),
}

/// How much a column held in the last batch, to size the next one's buffers so they do not
/// regrow (and re-copy, and fault in fresh pages) batch after batch.
#[derive(Debug, Clone, Copy, Default)]
struct Sizing {
    /// Text or binary bytes (list values, map values).
    bytes: usize,
    /// Entries of a list or map column.
    entries: usize,
    /// Key bytes of a map column.
    key_bytes: usize,
}

impl Sizing {
    fn of(array: &dyn arrow::array::Array) -> Sizing {
        use arrow::array::{Array, AsArray};
        use arrow::datatypes::DataType;
        match array.data_type() {
            DataType::Utf8 => Sizing {
                bytes: array.as_string::<i32>().values().len(),
                ..Sizing::default()
            },
            DataType::Binary => Sizing {
                bytes: array.as_binary::<i32>().values().len(),
                ..Sizing::default()
            },
            DataType::List(_) => {
                let list = array.as_list::<i32>();
                let values = list.values();
                Sizing {
                    bytes: Sizing::of(values.as_ref()).bytes,
                    entries: values.len(),
                    key_bytes: 0,
                }
            }
            DataType::Map(_, _) => {
                let map = array.as_map();
                Sizing {
                    bytes: Sizing::of(map.values().as_ref()).bytes,
                    entries: map.entries().len(),
                    key_bytes: Sizing::of(map.keys().as_ref()).bytes,
                }
            }
            _ => Sizing::default(),
        }
    }

    /// A quarter more, so a slightly bigger batch does not regrow.
    fn padded(self) -> Sizing {
        Sizing {
            bytes: self.bytes + self.bytes / 4,
            entries: self.entries + self.entries / 4,
            key_bytes: self.key_bytes + self.key_bytes / 4,
        }
    }
}

impl Column {
    /// A builder with room for `rows` values (and what `size` says of text and entries) before
    /// it reallocates.
    fn new(ty: FieldType, rows: usize, size: Sizing) -> Column {
        let bytes = size.bytes;
        match ty {
            FieldType::Timestamp => {
                Column::Ts(TimestampNanosecondBuilder::with_capacity(rows).with_timezone("UTC"))
            }
            FieldType::Str => Column::Str(StringBuilder::with_capacity(rows, bytes)),
            FieldType::Bytes => Column::Bytes(BinaryBuilder::with_capacity(rows, bytes)),
            FieldType::U8 => Column::U8(UInt8Builder::with_capacity(rows)),
            FieldType::U16 => Column::U16(UInt16Builder::with_capacity(rows)),
            FieldType::U32 => Column::U32(UInt32Builder::with_capacity(rows)),
            FieldType::U64 => Column::U64(UInt64Builder::with_capacity(rows)),
            FieldType::StrList => Column::List(ListBuilder::with_capacity(
                StringBuilder::with_capacity(size.entries, bytes),
                rows,
            )),
            FieldType::StrMap => Column::Map(MapBuilder::with_capacity(
                None,
                StringBuilder::with_capacity(size.entries, size.key_bytes),
                StringBuilder::with_capacity(size.entries, bytes),
                rows,
            )),
        }
    }

    fn append_nulls(&mut self, n: usize) {
        match self {
            Column::Ts(b) => b.append_nulls(n),
            Column::Str(b) => b.append_nulls(n),
            Column::Bytes(b) => b.append_nulls(n),
            Column::U8(b) => b.append_nulls(n),
            Column::U16(b) => b.append_nulls(n),
            Column::U32(b) => b.append_nulls(n),
            Column::U64(b) => b.append_nulls(n),
            Column::List(b) => (0..n).for_each(|_| b.append(false)),
            // A map with no entries is stored as an empty map, not null: readers then need no
            // null checks to look up a key.
            Column::Map(b) => (0..n).for_each(|_| {
                let _ = b.append(true);
            }),
        }
    }

    /// Closes the open list or map of the current row.
    fn close_nested(&mut self) {
        match self {
            Column::List(b) => b.append(true),
            Column::Map(b) => {
                let _ = b.append(true);
            }
            _ => {}
        }
    }

    /// Values (nulls included) the builder holds.
    fn len(&self) -> usize {
        use arrow::array::ArrayBuilder;
        match self {
            Column::Ts(b) => b.len(),
            Column::Str(b) => b.len(),
            Column::Bytes(b) => b.len(),
            Column::U8(b) => b.len(),
            Column::U16(b) => b.len(),
            Column::U32(b) => b.len(),
            Column::U64(b) => b.len(),
            Column::List(b) => b.len(),
            Column::Map(b) => b.len(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Column::Ts(b) => Arc::new(b.finish()),
            Column::Str(b) => Arc::new(b.finish()),
            Column::Bytes(b) => Arc::new(b.finish()),
            Column::U8(b) => Arc::new(b.finish()),
            Column::U16(b) => Arc::new(b.finish()),
            Column::U32(b) => Arc::new(b.finish()),
            Column::U64(b) => Arc::new(b.finish()),
            Column::List(b) => Arc::new(b.finish()),
            Column::Map(b) => Arc::new(b.finish()),
        }
    }
}

/// Builds `RecordBatch`es of one [`Table`] row by row.
pub struct TableBuilder {
    table: Table,
    columns: Vec<Column>,
    /// Values (nulls included) appended to each column. A column lags behind `rows` while
    /// rows leave it unset; it is padded with nulls in one step when next set, or at finish,
    /// so unset columns cost nothing per row. `rows + 1` means: set in the current row.
    filled: Vec<usize>,
    /// List and map columns that have an open entry in the current row.
    nested_open: Vec<usize>,
    /// Rows the builders are sized for: the largest batch so far. After each batch the builders
    /// are re-created with that many rows and the text bytes the last batch used, so a batch
    /// does not regrow (and re-copy) its buffers.
    capacity_rows: usize,
    rows: usize,
    /// Approximate payload bytes appended since the last finish, for batch byte caps.
    bytes: usize,
    received_min_ns: i64,
    received_max_ns: i64,
}

impl std::fmt::Debug for TableBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableBuilder")
            .field("table", &self.table)
            .field("rows", &self.rows)
            .field("bytes", &self.bytes)
            .finish()
    }
}

/// A column index: a table's `Col` enum or a plain index.
pub trait ColumnIndex: Copy {
    fn index(self) -> usize;
}

impl ColumnIndex for usize {
    fn index(self) -> usize {
        self
    }
}

macro_rules! column_index {
    ($($ty:path),*) => {$(
        impl ColumnIndex for $ty {
            fn index(self) -> usize {
                self as usize
            }
        }
    )*};
}
column_index!(
    crate::fields::events::Col,
    crate::fields::flows::Col,
    crate::fields::alerts::Col
);

impl TableBuilder {
    /// A builder with room for `rows` rows before it reallocates.
    pub fn new(table: Table, rows: usize) -> Self {
        let columns: Vec<Column> = table
            .fields()
            .iter()
            .map(|f| {
                let guess = Sizing {
                    bytes: rows * 8,
                    entries: rows,
                    key_bytes: rows * 8,
                };
                Column::new(f.ty, rows, guess)
            })
            .collect();
        let n = columns.len();
        TableBuilder {
            table,
            columns,
            filled: vec![0; n],
            nested_open: Vec::new(),
            capacity_rows: rows,
            rows: 0,
            bytes: 0,
            received_min_ns: i64::MAX,
            received_max_ns: i64::MIN,
        }
    }

    pub fn table(&self) -> Table {
        self.table
    }

    /// Finished rows since the last [`TableBuilder::finish`].
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Approximate bytes of the finished rows since the last [`TableBuilder::finish`].
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Notes the receive time of the current row (the batch carries the min and max).
    pub fn note_received(&mut self, ns: i64) {
        self.received_min_ns = self.received_min_ns.min(ns);
        self.received_max_ns = self.received_max_ns.max(ns);
    }

    /// The column, padded up to the current row, if the current row has not set it yet.
    #[inline]
    fn claim(&mut self, i: usize) -> Option<&mut Column> {
        let filled = self.filled.get_mut(i)?;
        if *filled > self.rows {
            return None;
        }
        let lag = self.rows - *filled;
        *filled = self.rows + 1;
        let c = self.columns.get_mut(i)?;
        if lag > 0 {
            c.append_nulls(lag);
        }
        Some(c)
    }

    /// Like [`Self::claim`] for list and map columns, which take several values per row.
    fn claim_nested(&mut self, i: usize) -> Option<&mut Column> {
        let filled = *self.filled.get(i)?;
        if filled <= self.rows {
            self.claim(i)?;
            self.nested_open.push(i);
        }
        self.columns.get_mut(i)
    }

    /// Sets a text column.
    #[inline]
    pub fn set_str(&mut self, col: impl ColumnIndex, v: &str) {
        let i = col.index();
        if let Some(Column::Str(b)) = self.claim(i) {
            b.append_value(v);
            self.bytes += v.len();
        }
    }

    /// Sets a text column from bytes, replacing invalid UTF-8.
    #[inline]
    pub fn set_str_lossy(&mut self, col: impl ColumnIndex, v: &[u8]) {
        match std::str::from_utf8(v) {
            Ok(s) => self.set_str(col, s),
            Err(_) => self.set_str(col, &String::from_utf8_lossy(v)),
        }
    }

    /// Sets a bytes column.
    pub fn set_bytes(&mut self, col: impl ColumnIndex, v: &[u8]) {
        let i = col.index();
        if let Some(Column::Bytes(b)) = self.claim(i) {
            b.append_value(v);
            self.bytes += v.len();
        }
    }

    /// Sets a timestamp column (UTC nanoseconds).
    #[inline]
    pub fn set_ts(&mut self, col: impl ColumnIndex, ns: i64) {
        let i = col.index();
        if let Some(Column::Ts(b)) = self.claim(i) {
            b.append_value(ns);
            self.bytes += 8;
        }
    }

    /// Sets an unsigned integer column of any width; a value too large for the column is
    /// stored as null rather than truncated.
    #[inline]
    pub fn set_uint(&mut self, col: impl ColumnIndex, v: u64) {
        let i = col.index();
        let Some(c) = self.claim(i) else { return };
        match c {
            Column::U8(b) => b.append_option(u8::try_from(v).ok()),
            Column::U16(b) => b.append_option(u16::try_from(v).ok()),
            Column::U32(b) => b.append_option(u32::try_from(v).ok()),
            Column::U64(b) => b.append_value(v),
            other => other.append_nulls(1),
        }
        self.bytes += 8;
    }

    /// Appends a value to a list column of the current row.
    pub fn push_list(&mut self, col: impl ColumnIndex, v: &str) {
        if let Some(Column::List(b)) = self.claim_nested(col.index()) {
            b.values().append_value(v);
            self.bytes += v.len();
        }
    }

    /// Inserts an entry into a map column of the current row (a `None` value is stored null).
    pub fn insert_map(&mut self, col: impl ColumnIndex, k: &str, v: Option<&str>) {
        if let Some(Column::Map(b)) = self.claim_nested(col.index()) {
            b.keys().append_value(k);
            b.values().append_option(v);
            self.bytes += k.len() + v.map_or(0, str::len);
        }
    }

    /// Starts `n` rows that are filled column by column rather than row by row: a decoder of
    /// fixed-layout records appends a whole column in one tight loop, without a per-value
    /// dispatch. Columns the [`Bulk`] does not fill are null in those rows. The current row
    /// must be empty (no value set since the last [`TableBuilder::end_row`]).
    pub fn bulk(&mut self, n: usize) -> Bulk<'_> {
        debug_assert!(self.nested_open.is_empty() && self.filled.iter().all(|&f| f <= self.rows));
        Bulk {
            b: self,
            n,
            claimed: Vec::new(),
        }
    }

    /// Finishes the current row: columns it did not set are null (padded lazily).
    #[inline]
    pub fn end_row(&mut self) {
        for i in self.nested_open.drain(..) {
            if let Some(c) = self.columns.get_mut(i) {
                c.close_nested();
            }
        }
        self.rows += 1;
    }

    /// Takes the finished rows as a `RecordBatch`, leaving the builder empty. Returns `None`
    /// when there are no rows. Fails if a required column was left null.
    pub fn finish(&mut self) -> Result<Option<crate::Batch>, ArrowError> {
        if self.rows == 0 {
            return Ok(None);
        }
        let rows = self.rows;
        for (c, filled) in self.columns.iter_mut().zip(self.filled.iter_mut()) {
            if *filled < rows {
                c.append_nulls(rows - *filled);
            }
            *filled = 0;
        }
        let arrays: Vec<ArrayRef> = self.columns.iter_mut().map(Column::finish).collect();
        // Start the next batch's builders at this batch's size (plus a quarter).
        self.capacity_rows = self.capacity_rows.max(rows);
        for ((c, f), a) in self
            .columns
            .iter_mut()
            .zip(self.table.fields())
            .zip(&arrays)
        {
            *c = Column::new(f.ty, self.capacity_rows, Sizing::of(a.as_ref()).padded());
        }
        let records = RecordBatch::try_new(self.table.schema(), arrays)?;
        let batch = crate::Batch {
            table: self.table,
            records,
            received_min_ns: self.received_min_ns,
            received_max_ns: self.received_max_ns,
        };
        self.rows = 0;
        self.bytes = 0;
        self.received_min_ns = i64::MAX;
        self.received_max_ns = i64::MIN;
        Ok(Some(batch))
    }
}

/// `n` rows being filled column by column (see [`TableBuilder::bulk`]). Each column accessor
/// pads the column up to the first of these rows and hands out its Arrow builder, to which
/// the caller appends one value (or null) per row; when the `Bulk` is dropped, a column left
/// short is padded with nulls and the rows count as finished.
pub struct Bulk<'a> {
    b: &'a mut TableBuilder,
    n: usize,
    claimed: Vec<usize>,
}

impl std::fmt::Debug for Bulk<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bulk").field("n", &self.n).finish()
    }
}

macro_rules! bulk_column {
    ($(#[$doc:meta])* $name:ident, $variant:ident, $ty:ty, $bytes:expr) => {
        $(#[$doc])*
        pub fn $name(&mut self, col: impl ColumnIndex) -> Option<&mut $ty> {
            let i = col.index();
            if !matches!(self.b.columns.get(i), Some(Column::$variant(_))) {
                return None;
            }
            match self.claim(i, $bytes) {
                Some(Column::$variant(b)) => Some(b),
                _ => None,
            }
        }
    };
}

impl Bulk<'_> {
    /// The rows being filled.
    pub fn rows(&self) -> usize {
        self.n
    }

    fn claim(&mut self, i: usize, bytes_per_value: usize) -> Option<&mut Column> {
        let rows = self.b.rows;
        let filled = self.b.filled.get_mut(i)?;
        if *filled > rows {
            return None;
        }
        let lag = rows - *filled;
        *filled = rows + self.n;
        let c = self.b.columns.get_mut(i)?;
        if lag > 0 {
            c.append_nulls(lag);
        }
        self.claimed.push(i);
        self.b.bytes += bytes_per_value * self.n;
        Some(c)
    }

    bulk_column!(
        /// A text column (the byte estimate counts 8 per value).
        strings, Str, StringBuilder, 8
    );
    bulk_column!(timestamps, Ts, TimestampNanosecondBuilder, 8);
    bulk_column!(u8s, U8, UInt8Builder, 1);
    bulk_column!(u16s, U16, UInt16Builder, 2);
    bulk_column!(u32s, U32, UInt32Builder, 4);
    bulk_column!(u64s, U64, UInt64Builder, 8);
    bulk_column!(
        /// A map column: per row, append its entries to `keys()` and `values()`, then
        /// `append(true)`.
        maps, Map, MapBuilder<StringBuilder, StringBuilder>, 16
    );

    /// An unsigned column of any width from `n` values; a value too large for the column is
    /// stored as null. (The values are read twice: once to see that they all fit, then
    /// written in one pass, so the iterator should be cheap to clone.)
    pub fn uints(&mut self, col: impl ColumnIndex, values: impl Iterator<Item = u64> + Clone) {
        let n = self.n;
        let values = values.take(n);
        match self.claim(col.index(), 8) {
            Some(Column::U8(b)) => narrow(b, n, values),
            Some(Column::U16(b)) => narrow(b, n, values),
            Some(Column::U32(b)) => narrow(b, n, values),
            Some(Column::U64(b)) => fill(b, n, values),
            _ => {}
        }
    }

    /// A timestamp column from `n` values.
    pub fn times(&mut self, col: impl ColumnIndex, values: impl Iterator<Item = i64>) {
        let n = self.n;
        if let Some(b) = self.timestamps(col) {
            fill(b, n, values.take(n));
        }
    }

    /// The same number in every row.
    pub fn same_uint(&mut self, col: impl ColumnIndex, v: u64) {
        self.uints(col, std::iter::repeat_n(v, self.n));
    }

    /// The same text in every row.
    pub fn same_str(&mut self, col: impl ColumnIndex, v: &str) {
        let n = self.n;
        if let Some(b) = self.strings(col) {
            (0..n).for_each(|_| b.append_value(v));
        }
    }
}

/// Appends `n` values in one step and writes them in place (a column left short by the
/// iterator keeps zeros, which the caller never does).
fn fill<T: arrow::datatypes::ArrowPrimitiveType>(
    b: &mut arrow::array::PrimitiveBuilder<T>,
    n: usize,
    values: impl Iterator<Item = T::Native>,
) {
    use arrow::array::ArrayBuilder;
    let start = b.len();
    b.append_value_n(T::Native::default(), n);
    if let Some(dst) = b.values_slice_mut().get_mut(start..) {
        dst.iter_mut().zip(values).for_each(|(d, v)| *d = v);
    }
}

/// [`fill`] for a narrower type, with a value that does not fit stored as null.
fn narrow<T>(
    b: &mut arrow::array::PrimitiveBuilder<T>,
    n: usize,
    values: impl Iterator<Item = u64> + Clone,
) where
    T: arrow::datatypes::ArrowPrimitiveType,
    T::Native: TryFrom<u64>,
{
    if values.clone().all(|v| T::Native::try_from(v).is_ok()) {
        fill(b, n, values.filter_map(|v| T::Native::try_from(v).ok()));
    } else {
        values.for_each(|v| b.append_option(T::Native::try_from(v).ok()));
    }
}

impl Drop for Bulk<'_> {
    fn drop(&mut self) {
        let end = self.b.rows + self.n;
        for &i in &self.claimed {
            if let Some(c) = self.b.columns.get_mut(i) {
                let len = c.len();
                debug_assert!(len <= end, "a bulk column got more values than rows");
                if len < end {
                    c.append_nulls(end - len);
                }
            }
        }
        self.b.rows = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::events::Col;
    use arrow::array::{Array, MapArray, StringArray};

    #[test]
    fn unset_columns_become_null_and_rows_stay_aligned() {
        let mut b = TableBuilder::new(Table::Events, 4);
        for i in 0..3u16 {
            b.set_ts(Col::Timestamp, 1);
            b.set_ts(Col::EventCreated, 2);
            b.set_str(Col::EventOriginal, "raw");
            b.set_str(Col::ParseStatus, "ok");
            if i == 1 {
                b.set_str(Col::SourceIp, "10.0.0.1");
                b.set_str(Col::SourceIp, "ignored second value");
                b.insert_map(Col::VendorFields, "k", Some("v"));
                b.push_list(Col::EventCategory, "network");
            }
            b.set_uint(Col::SourcePort, u64::from(i) + 65_535);
            b.end_row();
        }
        let batch = b.finish().expect("valid").expect("rows");
        assert_eq!(batch.rows(), 3);
        let ip = batch.records.column(Col::SourceIp as usize);
        let ip = ip.as_any().downcast_ref::<StringArray>().expect("utf8");
        assert!(ip.is_null(0) && ip.is_null(2));
        assert_eq!(ip.value(1), "10.0.0.1");
        let port = batch.records.column(Col::SourcePort as usize);
        assert_eq!(port.null_count(), 2, "65536 and 65537 do not fit a port");
        let map = batch.records.column(Col::VendorFields as usize);
        let map = map.as_any().downcast_ref::<MapArray>().expect("map");
        assert_eq!(map.value_length(0), 0);
        assert_eq!(map.value_length(1), 1);
        assert!(b.finish().expect("empty ok").is_none());
    }

    #[test]
    fn bulk_rows_line_up_with_row_by_row_ones() {
        let mut b = TableBuilder::new(Table::Events, 4);
        let row = |b: &mut TableBuilder, ip: &str| {
            b.set_ts(Col::Timestamp, 1);
            b.set_ts(Col::EventCreated, 2);
            b.set_str(Col::EventOriginal, "raw");
            b.set_str(Col::ParseStatus, "ok");
            b.set_str(Col::SourceIp, ip);
            b.end_row();
        };
        row(&mut b, "10.0.0.1");
        {
            let mut k = b.bulk(3);
            if let Some(ts) = k.timestamps(Col::Timestamp) {
                (0..3).for_each(|i| ts.append_value(i));
            }
            if let Some(ts) = k.timestamps(Col::EventCreated) {
                (0..3).for_each(|i| ts.append_value(i));
            }
            k.same_str(Col::EventOriginal, "bulk");
            k.same_str(Col::ParseStatus, "ok");
            // 70,000 does not fit a port: null. A column left short is padded.
            k.uints(Col::SourcePort, [1, 70_000].into_iter());
            k.uints(Col::DestinationPort, [1, 2, 3].into_iter());
            // Not a timestamp column: nothing appended, nothing claimed.
            assert!(k.timestamps(Col::SourceIp).is_none());
        }
        row(&mut b, "10.0.0.5");
        let batch = b.finish().expect("valid").expect("rows");
        assert_eq!(batch.rows(), 5);
        let ip = batch.records.column(Col::SourceIp as usize);
        let ip = ip.as_any().downcast_ref::<StringArray>().expect("utf8");
        assert_eq!(
            (ip.value(0), ip.null_count(), ip.value(4)),
            ("10.0.0.1", 3, "10.0.0.5")
        );
        let port = batch.records.column(Col::SourcePort as usize);
        assert_eq!(port.null_count(), 4);
        let port = batch.records.column(Col::DestinationPort as usize);
        assert_eq!(port.null_count(), 2);
        let original = batch.records.column(Col::EventOriginal as usize);
        let original = original
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("utf8");
        assert_eq!(original.value(3), "bulk");
    }

    #[test]
    fn missing_required_column_is_an_error() {
        let mut b = TableBuilder::new(Table::Events, 1);
        b.end_row();
        assert!(b.finish().is_err());
    }
}
