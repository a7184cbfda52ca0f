//! JSON lines read straight into columns: the [`Events`] of `canh hunt --input`, rule tests and
//! the differential tests.
//!
//! Each line is parsed once, as it is pushed, without building a tree: only the fields the
//! rules read are kept (the text of each, and its number), in one column per field, and every
//! string of the event when keyword rules need them. Whatever else a rule or a correlation
//! asks for (a field no rule names, a group-by field) comes from the whole line, parsed into a
//! [`Value`] the first time a row is asked for one.
//!
//! A field is found as [`crate::plain::lookup`] finds it in a parsed event: a flat dotted key
//! first, then a path of nested keys without dots, then `vendor_fields` (where Canh keeps
//! what has no ECS name). A key given twice counts once, the last one, as in a parsed
//! event.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::fmt::{self, Write as _};

use foldhash::{HashMap, HashMapExt};
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Number, Value};

use crate::correlation::EventJson;
use crate::events::Events;
use crate::plain::{any_scalar, collect_strings, lookup, number_of, text_of, Row};

/// A batch of JSON lines (objects), read into the columns of the fields rules read.
pub struct JsonLines {
    /// The lines end to end, and where each ends.
    text: String,
    ends: Vec<usize>,
    gather: Gather,
    /// Per row: its first string in `gather.strings` (keywords).
    string_starts: Vec<u32>,
    /// Rows parsed whole, the first time something not gathered is asked for.
    parsed: Vec<OnceCell<Value>>,
}

/// What one line's parse fills.
struct Gather {
    /// Texts of the gathered values.
    arena: String,
    /// Every wanted field and every proper prefix of a wanted dotted name: one lookup per key.
    paths: HashMap<Box<str>, PathInfo>,
    columns: Vec<Vec<Cell>>,
    /// Whether every string of an event is kept (keyword rules).
    keywords: bool,
    strings: Vec<(u32, u32)>,
}

struct Cell {
    row: u32,
    /// 1 for a top-level key, 2 one object down, …; vendor fields last (`u8::MAX`).
    depth: u8,
    value: CellValue,
}

enum CellValue {
    /// A range of the arena.
    Text(u32, u32),
    /// The number, and its text in the arena.
    Number(Number, u32, u32),
    Bool(bool),
    Null,
    /// An object or a list.
    Other(Box<Value>),
}

/// One row of [`JsonLines`] as [`EventJson`].
#[derive(Debug, Clone, Copy)]
pub struct LineJson<'a> {
    lines: &'a JsonLines,
    row: usize,
}

impl EventJson for LineJson<'_> {
    fn text(&self) -> String {
        self.lines.line(self.row).trim().to_owned()
    }

    fn value(&self) -> Value {
        self.lines.event(self.row).clone()
    }
}

impl fmt::Debug for JsonLines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLines")
            .field("rows", &self.ends.len())
            .field("columns", &self.gather.columns.len())
            .finish_non_exhaustive()
    }
}

/// Why a line was not taken.
#[derive(Debug)]
pub enum LineError {
    /// Not JSON, or JSON that is not an object.
    Json(serde_json::Error),
    /// The batch cannot hold what the line adds (4 GiB of gathered text): push it again after
    /// [`JsonLines::clear`]; in an empty batch, the line is too large.
    Full,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::Json(e) => write!(f, "not a JSON object: {e}"),
            LineError::Full => f.write_str("too large for one batch"),
        }
    }
}

impl std::error::Error for LineError {}

impl JsonLines {
    /// An empty batch gathering these fields (see [`crate::compiled::Compiled::fields`]), and
    /// every string of each event when `keywords`.
    pub fn new(fields: &[&str], keywords: bool) -> JsonLines {
        let mut paths: HashMap<Box<str>, PathInfo> = HashMap::with_capacity(2 * fields.len());
        let mut columns = 0;
        for f in fields {
            let p = paths.entry(Box::from(*f)).or_default();
            if p.column.is_none() {
                p.column = Some(columns);
                columns += 1;
            }
            for (i, _) in f.match_indices('.') {
                paths.entry(Box::from(&f[..i])).or_default().prefix = true;
            }
        }
        JsonLines {
            text: String::new(),
            ends: Vec::new(),
            gather: Gather {
                arena: String::new(),
                columns: (0..columns).map(|_| Vec::new()).collect(),
                paths,
                keywords,
                strings: Vec::new(),
            },
            string_starts: vec![0],
            parsed: Vec::new(),
        }
    }

