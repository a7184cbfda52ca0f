//! Events as the matchers read them: [`Events`] is a batch read a field at a time (what the
//! compiled matcher scans), [`Row`] one event read a field at a time (what
//! rule conditions are evaluated on). [`JsonEvents`] is a batch of JSON objects (`canh hunt`,
//! rule tests, differential tests).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::plain::{self, any_scalar, collect_strings, lookup, text_of, Row};

/// A batch of events, read one field over all rows at a time.
pub trait Events {
    fn rows(&self) -> usize;
    /// Calls `f(row, text)` for every text value of a field (`None`: the texts keywords are
    /// searched in), rows in ascending order. A list gives one call per element; numbers and
    /// booleans are given as their text.
    fn each_text(&self, field: Option<&str>, f: &mut dyn FnMut(usize, &str));
    /// Calls `f(row, x)` for every value of a field that is a number or a text holding one,
    /// rows in ascending order.
    fn each_number(&self, field: &str, f: &mut dyn FnMut(usize, f64));
    /// The value of a field in one row (`None` when absent).
    fn field(&self, row: usize, name: &str) -> Option<Cow<'_, Value>>;
    /// Whether a row has a field with a value that is not null (without building the value).
    fn has(&self, row: usize, name: &str) -> bool {
        self.field(row, name).is_some_and(|v| !v.is_null())
    }
    /// Whether `f` is true for any text of the row that keywords are searched in.
    fn any_keyword_text(&self, row: usize, f: &mut dyn FnMut(&str) -> bool) -> bool;
}

/// One row of a batch, as a [`Row`].
#[derive(Clone, Copy)]
pub struct RowOf<'a> {
    pub events: &'a dyn Events,
    pub row: usize,
}

impl Row for RowOf<'_> {
    fn field(&self, name: &str) -> Option<Cow<'_, Value>> {
        self.events.field(self.row, name)
    }

    fn has(&self, name: &str) -> bool {
        self.events.has(self.row, name)
    }

    fn any_keyword_text(&self, f: &mut dyn FnMut(&str) -> bool) -> bool {
        self.events.any_keyword_text(self.row, f)
    }
}

/// JSON objects: fields by flat dotted key or nested path; keywords in every string.
///
/// The fields a matcher scans are gathered column by column in one walk over each event, so
/// that reading a field over the batch costs one step per event that has it.
#[derive(Debug)]
pub struct JsonEvents<'a> {
    events: &'a [Value],
    /// Field → (row, value, depth) for the rows that have it.
    columns: HashMap<&'a str, Vec<(u32, &'a Value, u8)>>,
}

impl<'a> JsonEvents<'a> {
    /// Events, with the fields that will be scanned (see [`crate::compiled::Compiled::fields`]).
    pub fn new(events: &'a [Value], fields: &[&'a str]) -> JsonEvents<'a> {
        let mut columns: HashMap<&'a str, Vec<(u32, &'a Value, u8)>> =
            fields.iter().map(|f| (*f, Vec::new())).collect();
        // Paths worth descending into: every proper prefix of a wanted dotted name.
        let prefixes: HashSet<&str> = fields
            .iter()
            .flat_map(|f| f.match_indices('.').map(move |(i, _)| &f[..i]))
            .collect();
        let mut path = String::new();
        for (row, event) in events.iter().enumerate() {
            if let Value::Object(m) = event {
                for (k, v) in m {
                    path.clear();
                    path.push_str(k);
                    walk(
                        &mut columns,
                        &prefixes,
                        &mut path,
                        row as u32,
                        v,
                        1,
                        k.contains('.'),
                    );
                }
                // Vendor fields come last: a lookup reads them only when nothing else has it.
                if let Some(Value::Object(vendor)) = m.get("vendor_fields") {
                    for (k, v) in vendor {
                        if let Some(col) = columns.get_mut(k.as_str()) {
                            if col.last().is_none_or(|last| last.0 != row as u32) {
                                col.push((row as u32, v, u8::MAX));
                            }
                        }
                    }
                }
            }
        }
        JsonEvents { events, columns }
    }
}

/// Records `v` under `path` if wanted, then its members under `path.key`, as a lookup finds
/// them: a flat key first (the shallower entry of a row wins), then a path of keys without
/// dots (a key with dots is not descended from).
fn walk<'a>(
    columns: &mut HashMap<&'a str, Vec<(u32, &'a Value, u8)>>,
    prefixes: &HashSet<&str>,
    path: &mut String,
    row: u32,
    v: &'a Value,
    depth: u8,
    dotted: bool,
) {
    if let Some(col) = columns.get_mut(path.as_str()) {
        match col.last_mut() {
            Some(last) if last.0 == row => {
                if depth < last.2 {
                    *last = (row, v, depth);
                }
            }
            _ => col.push((row, v, depth)),
        }
    }
    if let Value::Object(m) = v {
        if dotted || !prefixes.contains(path.as_str()) {
            return;
        }
        let len = path.len();
        for (k, v) in m {
            if k.contains('.') {
                continue;
            }
            path.push('.');
            path.push_str(k);
            walk(
                columns,
                prefixes,
                path,
                row,
                v,
                depth.saturating_add(1),
                false,
            );
            path.truncate(len);
        }
    }
}

impl Events for JsonEvents<'_> {
    fn rows(&self) -> usize {
        self.events.len()
    }

    fn each_text(&self, field: Option<&str>, f: &mut dyn FnMut(usize, &str)) {
        let Some(field) = field else {
            for (row, event) in self.events.iter().enumerate() {
                let mut strings = Vec::new();
                collect_strings(event, &mut strings);
                strings.into_iter().for_each(|s| f(row, s));
            }
            return;
        };
        let column = self.columns.get(field);
        let each = |row: usize, v: &Value, f: &mut dyn FnMut(usize, &str)| {
            any_scalar(v, &mut |v| {
                match v {
                    Value::String(s) => f(row, s),
                    v => {
                        if let Some(t) = text_of(v) {
                            f(row, &t);
                        }
                    }
                }
                false
            });
        };
        match column {
            Some(col) => col.iter().for_each(|(row, v, _)| each(*row as usize, v, f)),
            // Not gathered: look it up in each event.
            None => {
                for (row, event) in self.events.iter().enumerate() {
                    if let Some(v) = lookup(event, field) {
                        each(row, v, f);
                    }
                }
            }
        }
    }

    fn each_number(&self, field: &str, f: &mut dyn FnMut(usize, f64)) {
        let each = |row: usize, v: &Value, f: &mut dyn FnMut(usize, f64)| {
            any_scalar(v, &mut |v| {
                if let Some(x) = plain::number_of(v) {
                    f(row, x);
                }
                false
            });
        };
        match self.columns.get(field) {
            Some(col) => col.iter().for_each(|(row, v, _)| each(*row as usize, v, f)),
            None => {
                for (row, event) in self.events.iter().enumerate() {
                    if let Some(v) = lookup(event, field) {
                        each(row, v, f);
                    }
                }
            }
        }
    }

    fn field(&self, row: usize, name: &str) -> Option<Cow<'_, Value>> {
        self.events[row].field(name)
    }

    fn any_keyword_text(&self, row: usize, f: &mut dyn FnMut(&str) -> bool) -> bool {
        self.events[row].any_keyword_text(f)
    }
}
