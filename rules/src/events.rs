//! Events as the matchers read them: [`Events`] is a batch read a field at a time (what the
//! compiled matcher scans), [`Row`] one event read a field at a time (what
//! rule conditions are evaluated on). Batches come from Arrow ([`crate::batch`]) or JSON lines
//! ([`crate::lines`]).

use std::borrow::Cow;

use arrow::array::StringArray;
use serde_json::Value;

use crate::plain::Row;

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
    /// The field as an Arrow text column, when it is one: [`Events::each_text`] gives the same
    /// values, but a scan can walk the column without a call per value.
    fn text_column(&self, _field: &str) -> Option<&StringArray> {
        None
    }
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