    /// A batch of these events (rule tests, differential tests).
    pub fn of(events: &[Value], fields: &[&str], keywords: bool) -> JsonLines {
        let mut lines = JsonLines::new(fields, keywords);
        for e in events {
            // An event that is not an object has no fields: it stays a row all the same.
            if lines.push(&e.to_string()).is_err() {
                let _ = lines.push("{}");
            }
        }
        lines
    }

    /// Adds one line; a line that is not a JSON object adds nothing.
    pub fn push(&mut self, line: &str) -> Result<(), LineError> {
        let Ok(row) = u32::try_from(self.ends.len()) else {
            return Err(LineError::Full);
        };
        let arena = self.gather.arena.len();
        let mut path = String::new();
        let mut de = serde_json::Deserializer::from_str(line);
        let mut parsed = de
            .deserialize_map(Top {
                g: &mut self.gather,
                path: &mut path,
                row,
            })
            .and_then(|()| de.end())
            .map_err(LineError::Json);
        // Texts are kept at 32-bit offsets.
        if parsed.is_ok() && self.gather.arena.len() > u32::MAX as usize {
            parsed = Err(LineError::Full);
        }
        if let Err(e) = parsed {
            // Take back what the line gathered before its fault.
            for col in &mut self.gather.columns {
                while col.last().is_some_and(|c| c.row == row) {
                    col.pop();
                }
            }
            let start = *self.string_starts.last().unwrap_or(&0);
            self.gather.strings.truncate(start as usize);
            self.gather.arena.truncate(arena);
            return Err(e);
        }
        self.text.push_str(line);
        self.ends.push(self.text.len());
        self.string_starts.push(self.gather.strings.len() as u32);
        self.parsed.push(OnceCell::new());
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Empties the batch, keeping its memory.
    pub fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
        self.gather.arena.clear();
        self.gather.columns.iter_mut().for_each(Vec::clear);
        self.gather.strings.clear();
        self.string_starts.truncate(1);
        self.parsed.clear();
    }

    /// A row's line as it was pushed.
    pub fn line(&self, row: usize) -> &str {
        let start = if row == 0 { 0 } else { self.ends[row - 1] };
        &self.text[start..self.ends[row]]
    }

    /// A row's whole event.
    pub fn event(&self, row: usize) -> &Value {
        self.parsed[row].get_or_init(|| serde_json::from_str(self.line(row)).unwrap_or_default())
    }

    /// A row's event as [`EventJson`]: its text is the line as pushed.
    pub fn json(&self, row: usize) -> LineJson<'_> {
        LineJson { lines: self, row }
    }

    fn column(&self, name: &str) -> Option<&[Cell]> {
        let c = self.gather.path(name).column?;
        Some(self.gather.columns[c as usize].as_slice())
    }

    fn cell<'s>(&'s self, column: &'s [Cell], row: usize) -> Option<&'s CellValue> {
        let i = column.binary_search_by_key(&(row as u32), |c| c.row).ok()?;
        Some(&column[i].value)
    }

    fn text(&self, a: u32, b: u32) -> &str {
        &self.gather.arena[a as usize..b as usize]
    }
}

impl Events for JsonLines {
    fn rows(&self) -> usize {
        self.ends.len()
    }

