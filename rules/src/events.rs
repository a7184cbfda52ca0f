//! Events as the matchers read them: [`Events`] is a batch read a field at a time (what the
//! compiled matcher scans), [`Row`](crate::plain::Row) one event read a field at a time (what
//! rule conditions are evaluated on). [`JsonEvents`] is a batch of JSON objects (`canh hunt`,
//! rule tests, differential tests).

use std::borrow::Cow;

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

    fn any_keyword_text(&self, f: &mut dyn FnMut(&str) -> bool) -> bool {
        self.events.any_keyword_text(self.row, f)
    }
}

/// JSON objects: fields by flat dotted key or nested path; keywords in every string.
#[derive(Debug, Clone, Copy)]
pub struct JsonEvents<'a>(pub &'a [Value]);

impl Events for JsonEvents<'_> {
    fn rows(&self) -> usize {
        self.0.len()
    }

    fn each_text(&self, field: Option<&str>, f: &mut dyn FnMut(usize, &str)) {
        for (row, event) in self.0.iter().enumerate() {
            match field {
                None => {
                    let mut strings = Vec::new();
                    collect_strings(event, &mut strings);
                    strings.into_iter().for_each(|s| f(row, s));
                }
                Some(field) => {
                    if let Some(v) = lookup(event, field) {
                        any_scalar(v, &mut |v| {
                            if let Some(t) = text_of(v) {
                                f(row, &t);
                            }
                            false
                        });
                    }
                }
            }
        }
    }

    fn each_number(&self, field: &str, f: &mut dyn FnMut(usize, f64)) {
        for (row, event) in self.0.iter().enumerate() {
            if let Some(v) = lookup(event, field) {
                any_scalar(v, &mut |v| {
                    if let Some(x) = plain::number_of(v) {
                        f(row, x);
                    }
                    false
                });
            }
        }
    }

    fn field(&self, row: usize, name: &str) -> Option<Cow<'_, Value>> {
        self.0[row].field(name)
    }

    fn any_keyword_text(&self, row: usize, f: &mut dyn FnMut(&str) -> bool) -> bool {
        self.0[row].any_keyword_text(f)
    }
}
