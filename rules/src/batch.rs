//! A batch of the normalised model ([`canh_schema::Batch`]) as [`Events`]: fields by ECS name
//! (`source.ip`) or column name (`source_ip`), any other name looked up among the row's
//! vendor fields; keywords searched in the configured text columns.

use foldhash::{HashMap, HashMapExt};
use std::borrow::Cow;
use std::cell::{Cell, OnceCell};
use std::fmt::Write as _;
use std::sync::OnceLock;

use arrow::array::{Array, ArrayRef, AsArray, MapArray, StringArray, TimestampNanosecondArray};
use arrow::datatypes::{DataType, UInt16Type, UInt32Type, UInt64Type, UInt8Type};
use arrow::record_batch::RecordBatch;
use canh_schema::fields::column_name;
use serde_json::Value;

use crate::events::Events;

/// Rows of a record batch of one of Canh's tables.
#[derive(Debug, Clone)]
pub struct BatchEvents<'a> {
    records: &'a RecordBatch,
    vendor: Option<&'a MapArray>,
    /// The columns keywords are searched in.
    keywords: &'a [&'a str],
    /// Column index by column name and, for Canh's columns, by ECS name.
    columns: HashMap<&'a str, usize>,
    /// Vendor fields read over the whole batch so far; past a few, the map is indexed.
    vendor_scans: Cell<u32>,
    /// Vendor field name → (row, entry) of every entry, in row order.
    vendor_index: OnceCell<HashMap<&'a str, Vec<(u32, u32)>>>,
}

/// Vendor fields read over the batch by walking every row's entries, before the entries are
/// indexed by name once (one hash per entry) and read from the index.
const VENDOR_SCANS_BEFORE_INDEX: u32 = 4;

/// Canh's column names → ECS names, over every table.
fn ecs_names() -> &'static HashMap<String, &'static str> {
    static NAMES: OnceLock<HashMap<String, &'static str>> = OnceLock::new();
    NAMES.get_or_init(|| {
        canh_schema::Table::ALL
            .iter()
            .flat_map(|t| t.fields())
            .map(|f| (f.column(), f.ecs))
            .collect()
    })
}

/// Where a field's values are.
enum Source<'a> {
    Column(&'a ArrayRef),
    Vendor(&'a MapArray, &'a str),
    Absent,
}

impl<'a> BatchEvents<'a> {
    pub fn new(records: &'a RecordBatch, keywords: &'a [&'a str]) -> BatchEvents<'a> {
        let vendor = records
            .column_by_name("vendor_fields")
            .and_then(|c| c.as_map_opt());
        let mut columns = HashMap::new();
        for (i, f) in records.schema_ref().fields().iter().enumerate() {
            let name = f.name().as_str();
            columns.insert(name, i);
            if let Some(ecs) = ecs_names().get(name) {
                columns.insert(*ecs, i);
            }
        }
        BatchEvents {
            records,
            vendor,
            keywords,
            columns,
            vendor_scans: Cell::new(0),
            vendor_index: OnceCell::new(),
        }
    }

    /// Calls `f` with every non-null value of a vendor field, rows in ascending order.
    fn each_vendor(&self, key: &str, f: &mut dyn FnMut(usize, &str)) {
        let Some(m) = self.vendor else { return };
        let keys = m.keys().as_string::<i32>();
        let values = m.values().as_string::<i32>();
        let scans = self.vendor_scans.get() + 1;
        self.vendor_scans.set(scans);
        if scans <= VENDOR_SCANS_BEFORE_INDEX {
            for row in 0..m.len() {
                if let Some(v) = vendor_value(m, row, key) {
                    f(row, v);
                }
            }
            return;
        }
        let index = self.vendor_index.get_or_init(|| {
            let mut index: HashMap<&'a str, Vec<(u32, u32)>> = HashMap::new();
            let offsets = m.value_offsets();
            for row in 0..m.len() {
                if m.is_null(row) {
                    continue;
                }
                for i in offsets[row] as usize..offsets[row + 1] as usize {
                    index
                        .entry(keys.value(i))
                        .or_default()
                        .push((row as u32, i as u32));
                }
            }
            index
        });
        // A key given twice in a row: the first, as `vendor_value` reads it.
        let mut last = None;
        for &(row, i) in index.get(key).map_or(&[][..], |v| v.as_slice()) {
            if last == Some(row) {
                continue;
            }
            last = Some(row);
            if values.is_valid(i as usize) {
                f(row as usize, values.value(i as usize));
            }
        }
    }

    /// The column of a field, by ECS or column name.
    fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.get(name).copied().or_else(|| {
            // Another spelling (`@timestamp` of a batch built elsewhere): the column name.
            (name.contains('.') || name.starts_with('@'))
                .then(|| self.columns.get(column_name(name).as_str()).copied())
                .flatten()
        })
    }

    fn source<'s>(&'s self, name: &'s str) -> Source<'s> {
        if let Some(i) = self.column_index(name) {
            return Source::Column(self.records.column(i));
        }
        match self.vendor {
            Some(m) => Source::Vendor(m, name),
            None => Source::Absent,
        }
    }
}

/// The value of a vendor field in a row.
fn vendor_value<'m>(m: &'m MapArray, row: usize, key: &str) -> Option<&'m str> {
    if m.is_null(row) {
        return None;
    }
    let keys = m.keys().as_string::<i32>();
    let values = m.values().as_string::<i32>();
    let offsets = m.value_offsets();
    let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
    (start..end)
        .find(|&i| keys.value(i) == key)
        .filter(|&i| values.is_valid(i))
        .map(|i| values.value(i))
}