    fn each_text(&self, field: Option<&str>, f: &mut dyn FnMut(usize, &str)) {
        let Some(field) = field else {
            for row in 0..self.rows() {
                if self.gather.keywords {
                    let (a, b) = (self.string_starts[row], self.string_starts[row + 1]);
                    for &(s, e) in &self.gather.strings[a as usize..b as usize] {
                        f(row, self.text(s, e));
                    }
                } else {
                    let mut strings = Vec::new();
                    collect_strings(self.event(row), &mut strings);
                    strings.into_iter().for_each(|s| f(row, s));
                }
            }
            return;
        };
        let each_value = |row: usize, v: &Value, f: &mut dyn FnMut(usize, &str)| {
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
        match self.column(field) {
            Some(column) => {
                for c in column {
                    let row = c.row as usize;
                    match &c.value {
                        CellValue::Text(a, b) | CellValue::Number(_, a, b) => {
                            f(row, self.text(*a, *b));
                        }
                        CellValue::Bool(b) => f(row, if *b { "true" } else { "false" }),
                        CellValue::Null => {}
                        CellValue::Other(v) => each_value(row, v, f),
                    }
                }
            }
            None => {
                for row in 0..self.rows() {
                    if let Some(v) = lookup(self.event(row), field) {
                        each_value(row, v, f);
                    }
                }
            }
        }
    }

    fn each_number(&self, field: &str, f: &mut dyn FnMut(usize, f64)) {
        let each_value = |row: usize, v: &Value, f: &mut dyn FnMut(usize, f64)| {
            any_scalar(v, &mut |v| {
                if let Some(x) = number_of(v) {
                    f(row, x);
                }
                false
            });
        };
        match self.column(field) {
            Some(column) => {
                for c in column {
                    let row = c.row as usize;
                    match &c.value {
                        CellValue::Text(a, b) => {
                            if let Ok(x) = self.text(*a, *b).trim().parse() {
                                f(row, x);
                            }
                        }
                        CellValue::Number(n, ..) => {
                            if let Some(x) = n.as_f64() {
                                f(row, x);
                            }
                        }
                        CellValue::Bool(_) | CellValue::Null => {}
                        CellValue::Other(v) => each_value(row, v, f),
                    }
                }
            }
            None => {
                for row in 0..self.rows() {
                    if let Some(v) = lookup(self.event(row), field) {
                        each_value(row, v, f);
                    }
                }
            }
        }
    }

    fn field(&self, row: usize, name: &str) -> Option<Cow<'_, Value>> {
        let Some(column) = self.column(name) else {
            return self.event(row).field(name);
        };
        Some(match self.cell(column, row)? {
            CellValue::Text(a, b) => Cow::Owned(Value::String(self.text(*a, *b).to_owned())),
            CellValue::Number(n, ..) => Cow::Owned(Value::Number(n.clone())),
            CellValue::Bool(b) => Cow::Owned(Value::Bool(*b)),
            CellValue::Null => Cow::Owned(Value::Null),
            CellValue::Other(v) => Cow::Borrowed(&**v),
        })
    }

    fn has(&self, row: usize, name: &str) -> bool {
        match self.column(name) {
            Some(column) => self
                .cell(column, row)
                .is_some_and(|v| !matches!(v, CellValue::Null)),
            None => self.event(row).has(name),
        }
    }

    fn any_keyword_text(&self, row: usize, f: &mut dyn FnMut(&str) -> bool) -> bool {
        if !self.gather.keywords {
            return self.event(row).any_keyword_text(f);
        }
        let (a, b) = (self.string_starts[row], self.string_starts[row + 1]);
        self.gather.strings[a as usize..b as usize]
            .iter()
            .any(|&(s, e)| f(self.text(s, e)))
    }
}

/// What a path is to the rules.
#[derive(Debug, Default, Clone, Copy)]
struct PathInfo {
    /// Its column, when a rule reads it.
    column: Option<u32>,
    /// Whether a field a rule reads lies below it.
    prefix: bool,
}

impl Gather {
    fn path(&self, path: &str) -> PathInfo {
        self.paths.get(path).copied().unwrap_or_default()
    }

    /// Records a value of a wanted field; a shallower one found earlier in the row stays.
    fn record(&mut self, column: u32, row: u32, depth: u8, value: CellValue) {
        let cells = &mut self.columns[column as usize];
        match cells.last_mut() {
            Some(last) if last.row == row => {
                if depth <= last.depth {
                    *last = Cell { row, depth, value };
                }
            }
            _ => cells.push(Cell { row, depth, value }),
        }
    }

