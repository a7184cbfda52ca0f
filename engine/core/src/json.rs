//! Rows as JSON objects with flat dotted ECS keys (`{"source.ip": "10.1.2.3"}`): the form
//! `canh parse` prints and later commands (hunt, query) emit as JSON lines.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, TimeUnit, UInt16Type, UInt32Type, UInt64Type, UInt8Type};
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

#[cfg(test)]
mod tests {
    use super::*;

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