/// Calls `f` with each non-null value of a text column, rows in ascending order.
pub(crate) fn each_str(a: &StringArray, mut f: impl FnMut(usize, &str)) {
    match a.nulls().filter(|n| n.null_count() > 0) {
        // Set bits only: long runs of nulls (a field other kinds of events lack) are skipped a
        // word at a time.
        Some(nulls) => nulls.valid_indices().for_each(|row| f(row, a.value(row))),
        None => (0..a.len()).for_each(|row| f(row, a.value(row))),
    }
}

/// Calls `f` with each non-null value of an unsigned integer column, as u64.
fn each_uint(c: &ArrayRef, f: &mut dyn FnMut(usize, u64)) -> bool {
    macro_rules! each {
        ($t:ty) => {{
            let a = c.as_primitive::<$t>();
            for row in 0..a.len() {
                if a.is_valid(row) {
                    f(row, u64::from(a.value(row)));
                }
            }
            true
        }};
    }
    match c.data_type() {
        DataType::UInt8 => each!(UInt8Type),
        DataType::UInt16 => each!(UInt16Type),
        DataType::UInt32 => each!(UInt32Type),
        DataType::UInt64 => each!(UInt64Type),
        _ => false,
    }
}

fn timestamp_text(ns: i64) -> Option<String> {
    jiff::Timestamp::from_nanosecond(i128::from(ns))
        .ok()
        .map(|t| t.to_string())
}