    fn keep_text(&mut self, s: &str) -> (u32, u32) {
        let a = self.arena.len() as u32;
        self.arena.push_str(s);
        (a, self.arena.len() as u32)
    }

    fn keep_number(&mut self, n: &Number) -> (u32, u32) {
        let a = self.arena.len() as u32;
        // Writing to a String cannot fail.
        let _ = write!(self.arena, "{n}");
        (a, self.arena.len() as u32)
    }

    fn cell_of(&mut self, v: &Value) -> CellValue {
        match v {
            Value::String(s) => {
                let (a, b) = self.keep_text(s);
                CellValue::Text(a, b)
            }
            Value::Number(n) => {
                let (a, b) = self.keep_number(n);
                CellValue::Number(n.clone(), a, b)
            }
            Value::Bool(b) => CellValue::Bool(*b),
            Value::Null => CellValue::Null,
            v => CellValue::Other(Box::new(v.clone())),
        }
    }

    /// Every string of a value (keywords).
    fn keep_strings(&mut self, v: &Value) {
        let mut strings = Vec::new();
        collect_strings(v, &mut strings);
        for s in strings {
            let r = self.keep_text(s);
            self.strings.push(r);
        }
    }

    /// The wanted members of an object already parsed, found as a lookup finds them.
    fn walk(&mut self, path: &mut String, row: u32, v: &Value, depth: u8) {
        let Value::Object(m) = v else {
            return;
        };
        if !self.path(path).prefix {
            return;
        }
        let len = path.len();
        for (k, v) in m {
            if k.contains('.') {
                continue;
            }
            path.push('.');
            path.push_str(k);
            let depth = depth.saturating_add(1);
            if let Some(c) = self.path(path).column {
                let cell = self.cell_of(v);
                self.record(c, row, depth, cell);
            }
            self.walk(path, row, v, depth);
            path.truncate(len);
        }
    }
}

/// A line: an object whose keys are read one by one.
struct Top<'a> {
    g: &'a mut Gather,
    path: &'a mut String,
    row: u32,
}

impl<'de> Visitor<'de> for Top<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Top { g, path, row } = self;
        loop {
            path.clear();
            if map.next_key_seed(Key(path))?.is_none() {
                return Ok(());
            }
            let info = g.path(path);
            let val = Val {
                descend: info.prefix && !path.contains('.'),
                wanted: info.column,
                g: &mut *g,
                path: &mut *path,
                row,
                depth: 1,
            };
            if val.path != "vendor_fields" {
                val.read(&mut map)?;
                continue;
            }
            // Also what has no ECS name, under its own name.
            let v: Value = map.next_value()?;
            if let Value::Object(m) = &v {
                for (k, x) in m {
                    if let Some(c) = val.g.path(k).column {
                        let cell = val.g.cell_of(x);
                        val.g.record(c, row, u8::MAX, cell);
                    }
                }
            }
            val.whole(v);
        }
    }
}

/// A key, appended to the path.
struct Key<'a>(&'a mut String);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.0.push_str(v);
        Ok(())
    }
}

/// A value at `path`: kept if its field is wanted, descended into if a wanted field lies
/// below it, its strings kept for keywords.
struct Val<'a> {
    g: &'a mut Gather,
    path: &'a mut String,
    row: u32,
    depth: u8,
    wanted: Option<u32>,
    descend: bool,
}

