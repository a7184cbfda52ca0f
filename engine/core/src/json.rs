//! Rows as JSON objects with flat dotted ECS keys (`{"source.ip": "10.1.2.3"}`): the form
//! `canh parse` prints and later commands (hunt, query) emit as JSON lines.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, TimeUnit, UInt16Type, UInt32Type, UInt64Type, UInt8Type};
use canh_rules::correlation::EventJson;
use canh_schema::Table;
use serde_json::{Map, Value};

/// Formats UTC nanoseconds as RFC 3339 (`2026-11-23T10:00:00.123Z`).
pub fn rfc3339(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000);
    let (y, m, d) = canh_parsers::time::civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    let mut out = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    );
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn value(col: &dyn Array, row: usize) -> Option<Value> {
    if col.is_null(row) {
        return None;
    }
    Some(match col.data_type() {
        DataType::Utf8 => Value::from(col.as_string::<i32>().value(row)),
        DataType::Binary => Value::from(hex(col.as_binary::<i32>().value(row))),
        DataType::UInt8 => Value::from(col.as_primitive::<UInt8Type>().value(row)),
        DataType::UInt16 => Value::from(col.as_primitive::<UInt16Type>().value(row)),
        DataType::UInt32 => Value::from(col.as_primitive::<UInt32Type>().value(row)),
        DataType::UInt64 => Value::from(col.as_primitive::<UInt64Type>().value(row)),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => Value::from(rfc3339(
            col.as_primitive::<arrow::datatypes::TimestampNanosecondType>()
                .value(row),
        )),
        DataType::List(_) => {
            let items = col.as_list::<i32>().value(row);
            Value::Array(
                (0..items.len())
                    .filter_map(|i| value(items.as_ref(), i))
                    .collect(),
            )
        }
        DataType::Map(_, _) => {
            let entries = col.as_map().value(row);
            let keys = entries.column(0).as_string::<i32>();
            let vals = entries.column(1);
            let obj: Map<String, Value> = (0..entries.len())
                .map(|i| {
                    (
                        keys.value(i).to_owned(),
                        value(vals.as_ref(), i).unwrap_or(Value::Null),
                    )
                })
                .collect();
            if obj.is_empty() {
                return None;
            }
            Value::Object(obj)
        }
        _ => return None,
    })
}

/// One row of a batch of `table` as a JSON object keyed by ECS names; nulls and empty maps are
/// left out.
pub fn row_to_json(table: Table, batch: &RecordBatch, row: usize) -> Map<String, Value> {
    let mut obj = Map::new();
    for (field, col) in table.fields().iter().zip(batch.columns()) {
        if let Some(v) = value(col.as_ref(), row) {
            obj.insert(field.ecs.to_owned(), v);
        }
    }
    obj
}

/// One row of a batch as the JSON of [`row_to_json`], made only when asked for: its text is
/// written straight from the columns, without the tree (a correlation window keeps the text of
/// most events it is fed, so this is on the path of every such match).
#[derive(Debug, Clone, Copy)]
pub struct RowJson<'a> {
    pub table: Table,
    pub batch: &'a RecordBatch,
    pub row: usize,
}