impl Events for BatchEvents<'_> {
    fn rows(&self) -> usize {
        self.records.num_rows()
    }

    fn each_text(&self, field: Option<&str>, f: &mut dyn FnMut(usize, &str)) {
        let Some(field) = field else {
            // Keywords: every row's texts in row order, so the columns are merged row by row.
            let cols: Vec<&StringArray> = self
                .keywords
                .iter()
                .filter_map(|k| match self.source(k) {
                    Source::Column(c) => c.as_string_opt::<i32>(),
                    _ => None,
                })
                .collect();
            if let [one] = cols.as_slice() {
                return each_str(one, f);
            }
            for row in 0..self.rows() {
                for c in &cols {
                    if c.is_valid(row) {
                        f(row, c.value(row));
                    }
                }
            }
            return;
        };
        match self.source(field) {
            Source::Absent => {}
            Source::Vendor(_, key) => self.each_vendor(key, f),
            Source::Column(c) => {
                let mut text = String::new();
                if let Some(a) = c.as_string_opt::<i32>() {
                    each_str(a, f);
                } else if each_uint(c, &mut |row, x| {
                    text.clear();
                    let _ = write!(text, "{x}");
                    f(row, &text);
                }) {
                } else if let Some(a) = c.as_any().downcast_ref::<TimestampNanosecondArray>() {
                    for row in 0..a.len() {
                        if let Some(t) = a.is_valid(row).then(|| timestamp_text(a.value(row))) {
                            f(row, t.as_deref().unwrap_or_default());
                        }
                    }
                } else if let Some(l) = c.as_list_opt::<i32>() {
                    let values = l.values().as_string::<i32>();
                    let offsets = l.value_offsets();
                    for row in 0..l.len() {
                        if l.is_valid(row) {
                            for i in offsets[row] as usize..offsets[row + 1] as usize {
                                if values.is_valid(i) {
                                    f(row, values.value(i));
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    fn text_column(&self, field: &str) -> Option<&StringArray> {
        let i = self.column_index(field)?;
        self.records.column(i).as_string_opt::<i32>()
    }

    fn each_number(&self, field: &str, f: &mut dyn FnMut(usize, f64)) {
        match self.source(field) {
            Source::Column(c) if each_uint(c, &mut |row, x| f(row, x as f64)) => {}
            Source::Column(c) if matches!(c.data_type(), DataType::Timestamp(..)) => {}
            _ => self.each_text(Some(field), &mut |row, t| {
                if let Ok(x) = t.trim().parse::<f64>() {
                    f(row, x);
                }
            }),
        }
    }

    fn field(&self, row: usize, name: &str) -> Option<Cow<'_, Value>> {
        let value = match self.source(name) {
            Source::Absent => return None,
            Source::Vendor(m, key) => Value::String(vendor_value(m, row, key)?.to_owned()),
            Source::Column(c) => {
                if c.is_null(row) {
                    return None;
                }
                if let Some(a) = c.as_string_opt::<i32>() {
                    Value::String(a.value(row).to_owned())
                } else if let Some(a) = c.as_any().downcast_ref::<TimestampNanosecondArray>() {
                    Value::String(timestamp_text(a.value(row))?)
                } else if let Some(l) = c.as_list_opt::<i32>() {
                    let values = l.value(row);
                    let values = values.as_string::<i32>();
                    Value::Array(
                        values
                            .iter()
                            .flatten()
                            .map(|s| Value::String(s.to_owned()))
                            .collect(),
                    )
                } else {
                    let mut n = None;
                    each_uint(&c.slice(row, 1), &mut |_, x| n = Some(x));
                    Value::from(n?)
                }
            }
        };
        Some(Cow::Owned(value))
    }

    fn has(&self, row: usize, name: &str) -> bool {
        match self.source(name) {
            Source::Absent => false,
            Source::Vendor(m, key) => vendor_value(m, row, key).is_some(),
            Source::Column(c) => c.is_valid(row),
        }
    }

    fn any_keyword_text(&self, row: usize, f: &mut dyn FnMut(&str) -> bool) -> bool {
        self.keywords.iter().any(|k| match self.source(k) {
            Source::Column(c) => c
                .as_string_opt::<i32>()
                .is_some_and(|c| c.is_valid(row) && f(c.value(row))),
            _ => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compiled::Compiled;
    use canh_schema::fields::events::Col;
    use canh_schema::{Table, TableBuilder};

    #[test]
    fn vendor_fields_read_the_same_before_and_after_the_map_is_indexed() {
        let mut b = TableBuilder::new(Table::Events, 8);
        let rows: [&[(&str, Option<&str>)]; 4] = [
            &[("a", Some("1")), ("b", Some("2")), ("a", Some("dup"))],
            &[],
            &[("c", None), ("b", Some("3")), ("d", Some("4"))],
            &[("e", Some("5")), ("f", Some("6")), ("a", None)],
        ];
        for entries in rows {
            for (k, v) in entries {
                b.insert_map(Col::VendorFields, k, *v);
            }
            b.set_str(Col::EventOriginal, "line");
            b.set_ts(Col::Timestamp, 1_700_000_000_000_000_000);
            b.set_ts(Col::EventCreated, 1_700_000_000_000_000_000);
            b.set_str(Col::ParseStatus, "ok");
            b.end_row();
        }
        let batch = b.finish().expect("batch").expect("rows");
        let events = BatchEvents::new(&batch.records, &[]);
        let read = |key: &str| {
            let mut got = Vec::new();
            events.each_text(Some(key), &mut |row, v| got.push((row, v.to_owned())));
            got
        };
        let want = |key: &str| {
            (0..events.rows())
                .filter_map(|row| {
                    let v = events.field(row, key)?;
                    Some((row, v.as_str()?.to_owned()))
                })
                .collect::<Vec<_>>()
        };
        // Twice over every key: the first reads walk the rows, the later ones the index.
        for key in ["a", "b", "c", "d", "e", "f", "zz"].repeat(2) {
            assert_eq!(read(key), want(key), "{key}");
        }
        assert_eq!(read("a"), [(0, "1".to_owned())]);
        assert!(events.vendor_index.get().is_some());
    }

    #[test]
    fn rules_read_columns_lists_numbers_and_vendor_fields() {
        let mut b = TableBuilder::new(Table::Events, 8);
        for (user, port, cat, vendor) in [
            ("root", 22, "authentication", "srcintf=port1"),
            ("alice", 443, "network", "srcintf=wan1"),
        ] {
            b.set_str(Col::UserName, user);
            b.set_uint(Col::DestinationPort, port);
            b.push_list(Col::EventCategory, cat);
            let (k, v) = vendor.split_once('=').unwrap_or_default();
            b.insert_map(Col::VendorFields, k, Some(v));
            b.set_str(Col::EventOriginal, &format!("<13>host sshd: user {user}"));
            b.set_ts(Col::Timestamp, 1_700_000_000_000_000_000);
            b.set_ts(Col::EventCreated, 1_700_000_000_000_000_000);
            b.set_str(Col::ParseStatus, "ok");
            b.end_row();
        }
        let batch = b.finish().expect("batch").expect("rows");
        let records = &batch.records;
        let rule = |detection: &str| {
            let yaml = format!("title: t\nlogsource: {{product: x}}\ndetection:\n{detection}");
            let c = rsigma_parser::parse_sigma_yaml(&yaml).expect("yaml");
            let plain = crate::plain::compile(&c.rules[0]).expect("compiles");
            let compiled = Compiled::new(vec![plain]);
            let mut out = Vec::new();
            let keywords = ["event.original"];
            compiled.matches(
                &BatchEvents::new(records, &keywords),
                &mut compiled.scratch(),
                &mut out,
            );
            out.iter().map(|h| h.row).collect::<Vec<_>>()
        };
        assert_eq!(rule("  sel:\n    user.name: ROOT\n  condition: sel\n"), [0]);
        assert_eq!(
            rule("  sel:\n    destination.port: 443\n  condition: sel\n"),
            [1]
        );
        assert_eq!(
            rule("  sel:\n    destination_port|lt: 100\n  condition: sel\n"),
            [0]
        );
        assert_eq!(
            rule("  sel:\n    destination.port|startswith: '4'\n  condition: sel\n"),
            [1]
        );
        assert_eq!(
            rule("  sel:\n    event.category: network\n  condition: sel\n"),
            [1]
        );
        assert_eq!(rule("  sel:\n    srcintf: 'wan*'\n  condition: sel\n"), [1]);
        assert_eq!(
            rule("  keywords:\n    - 'user alice'\n  condition: keywords\n"),
            [1]
        );
        assert_eq!(
            rule(
                "  sel:\n    '@timestamp|year': 2023\n    srcintf|exists: true\n  condition: sel\n"
            ),
            [0, 1]
        );
        assert_eq!(
            rule("  sel:\n    user.name|fieldref: srcintf\n  condition: not sel\n"),
            [0, 1]
        );
    }
}