impl Val<'_> {
    fn text(self, s: &str) {
        let g = self.g;
        if self.wanted.is_none() && !g.keywords {
            return;
        }
        let (a, b) = g.keep_text(s);
        if g.keywords {
            g.strings.push((a, b));
        }
        if let Some(c) = self.wanted {
            g.record(c, self.row, self.depth, CellValue::Text(a, b));
        }
    }

    fn number(self, n: Number) {
        if let Some(c) = self.wanted {
            let (a, b) = self.g.keep_number(&n);
            self.g
                .record(c, self.row, self.depth, CellValue::Number(n, a, b));
        }
    }

    fn scalar(self, v: CellValue) {
        if let Some(c) = self.wanted {
            self.g.record(c, self.row, self.depth, v);
        }
    }

    /// Reads the next value of `map` as this value, or skips it when nothing in it is wanted.
    fn read<'de, A: MapAccess<'de>>(self, map: &mut A) -> Result<(), A::Error> {
        if self.wanted.is_none() && !self.descend && !self.g.keywords {
            map.next_value::<IgnoredAny>().map(|_| ())
        } else {
            map.next_value_seed(self)
        }
    }

    /// An object or list read whole: kept if its field is wanted, searched for the wanted
    /// fields below it and for keywords.
    fn whole(self, v: Value) {
        let g = self.g;
        if self.descend {
            g.walk(self.path, self.row, &v, self.depth);
        }
        if g.keywords {
            g.keep_strings(&v);
        }
        if let Some(c) = self.wanted {
            g.record(c, self.row, self.depth, CellValue::Other(Box::new(v)));
        }
    }
}