impl EventJson for RowJson<'_> {
    fn text(&self) -> String {
        let mut out = Vec::with_capacity(512);
        out.push(b'{');
        for (field, col) in self.table.fields().iter().zip(self.batch.columns()) {
            let start = out.len();
            if start > 1 {
                out.push(b',');
            }
            write_str(&mut out, field.ecs);
            out.push(b':');
            if !write_value(&mut out, col.as_ref(), self.row) {
                out.truncate(start);
            }
        }
        out.push(b'}');
        // Only valid UTF-8 was written (text columns, escapes, digits).
        String::from_utf8(out).unwrap_or_default()
    }

    fn value(&self) -> Value {
        Value::Object(row_to_json(self.table, self.batch, self.row))
    }
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Writes what [`value`] makes of the value, as JSON text; false where it makes nothing (the
/// caller then drops what this wrote).
fn write_value(out: &mut Vec<u8>, col: &dyn Array, row: usize) -> bool {
    use std::io::Write as _;
    if col.is_null(row) {
        return false;
    }
    match col.data_type() {
        DataType::Utf8 => write_str(out, col.as_string::<i32>().value(row)),
        DataType::Binary => write_str(out, &hex(col.as_binary::<i32>().value(row))),
        DataType::UInt8 => _ = write!(out, "{}", col.as_primitive::<UInt8Type>().value(row)),
        DataType::UInt16 => _ = write!(out, "{}", col.as_primitive::<UInt16Type>().value(row)),
        DataType::UInt32 => _ = write!(out, "{}", col.as_primitive::<UInt32Type>().value(row)),
        DataType::UInt64 => _ = write!(out, "{}", col.as_primitive::<UInt64Type>().value(row)),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => write_str(
            out,
            &rfc3339(
                col.as_primitive::<arrow::datatypes::TimestampNanosecondType>()
                    .value(row),
            ),
        ),
        DataType::List(_) => {
            let items = col.as_list::<i32>().value(row);
            out.push(b'[');
            let open = out.len();
            for i in 0..items.len() {
                let start = out.len();
                if start > open {
                    out.push(b',');
                }
                if !write_value(out, items.as_ref(), i) {
                    out.truncate(start);
                }
            }
            out.push(b']');
        }
        DataType::Map(_, _) => {
            let entries = col.as_map().value(row);
            let keys = entries.column(0).as_string::<i32>();
            if keys.is_empty() {
                return false;
            }
            let mut sorted: Vec<&str> = keys.iter().flatten().collect();
            sorted.sort_unstable();
            if sorted.windows(2).any(|w| w[0] == w[1]) {
                // A key given twice: the tree keeps one entry, where it first came, with the
                // last value.
                let _ = serde_json::to_writer(&mut *out, &value(col, row));
                return true;
            }
            let vals = entries.column(1);
            out.push(b'{');
            for i in 0..entries.len() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, keys.value(i));
                out.push(b':');
                if !write_value(out, vals.as_ref(), i) {
                    out.extend_from_slice(b"null");
                }
            }
            out.push(b'}');
        }
        _ => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use canh_schema::fields::FieldType;
    use canh_schema::TableBuilder;

    /// The text written straight from the columns is the tree's text, for every column type,
    /// escapes, lists, maps (a key given twice, a null value) and empty rows.
    #[test]
    fn row_text_is_the_text_of_the_row_tree() {
        for table in Table::ALL {
            let mut b = TableBuilder::new(table, 4);
            for row in 0..3u64 {
                for (i, f) in table.fields().iter().enumerate() {
                    if row == 2 && i % 3 != 0 && f.nullable {
                        continue;
                    }
                    match f.ty {
                        FieldType::Str => b.set_str(i, &format!("a\"b\\c\n\u{1} é {row}")),
                        FieldType::Bytes => b.set_bytes(i, &[0, 0xff, row as u8]),
                        FieldType::Timestamp => b.set_ts(i, 1_795_428_000_120_000_000 + row as i64),
                        FieldType::U8 | FieldType::U16 | FieldType::U32 | FieldType::U64 => {
                            b.set_uint(i, 200 + row)
                        }
                        FieldType::StrList => {
                            if row != 1 {
                                b.push_list(i, "x");
                                b.push_list(i, "y\"");
                            }
                        }
                        FieldType::StrMap => {
                            b.insert_map(i, "k", Some("v"));
                            b.insert_map(i, "n", None);
                            if row == 1 {
                                b.insert_map(i, "k", Some("again"));
                            }
                        }
                    }
                }
                b.end_row();
            }
            let batch = b.finish().expect("batch").expect("rows");
            for row in 0..3 {
                let r = RowJson {
                    table,
                    batch: &batch.records,
                    row,
                };
                assert_eq!(r.text(), r.value().to_string(), "{table:?} row {row}");
            }
        }
    }

    #[test]
    fn timestamps_trim_trailing_zeros() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(1_795_428_000_120_000_000),
            "2026-11-23T10:00:00.12Z"
        );
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999999999Z");
    }
}