impl<'de> DeserializeSeed<'de> for Val<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Val<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.text(v);
        Ok(())
    }

    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.number(Number::from(v));
        Ok(())
    }

    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.number(Number::from(v));
        Ok(())
    }

    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        match Number::from_f64(v) {
            Some(n) => self.number(n),
            None => self.scalar(CellValue::Null),
        }
        Ok(())
    }

    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.scalar(CellValue::Bool(v));
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.scalar(CellValue::Null);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.wanted.is_some() {
            let v = Value::deserialize(SeqAccessDeserializer::new(seq))?;
            self.whole(v);
            return Ok(());
        }
        if !self.g.keywords {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(());
        }
        // Only the strings matter here.
        let Val { g, path, row, .. } = self;
        while seq
            .next_element_seed(Val {
                g,
                path,
                row,
                depth: u8::MAX,
                wanted: None,
                descend: false,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if self.wanted.is_some() {
            let v = Value::deserialize(MapAccessDeserializer::new(map))?;
            self.whole(v);
            return Ok(());
        }
        let Val {
            g,
            path,
            row,
            depth,
            descend,
            ..
        } = self;
        if !descend && !g.keywords {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(());
        }
        let len = path.len();
        loop {
            path.truncate(len);
            path.push('.');
            if map.next_key_seed(Key(path))?.is_none() {
                path.truncate(len);
                return Ok(());
            }
            // Keys with dots are not part of any path (a lookup splits names at dots).
            let tracked = descend && !path[len + 1..].contains('.');
            let info = if tracked {
                g.path(path)
            } else {
                PathInfo::default()
            };
            Val {
                g: &mut *g,
                path: &mut *path,
                row,
                depth: depth.saturating_add(1),
                wanted: info.column,
                descend: info.prefix,
            }
            .read(&mut map)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn texts(lines: &JsonLines, field: Option<&str>) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        lines.each_text(field, &mut |r, t| out.push((r, t.to_owned())));
        out
    }

    /// Every way a field can be written is found as a lookup in the parsed event finds it.
    #[test]
    fn fields_are_found_as_a_lookup_finds_them() {
        let events = [
            r#"{"source.ip": "10.0.0.1", "source": {"ip": "10.0.0.2", "port": 22}}"#,
            r#"{"source": {"ip": "10.0.0.3", "port": "2222"}, "user": {"name": null}}"#,
            r#"{"vendor_fields": {"source.ip": "10.0.0.4", "x": "y"}}"#,
            r#"{"vendor_fields": {"source.ip": "10.0.0.9"}, "source": {"ip": "10.0.0.5"}}"#,
            r#"{"source": {"ip": ["10.0.0.6", "10.0.0.7"]}, "a.b": {"c": "not a path"}}"#,
            r#"{"source": "not an object", "n": 1.5, "t": true, "e": "\u00e9\n"}"#,
            r#"{"source": {"ip": "10.0.0.8", "ip": "10.0.0.10"}}"#,
        ];
        let fields = [
            "source.ip",
            "source.port",
            "user.name",
            "a.b.c",
            "n",
            "t",
            "x",
            "e",
        ];
        let mut lines = JsonLines::new(&fields, true);
        for e in events {
            lines.push(e).expect("object");
        }
        assert_eq!(lines.len(), events.len());
        for (row, line) in events.iter().enumerate() {
            let event: Value = serde_json::from_str(line).expect("json");
            for f in fields.iter().chain(&["missing", "source"]) {
                assert_eq!(
                    lines.field(row, f).map(Cow::into_owned),
                    lookup(&event, f).cloned(),
                    "row {row} field {f}"
                );
                assert_eq!(lines.has(row, f), event.has(f), "row {row} field {f}");
            }
            assert_eq!(lines.line(row), *line);
            // A key given twice: a parsed event keeps the last one, and so do the columns;
            // the strings keywords are searched in are all of them.
            if row == 6 {
                continue;
            }
            let mut want = Vec::new();
            collect_strings(&event, &mut want);
            let mut got = Vec::new();
            lines.any_keyword_text(row, &mut |s| {
                got.push(s.to_owned());
                false
            });
            // (In document order, or key order when serde_json sorts keys: order is not
            // part of keyword matching.)
            let mut want: Vec<&str> = want;
            want.sort_unstable();
            got.sort_unstable();
            assert_eq!(got, want, "row {row} keywords");
        }
        assert_eq!(
            texts(&lines, Some("source.ip")),
            [
                (0, "10.0.0.1".into()),
                (1, "10.0.0.3".into()),
                (2, "10.0.0.4".into()),
                (3, "10.0.0.5".into()),
                (4, "10.0.0.6".into()),
                (4, "10.0.0.7".into()),
                (6, "10.0.0.10".into()),
            ]
        );
        let mut ports = Vec::new();
        lines.each_number("source.port", &mut |r, x| ports.push((r, x)));
        assert_eq!(ports, [(0, 22.0), (1, 2222.0)]);
        assert_eq!(texts(&lines, Some("n")), [(5, "1.5".into())]);
        assert_eq!(texts(&lines, Some("t")), [(5, "true".into())]);
        assert_eq!(texts(&lines, Some("e")), [(5, "\u{e9}\n".into())]);
        // A field no rule reads comes from the parsed line.
        assert_eq!(texts(&lines, Some("source")), [(5, "not an object".into())]);
    }

    /// A line that is not a JSON object adds nothing, even after part of it was read.
    #[test]
    fn bad_lines_add_nothing() {
        let mut lines = JsonLines::new(&["a", "b"], true);
        lines.push(r#"{"a": "one"}"#).expect("object");
        for bad in [
            r#"{"a": "two", "b": "#,
            "[1, 2]",
            "7",
            r#"{"a": "x"} {"#,
            "",
        ] {
            assert!(matches!(lines.push(bad), Err(LineError::Json(_))), "{bad}");
        }
        lines.push(r#"{"b": "three"}"#).expect("object");
        assert_eq!(lines.len(), 2);
        assert_eq!(
            texts(&lines, Some("a")),
            [(0, "one".to_owned())],
            "the bad lines' values are gone"
        );
        assert_eq!(texts(&lines, Some("b")), [(1, "three".to_owned())]);
        assert_eq!(
            texts(&lines, None),
            [(0, "one".to_owned()), (1, "three".to_owned())]
        );
        lines.clear();
        assert!(lines.is_empty());
        assert!(texts(&lines, Some("a")).is_empty());
    }

    /// Without keyword gathering, keywords are searched in the parsed line.
    #[test]
    fn keywords_without_gathering_read_the_line() {
        let lines = JsonLines::of(&[json!({"m": {"x": ["sudo", 1]}})], &[], false);
        assert_eq!(texts(&lines, None), [(0, "sudo".to_owned())]);
        assert!(lines.any_keyword_text(0, &mut |s| s == "sudo"));
    }
}
