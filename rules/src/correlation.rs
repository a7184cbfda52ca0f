//! Streaming correlation (Sigma correlation rules): `event_count`, `value_count`, `temporal`,
//! `temporal_ordered`, `value_sum`, `value_avg`, `value_percentile` (and `value_median`), per
//! group-by key, over a sliding window of `timespan` on event time.
//!
//! * **Inputs** are matches of the rules a correlation refers to — detection rules, or other
//!   correlations (chains): a correlation that fires is an event for the correlations that
//!   refer to it, with its group-by fields as the event's fields.
//! * **Windows**: when an event arrives, every window of length `timespan` that ends at an
//!   event at or after it (and so contains it) is checked; in-order streams check just the one
//!   ending at the new event. When a window satisfies the condition the correlation fires once
//!   for it, and the events of that window are used up (the next firing needs new events).
//! * **Lateness**: events may arrive out of order by up to `lateness` (per correlation, the
//!   newest event time seen so far sets a watermark); state older than the watermark minus the
//!   timespan is dropped, and an event older than that is counted as too late and ignored.
//! * **Memory**: the events held across all groups are bounded; past the bound, the groups
//!   touched longest ago are dropped and counted as evictions.
//! * **Generate**: rules a correlation refers to raise no alerts of their own, unless the
//!   correlation says `generate: true` (see [`Correlator::silent_rules`]).

use std::collections::{HashMap, HashSet};

use rsigma_parser::{
    ConditionExpr, ConditionOperator, CorrelationCondition, CorrelationRule, CorrelationType,
    SigmaRule, WindowMode,
};
use serde_json::Value;

use crate::mapping::Mapping;
use crate::plain::{text_of, Row};

/// Where a correlation's input comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// A detection rule, by its position in the list given to [`Correlator::new`].
    Detection(u32),
    /// A correlation, by position.
    Correlation(u32),
}

/// Settings for every correlation.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How far out of order events may arrive, in nanoseconds.
    pub lateness_ns: i64,
    /// Events held across all groups of all correlations.
    pub max_events: usize,
    /// Sample events kept per group (for alerts).
    pub samples: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            lateness_ns: 60_000_000_000,
            max_events: 1_000_000,
            samples: 5,
        }
    }
}

/// A correlation that fired.
#[derive(Debug, Clone, PartialEq)]
pub struct Fired {
    /// Position of the correlation rule.
    pub correlation: u32,
    /// The group-by fields and their values.
    pub key: Vec<(String, String)>,
    pub first_ns: i64,
    pub last_ns: i64,
    /// Events in the window.
    pub count: u64,
    /// The measure the condition was checked on (count, distinct values, sum, …).
    pub value: f64,
    /// Up to `Limits::samples` events of the window.
    pub samples: Vec<Value>,
}

/// Counters for the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub fired: u64,
    /// Events older than the watermark allows.
    pub too_late: u64,
    /// Groups dropped to stay within the memory bound.
    pub evicted_groups: u64,
    /// Events held now.
    pub held: u64,
    /// Windows measured against their condition (each costs the events in it).
    pub windows: u64,
}

#[derive(Debug)]
struct Def {
    kind: CorrelationType,
    /// For each referenced rule: its source and the field (as events name it) for each
    /// group-by entry, and for the value field.
    refs: Vec<Ref>,
    group_by: Vec<String>,
    span_ns: i64,
    predicates: Vec<(ConditionOperator, f64)>,
    percentile: f64,
    /// `temporal` with a boolean condition over the rule names.
    extended: Option<ConditionExpr>,
    /// Names (and ids) of the referenced rules, by slot, for `extended`.
    names: Vec<Vec<String>>,
    /// Correlations that take this one's firings: (correlation, slot).
    parents: Vec<(u32, u8)>,
    /// The rule as parsed (`None`: left out), to tell across a reload whether it changed.
    rule: Option<CorrelationRule>,
}

#[derive(Debug)]
struct Ref {
    source: Source,
    key_fields: Vec<String>,
    value_field: Option<String>,
    /// The detection rule read, as parsed (to tell across a reload whether it changed).
    detection: Option<SigmaRule>,
}

/// A matching event as JSON, made only when asked for: correlation windows keep a few events
/// per group as samples; alerts and printed matches want the tree.
pub trait EventJson {
    /// The event as one JSON object's text.
    fn text(&self) -> String;
    /// The event as a JSON value.
    fn value(&self) -> Value {
        serde_json::from_str(&self.text()).unwrap_or(Value::Null)
    }
    /// Where the caller keeps this event for as long as the correlations run (a hunt keeps
    /// every matching row): a window then keeps this number instead of the event's text, and
    /// reads the event back with [`EventJson::recall`] of a later event when it fires. Most
    /// windows never fire, so most samples are never read. Every event a correlator is given
    /// with a handle must come from the same keeper, for as long as the correlator lives (a
    /// hunt runs all its matches through one correlator in one pass).
    fn handle(&self) -> Option<u64> {
        None
    }
    /// The event kept under `handle` (see [`EventJson::handle`]).
    fn recall(&self, _handle: u64) -> Option<Value> {
        None
    }
}

impl EventJson for Value {
    fn text(&self) -> String {
        self.to_string()
    }

    fn value(&self) -> Value {
        self.clone()
    }
}

#[derive(Debug)]
struct Ev {
    t: i64,
    slot: u8,
    value: Option<String>,
    /// The event, read back only when the window fires.
    sample: Option<Kept>,
}

/// A sample as a window keeps it.
#[derive(Debug)]
enum Kept {
    /// JSON text: a fraction of the memory of a `Value` tree.
    Text(Box<str>),
    /// Where the caller keeps it ([`EventJson::handle`]).
    Handle(u64),
}

#[derive(Debug, Default)]
struct Group {
    /// Sorted by time.
    events: Vec<Ev>,
    samples: usize,
    touched: u64,
    /// `value_count`: how many of the held events carry each value. A window's distinct
    /// values are a subset of these, so a group short of the threshold is passed over without
    /// counting any window (counting each was quadratic in a busy group: a flood of short
    /// flows between two hosts).
    values: foldhash::HashMap<Box<str>, u32>,
}

impl Group {
    /// Inserts an event at `at` (keeping time order); `count` its value for `value_count`.
    fn insert(&mut self, at: usize, ev: Ev, count: bool) {
        if count {
            if let Some(v) = ev.value.as_deref().filter(|v| !v.is_empty()) {
                *self.values.entry(v.into()).or_default() += 1;
            }
        }
        self.samples += usize::from(ev.sample.is_some());
        self.events.insert(at, ev);
    }

    /// Takes the events of `range` out.
    fn take(&mut self, range: std::ops::Range<usize>) -> Vec<Ev> {
        let taken: Vec<Ev> = self.events.drain(range).collect();
        for e in &taken {
            self.samples -= usize::from(e.sample.is_some());
            if self.values.is_empty() {
                continue;
            }
            if let Some(v) = e.value.as_deref() {
                if let Some(n) = self.values.get_mut(v) {
                    *n -= 1;
                    if *n == 0 {
                        self.values.remove(v);
                    }
                }
            }
        }
        taken
    }
}

/// Correlation rules and their state.
#[derive(Debug)]
pub struct Correlator {
    defs: Vec<Def>,
    /// Detection rule → (correlation, slot).
    by_detection: HashMap<u32, Vec<(u32, u8)>>,
    silent: HashSet<Source>,
    groups: foldhash::HashMap<(u32, Vec<String>), Group>,
    newest: Vec<i64>,
    limits: Limits,
    clock: u64,
    held: usize,
    counters: Counters,
}

/// What a detection or correlation rule is called by: its id and its name.
fn handles(id: Option<&str>, name: Option<&str>) -> Vec<String> {
    id.into_iter().chain(name).map(str::to_owned).collect()
}

impl Correlator {
    /// Builds the correlations over the detection rules (as run, in order); problems come back
    /// per correlation (by position) and that correlation is left out.
    pub fn new(
        correlations: &[&CorrelationRule],
        detections: &[&SigmaRule],
        mapping: &Mapping,
        limits: Limits,
    ) -> (Correlator, Vec<(usize, String)>) {
        let mut problems = Vec::new();
        let mut by_handle: HashMap<&str, Source> = HashMap::new();
        for (i, d) in detections.iter().enumerate() {
            for h in [d.id.as_deref(), d.name.as_deref()].into_iter().flatten() {
                by_handle.insert(h, Source::Detection(i as u32));
            }
        }
        for (i, c) in correlations.iter().enumerate() {
            for h in [c.id.as_deref(), c.name.as_deref()].into_iter().flatten() {
                by_handle.insert(h, Source::Correlation(i as u32));
            }
        }
        let mut defs: Vec<Option<Def>> = Vec::new();
        let mut silent = HashSet::new();
        for (ci, c) in correlations.iter().enumerate() {
            match def(c, detections, &by_handle, mapping) {
                Ok(d) => {
                    if !c.generate {
                        silent.extend(d.refs.iter().map(|r| r.source));
                    }
                    defs.push(Some(d));
                }
                Err(e) => {
                    problems.push((ci, e));
                    defs.push(None);
                }
            }
        }
        // A chain that loops never fires: leave out every correlation on a loop.
        let looping: Vec<usize> = (0..defs.len())
            .filter(|&ci| reaches(&defs, ci, ci, &mut HashSet::new()))
            .collect();
        for ci in looping {
            problems.push((
                ci,
                "its rules refer back to it (a loop of correlations)".into(),
            ));
            defs[ci] = None;
        }
        let mut by_detection: HashMap<u32, Vec<(u32, u8)>> = HashMap::new();
        let mut parents: Vec<Vec<(u32, u8)>> = vec![Vec::new(); defs.len()];
        for (ci, d) in defs.iter().enumerate() {
            let Some(d) = d else { continue };
            for (slot, r) in d.refs.iter().enumerate() {
                let to = (ci as u32, slot as u8);
                match r.source {
                    Source::Detection(i) => by_detection.entry(i).or_default().push(to),
                    Source::Correlation(i) => parents[i as usize].push(to),
                }
            }
        }
        let n = defs.len();
        let defs: Vec<Def> = defs
            .into_iter()
            .zip(parents)
            .map(|(d, parents)| match d {
                Some(mut d) => {
                    d.parents = parents;
                    d
                }
                // A left-out correlation: never fed, never fires.
                None => Def {
                    kind: CorrelationType::EventCount,
                    refs: Vec::new(),
                    group_by: Vec::new(),
                    span_ns: 0,
                    predicates: Vec::new(),
                    percentile: 50.0,
                    extended: None,
                    names: Vec::new(),
                    parents: Vec::new(),
                    rule: None,
                },
            })
            .collect();
        (
            Correlator {
                defs,
                by_detection,
                silent,
                groups: foldhash::HashMap::default(),
                newest: vec![i64::MIN; n],
                limits,
                clock: 0,
                held: 0,
                counters: Counters::default(),
            },
            problems,
        )
    }

    /// Rules that raise no alerts of their own: referred to by a correlation without
    /// `generate: true`.
    pub fn silent_rules(&self) -> &HashSet<Source> {
        &self.silent
    }

    /// Whether a detection rule feeds any correlation.
    pub fn wants(&self, detection: u32) -> bool {
        self.by_detection.contains_key(&detection)
    }

    pub fn counters(&self) -> Counters {
        Counters {
            held: self.held as u64,
            ..self.counters
        }
    }

    /// After a rule reload: takes over the windows of `old`'s correlations that this one runs
    /// unchanged — the same correlation rule, reading the same rules (as parsed) through the
    /// same fields, and, for a correlation of correlations, unchanged ones. Their windows go
    /// on as if there had been no reload; the others start empty. Returns the events taken
    /// over (of `old.counters().held`).
    pub fn carry_over(&mut self, old: Correlator) -> u64 {
        let mut to_new: HashMap<u32, u32> = HashMap::new();
        for n in 0..self.defs.len() as u32 {
            let found = (0..old.defs.len() as u32)
                .find(|&o| !to_new.contains_key(&o) && self.same(&old, n, o));
            if let Some(o) = found {
                to_new.insert(o, n);
            }
        }
        let mut moved = 0;
        for ((o, key), group) in old.groups {
            if let Some(&n) = to_new.get(&o) {
                moved += group.events.len();
                self.groups.insert((n, key), group);
            }
        }
        for (&o, &n) in &to_new {
            self.newest[n as usize] = old.newest[o as usize];
        }
        // Groups keep their place in the eviction order.
        self.clock = self.clock.max(old.clock);
        self.held += moved;
        moved as u64
    }

    /// Whether this correlator's correlation `n` is `old`'s `o`, unchanged.
    fn same(&self, old: &Correlator, n: u32, o: u32) -> bool {
        let (a, b) = (&self.defs[n as usize], &old.defs[o as usize]);
        a.rule.is_some()
            && a.rule == b.rule
            && a.refs.len() == b.refs.len()
            && a.refs.iter().zip(&b.refs).all(|(x, y)| {
                x.key_fields == y.key_fields
                    && x.value_field == y.value_field
                    && match (x.source, y.source) {
                        (Source::Detection(_), Source::Detection(_)) => x.detection == y.detection,
                        (Source::Correlation(i), Source::Correlation(j)) => self.same(old, i, j),
                        _ => false,
                    }
            })
    }

    /// A detection rule matched an event at `time_ns`; returns the correlations that fired
    /// (including those further up a chain).
    pub fn observe(
        &mut self,
        detection: u32,
        time_ns: i64,
        row: &dyn Row,
        sample: &dyn EventJson,
    ) -> Vec<Fired> {
        let mut fired = Vec::new();
        let targets = self
            .by_detection
            .get(&detection)
            .cloned()
            .unwrap_or_default();
        for (ci, slot) in targets {
            self.feed(ci, slot, time_ns, row, sample, &mut fired);
        }
        fired
    }

    fn feed(
        &mut self,
        ci: u32,
        slot: u8,
        t: i64,
        row: &dyn Row,
        sample: &dyn EventJson,
        fired: &mut Vec<Fired>,
    ) {
        let d = &self.defs[ci as usize];
        let r = &d.refs[slot as usize];
        let key: Vec<String> = r.key_fields.iter().map(|f| field_text(row, f)).collect();
        let value = r.value_field.as_deref().map(|f| field_text(row, f));
        let (span, lateness) = (d.span_ns, self.limits.lateness_ns);
        let newest = &mut self.newest[ci as usize];
        *newest = (*newest).max(t);
        let horizon = newest.saturating_sub(lateness).saturating_sub(span);
        if t < horizon {
            self.counters.too_late += 1;
            return;
        }
        self.clock += 1;
        let group = self.groups.entry((ci, key.clone())).or_default();
        group.touched = self.clock;
        // Drop what no window can reach any more.
        let old = group.events.partition_point(|e| e.t < horizon);
        if old > 0 {
            group.take(0..old);
            self.held -= old;
        }
        let keep_sample = group.samples < self.limits.samples;
        let at = group.events.partition_point(|e| e.t <= t);
        let counted = d.kind == CorrelationType::ValueCount;
        group.insert(
            at,
            Ev {
                t,
                slot,
                value,
                sample: keep_sample.then(|| match sample.handle() {
                    Some(h) => Kept::Handle(h),
                    None => Kept::Text(sample.text().into_boxed_str()),
                }),
            },
            counted,
        );
        self.held += 1;
        // Windows ending at each event from the new one on, up to a timespan later.
        let mut hit = None;
        let ends = if counted && d.below_threshold(group.values.len()) {
            0..0
        } else {
            at..group.events.len()
        };
        for end in ends {
            let end_t = group.events[end].t;
            if end_t.saturating_sub(t) > span {
                break;
            }
            let start = group
                .events
                .partition_point(|e| e.t < end_t.saturating_sub(span));
            self.counters.windows += 1;
            if let Some(measure) = d.check(&group.events[start..=end]) {
                hit = Some((start, end, measure));
                break;
            }
        }
        if let Some((start, end, measure)) = hit {
            let used = group.take(start..end + 1);
            self.held -= used.len();
            let f = Fired {
                correlation: ci,
                key: d.group_by.iter().cloned().zip(key).collect(),
                first_ns: used.first().map_or(t, |e| e.t),
                last_ns: used.last().map_or(t, |e| e.t),
                count: used.len() as u64,
                value: measure,
                samples: used
                    .into_iter()
                    .filter_map(|e| match e.sample? {
                        Kept::Text(t) => serde_json::from_str(&t).ok(),
                        Kept::Handle(h) => sample.recall(h),
                    })
                    .collect(),
            };
            if group.events.is_empty() {
                self.groups
                    .remove(&(ci, f.key.iter().map(|k| k.1.clone()).collect()));
            }
            self.counters.fired += 1;
            // Up the chain: the firing is an event with the group-by fields.
            let parents = self.defs[ci as usize].parents.clone();
            if !parents.is_empty() {
                let event = Value::Object(
                    f.key
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                        .collect(),
                );
                let mut sample = event.clone();
                sample["correlation.count"] = Value::from(f.count);
                let last = f.last_ns;
                fired.push(f);
                for (pi, pslot) in parents {
                    self.feed(pi, pslot, last, &event, &sample, fired);
                }
            } else {
                fired.push(f);
            }
        }
        if self.held > self.limits.max_events {
            self.evict();
        }
    }

    /// Drops what no window can reach any more from every group (those not fed for a while
    /// included), and the groups left empty. Call it now and then (the pipeline: every 200 ms).
    pub fn sweep(&mut self) {
        let (defs, newest, lateness) = (&self.defs, &self.newest, self.limits.lateness_ns);
        let mut dropped = 0;
        self.groups.retain(|(ci, _), g| {
            let ci = *ci as usize;
            let horizon = newest[ci]
                .saturating_sub(lateness)
                .saturating_sub(defs[ci].span_ns);
            let old = g.events.partition_point(|e| e.t < horizon);
            if old > 0 {
                g.take(0..old);
                dropped += old;
            }
            !g.events.is_empty()
        });
        self.held -= dropped;
    }

    /// Drops the groups touched longest ago until a tenth of the bound is free.
    fn evict(&mut self) {
        let target = self.limits.max_events - self.limits.max_events / 10;
        let mut order: Vec<(u64, (u32, Vec<String>))> = self
            .groups
            .iter()
            .map(|(k, g)| (g.touched, k.clone()))
            .collect();
        order.sort_unstable_by_key(|o| o.0);
        for (_, k) in order {
            if self.held <= target {
                break;
            }
            if let Some(g) = self.groups.remove(&k) {
                self.held -= g.events.len();
                self.counters.evicted_groups += 1;
            }
        }
    }
}

/// Whether following `from`'s correlation references reaches `target`.
fn reaches(defs: &[Option<Def>], from: usize, target: usize, seen: &mut HashSet<usize>) -> bool {
    let Some(d) = &defs[from] else { return false };
    d.refs.iter().any(|r| match r.source {
        Source::Correlation(c) => {
            let c = c as usize;
            c == target || (seen.insert(c) && reaches(defs, c, target, seen))
        }
        Source::Detection(_) => false,
    })
}

/// An event's time (`@timestamp`: RFC 3339 text, or seconds since the epoch), in ns.
pub fn event_time_ns(row: &dyn Row) -> Option<i64> {
    match row.field("@timestamp").as_deref()? {
        Value::String(s) => s
            .trim()
            .parse::<jiff::Timestamp>()
            .ok()
            .and_then(|t| i64::try_from(t.as_nanosecond()).ok()),
        Value::Number(n) => n.as_f64().map(|s| (s * 1e9) as i64),
        _ => None,
    }
}

/// A field's value as text for grouping (a list: its elements joined by commas; absent: "").
fn field_text(row: &dyn Row, name: &str) -> String {
    match row.field(name).as_deref() {
        None | Some(Value::Null) => String::new(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(text_of)
            .collect::<Vec<_>>()
            .join(","),
        Some(v) => text_of(v).unwrap_or_default(),
    }
}

fn def(
    c: &CorrelationRule,
    detections: &[&SigmaRule],
    by_handle: &HashMap<&str, Source>,
    mapping: &Mapping,
) -> Result<Def, String> {
    if c.window != WindowMode::Sliding {
        return Err(format!(
            "window: {} is an rsigma extension; Canh's windows slide (the Sigma specification's)",
            c.window.as_str()
        ));
    }
    if c.timespan.seconds == 0 {
        return Err("timespan: must be longer than zero".into());
    }
    let (predicates, fields, percentile, extended) = match &c.condition {
        // The parser stands `gte: 1` in for a temporal correlation without a condition, which
        // the specification says means all of the rules.
        CorrelationCondition::Threshold { predicates, .. }
            if matches!(
                c.correlation_type,
                CorrelationType::Temporal | CorrelationType::TemporalOrdered
            ) && predicates.as_slice() == [(ConditionOperator::Gte, 1)] =>
        {
            (Vec::new(), Vec::new(), 50.0, None)
        }
        CorrelationCondition::Threshold {
            predicates,
            field,
            percentile,
        } => (
            predicates.iter().map(|(o, n)| (*o, *n as f64)).collect(),
            field.clone().unwrap_or_default(),
            percentile.map_or(50.0, |p| p as f64),
            None,
        ),
        CorrelationCondition::Extended(e) => (Vec::new(), Vec::new(), 50.0, Some(e.clone())),
    };
    let kind = c.correlation_type;
    let needs_field = matches!(
        kind,
        CorrelationType::ValueCount
            | CorrelationType::ValueSum
            | CorrelationType::ValueAvg
            | CorrelationType::ValuePercentile
            | CorrelationType::ValueMedian
    );
    if needs_field && fields.is_empty() {
        return Err(format!("condition: {} needs a field", kind.as_str()));
    }
    if predicates.is_empty()
        && !matches!(
            kind,
            CorrelationType::Temporal | CorrelationType::TemporalOrdered
        )
    {
        return Err(format!(
            "condition: {} needs a threshold (gte: …)",
            kind.as_str()
        ));
    }
    if c.rules.is_empty() {
        return Err("rules: none given".into());
    }
    let mut refs = Vec::new();
    let mut names = Vec::new();
    for handle in &c.rules {
        let source = *by_handle
            .get(handle.as_str())
            .ok_or_else(|| format!("rules: no rule with the id or name '{handle}'"))?;
        // Field names as the referenced rule's events have them: aliases first, then the
        // mapping of the detection rule's log source.
        let rule_handles: Vec<String> = match source {
            Source::Detection(i) => {
                let d = detections[i as usize];
                handles(d.id.as_deref(), d.name.as_deref())
            }
            Source::Correlation(_) => vec![handle.clone()],
        };
        let resolve = |name: &str| -> String {
            let aliased = c
                .aliases
                .iter()
                .find(|a| a.alias == name)
                .and_then(|a| {
                    rule_handles
                        .iter()
                        .chain(std::iter::once(handle))
                        .find_map(|h| a.mapping.get(h))
                })
                .map_or(name, String::as_str);
            match source {
                Source::Detection(i) => mapping.field(detections[i as usize], aliased),
                Source::Correlation(_) => aliased.to_owned(),
            }
        };
        refs.push(Ref {
            source,
            key_fields: c.group_by.iter().map(|g| resolve(g)).collect(),
            value_field: fields.first().map(|f| resolve(f)),
            detection: match source {
                Source::Detection(i) => Some(detections[i as usize].clone()),
                Source::Correlation(_) => None,
            },
        });
        let mut n = rule_handles;
        n.push(handle.clone());
        names.push(n);
    }
    if refs.len() > usize::from(u8::MAX) {
        return Err("rules: more than 255".into());
    }
    Ok(Def {
        kind,
        refs,
        group_by: c.group_by.clone(),
        span_ns: i64::try_from(c.timespan.seconds)
            .unwrap_or(i64::MAX / 1_000_000_000)
            .saturating_mul(1_000_000_000),
        predicates,
        percentile,
        extended,
        names,
        parents: Vec::new(),
        rule: Some(c.clone()),
    })
}

impl Def {
    /// Whether a lower bound of the condition (`gt`, `gte`) fails for `distinct` values: then
    /// it fails for every window of a group holding that many.
    fn below_threshold(&self, distinct: usize) -> bool {
        let d = distinct as f64;
        self.predicates.iter().any(|(op, n)| match op {
            ConditionOperator::Gte => d < *n,
            ConditionOperator::Gt => d <= *n,
            _ => false,
        })
    }

    /// The window's measure if it satisfies the condition.
    fn check(&self, w: &[Ev]) -> Option<f64> {
        let numbers = || -> Vec<f64> {
            w.iter()
                .filter_map(|e| e.value.as_deref()?.trim().parse::<f64>().ok())
                .collect()
        };
        let measure = match self.kind {
            CorrelationType::EventCount => w.len() as f64,
            CorrelationType::ValueCount => w
                .iter()
                .filter_map(|e| e.value.as_deref().filter(|v| !v.is_empty()))
                .collect::<HashSet<_>>()
                .len() as f64,
            CorrelationType::ValueSum => numbers().iter().sum(),
            CorrelationType::ValueAvg => {
                let n = numbers();
                if n.is_empty() {
                    return None;
                }
                n.iter().sum::<f64>() / n.len() as f64
            }
            CorrelationType::ValuePercentile | CorrelationType::ValueMedian => {
                let mut n = numbers();
                if n.is_empty() {
                    return None;
                }
                n.sort_by(f64::total_cmp);
                let p = if self.kind == CorrelationType::ValueMedian {
                    50.0
                } else {
                    self.percentile
                };
                // Nearest rank.
                let rank = ((p / 100.0) * n.len() as f64).ceil().max(1.0) as usize;
                n[rank.min(n.len()) - 1]
            }
            CorrelationType::Temporal => {
                let seen: HashSet<u8> = w.iter().map(|e| e.slot).collect();
                if let Some(expr) = &self.extended {
                    return self.temporal_expr(expr, &seen).then_some(seen.len() as f64);
                }
                if self.predicates.is_empty() {
                    return (seen.len() == self.refs.len()).then_some(seen.len() as f64);
                }
                seen.len() as f64
            }
            CorrelationType::TemporalOrdered => {
                // The rules in their order, each after the one before (greedy is enough).
                let mut next = 0;
                for e in w {
                    if usize::from(e.slot) == next {
                        next += 1;
                        if next == self.refs.len() {
                            break;
                        }
                    }
                }
                if self.predicates.is_empty() {
                    return (next == self.refs.len()).then_some(next as f64);
                }
                next as f64
            }
        };
        self.predicates
            .iter()
            .all(|(op, n)| match op {
                ConditionOperator::Lt => measure < *n,
                ConditionOperator::Lte => measure <= *n,
                ConditionOperator::Gt => measure > *n,
                ConditionOperator::Gte => measure >= *n,
                ConditionOperator::Eq => measure == *n,
                ConditionOperator::Neq => measure != *n,
            })
            .then_some(measure)
    }

    fn temporal_expr(&self, e: &ConditionExpr, seen: &HashSet<u8>) -> bool {
        match e {
            ConditionExpr::And(v) => v.iter().all(|e| self.temporal_expr(e, seen)),
            ConditionExpr::Or(v) => v.iter().any(|e| self.temporal_expr(e, seen)),
            ConditionExpr::Not(e) => !self.temporal_expr(e, seen),
            ConditionExpr::Identifier(name) => self
                .names
                .iter()
                .position(|n| n.iter().any(|h| h == name))
                .is_some_and(|slot| seen.contains(&(slot as u8))),
            ConditionExpr::Selector { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SEC: i64 = 1_000_000_000;

    /// Detection rules `a` and `b` (matched by hand below).
    const AB: &str = "title: A\nid: a\nname: a\nlogsource: {product: x}\ndetection:\n  sel: {k: a}\n  condition: sel\n---\ntitle: B\nid: b\nname: b\nlogsource: {product: x}\ndetection:\n  sel: {k: b}\n  condition: sel\n";

    /// Detection rules `a`, `b` and the correlations in `yaml`.
    fn setup(yaml: &str, limits: Limits) -> Correlator {
        setup_with(AB, yaml, limits)
    }

    /// These detection rules and the correlations in `yaml`.
    fn setup_with(detections: &str, yaml: &str, limits: Limits) -> Correlator {
        let c = rsigma_parser::parse_sigma_yaml(&format!("{detections}---\n{yaml}")).expect("yaml");
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        let d: Vec<&SigmaRule> = c.rules.iter().collect();
        let corr: Vec<&CorrelationRule> = c.correlations.iter().collect();
        let (c, problems) = Correlator::new(&corr, &d, &Mapping::identity(), limits);
        assert!(problems.is_empty(), "{problems:?}");
        c
    }

    fn feed(c: &mut Correlator, rule: u32, secs: i64, event: Value) -> Vec<Fired> {
        c.observe(rule, secs * SEC, &event, &event)
    }

    fn count(by: &str, cond: &str) -> String {
        format!("title: C\nid: c\ncorrelation:\n  type: event_count\n  rules: [a]\n  group-by: [{by}]\n  timespan: 60s\n  condition: {cond}\n")
    }

    /// A rule reload keeps the windows of the correlations it leaves unchanged, wherever their
    /// rules now sit in the list, and empties those of changed ones: another threshold or
    /// group-by, a changed rule read, or a changed correlation read.
    #[test]
    fn windows_of_unchanged_correlations_survive_a_reload() {
        let ip = json!({"source.ip": "10.0.0.1"});
        let before = |corr: &str| {
            let mut c = setup(corr, Limits::default());
            assert!(feed(&mut c, 0, 1, ip.clone()).is_empty());
            assert!(feed(&mut c, 0, 2, ip.clone()).is_empty());
            c
        };
        let c3 = count("source.ip", "{gte: 3}");
        // A new rule loaded before `a`: `a` is rule 1 now.
        let z = "title: Z\nid: z\nlogsource: {product: x}\ndetection:\n  sel: {k: z}\n  condition: sel\n---\n";
        let mut after = setup_with(&format!("{z}{AB}"), &c3, Limits::default());
        assert_eq!(after.carry_over(before(&c3)), 2);
        assert_eq!(after.counters().held, 2);
        let fired = feed(&mut after, 1, 3, ip.clone());
        assert_eq!(fired.len(), 1);
        assert_eq!((fired[0].count, fired[0].first_ns), (3, SEC));

        let a_changed = AB.replace("sel: {k: a}", "sel: {k: aa}");
        for (detections, corr) in [
            (AB, count("source.ip", "{gte: 4}")),
            (AB, count("destination.ip", "{gte: 3}")),
            (a_changed.as_str(), c3.clone()),
        ] {
            let mut after = setup_with(detections, &corr, Limits::default());
            assert_eq!(after.carry_over(before(&c3)), 0, "{detections}\n{corr}");
            assert_eq!(after.counters().held, 0);
            assert!(feed(&mut after, 0, 3, ip.clone()).is_empty());
        }

        // A correlation of a correlation: unchanged only with what it reads.
        let d = "---\ntitle: D\nid: d\ncorrelation:\n  type: event_count\n  rules: [c]\n  group-by: [source.ip]\n  timespan: 60s\n  condition: {gte: 2}\n";
        let chain = |inner: &str| {
            let mut c = setup(&format!("{inner}{d}"), Limits::default());
            for t in 1..=3 {
                feed(&mut c, 0, t, ip.clone());
            }
            c
        };
        let held = chain(&c3).counters().held;
        assert!(held > 0);
        let mut same = setup(&format!("{c3}{d}"), Limits::default());
        assert_eq!(same.carry_over(chain(&c3)), held);
        let c2 = count("source.ip", "{gte: 2}");
        let mut changed = setup(&format!("{c2}{d}"), Limits::default());
        assert_eq!(changed.carry_over(chain(&c3)), 0);
    }

    /// Events the caller keeps itself: a window keeps their handles, never their text, and a
    /// firing reads them back through the event that completes it.
    #[test]
    fn samples_kept_by_handle_are_recalled_when_the_window_fires() {
        struct Kept<'a> {
            all: &'a [Value],
            at: usize,
        }
        impl EventJson for Kept<'_> {
            fn text(&self) -> String {
                unreachable!("a window keeps the handle")
            }
            fn handle(&self) -> Option<u64> {
                Some(self.at as u64)
            }
            fn recall(&self, handle: u64) -> Option<Value> {
                self.all.get(handle as usize).cloned()
            }
        }
        let mut c = setup(&count("source.ip", "{gte: 3}"), Limits::default());
        let all: Vec<Value> = (0..3)
            .map(|i| json!({"source.ip": "10.0.0.1", "n": i}))
            .collect();
        let mut fired = Vec::new();
        for (at, e) in all.iter().enumerate() {
            let sample = Kept { all: &all, at };
            fired.extend(c.observe(0, at as i64 * SEC, e, &sample));
        }
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].samples, all);
    }

    /// A busy group short of a `value_count` threshold measures no window; the distinct
    /// values it holds follow the events that leave it, so the threshold is still seen when
    /// it is reached within one timespan.
    #[test]
    fn value_count_measures_windows_only_when_the_group_has_enough_values() {
        let corr = "title: C\nid: c\ncorrelation:\n  type: value_count\n  rules: [a]\n  group-by: [source.ip]\n  timespan: 60s\n  condition: {field: destination.port, gte: 3}\n";
        let limits = Limits {
            lateness_ns: 0,
            ..Limits::default()
        };
        let mut c = setup(corr, limits);
        let ev = |port: u16| json!({"source.ip": "10.0.0.1", "destination.port": port});
        assert!(feed(&mut c, 0, 0, ev(1)).is_empty());
        for t in 1..=1000 {
            assert!(feed(&mut c, 0, 10 + t / 100, ev(2)).is_empty());
        }
        assert_eq!(c.counters().windows, 0);
        // Port 1 (t = 0) leaves the window: ports 2, 3 and 4 are three within the minute.
        assert!(feed(&mut c, 0, 65, ev(3)).is_empty());
        assert_eq!(c.counters().windows, 0);
        let f = feed(&mut c, 0, 66, ev(4));
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].first_ns, f[0].last_ns, f[0].value),
            (10 * SEC, 66 * SEC, 3.0)
        );
        assert!(c.counters().windows > 0);
        // What fired is used up; port 1 again alone is not three.
        let w = c.counters().windows;
        assert!(feed(&mut c, 0, 67, ev(1)).is_empty());
        assert_eq!(c.counters().windows, w);
    }

    #[test]
    fn event_count_per_group_in_a_sliding_window() {
        let mut c = setup(&count("source.ip", "{gte: 3}"), Limits::default());
        let a = json!({"source.ip": "10.0.0.1"});
        let b = json!({"source.ip": "10.0.0.2"});
        assert!(feed(&mut c, 0, 0, a.clone()).is_empty());
        assert!(feed(&mut c, 0, 10, b.clone()).is_empty());
        assert!(feed(&mut c, 0, 30, a.clone()).is_empty());
        assert!(feed(&mut c, 0, 40, b.clone()).is_empty());
        let f = feed(&mut c, 0, 50, a.clone());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].key, [("source.ip".to_owned(), "10.0.0.1".to_owned())]);
        assert_eq!((f[0].first_ns, f[0].last_ns, f[0].count), (0, 50 * SEC, 3));
        assert_eq!(f[0].samples.len(), 3);
        // Used up: the next event starts again.
        assert!(feed(&mut c, 0, 55, a.clone()).is_empty());
        // b's three events span 71 s: never three in one minute.
        assert!(feed(&mut c, 0, 81, b.clone()).is_empty());
        // Not a rule this correlation reads.
        assert!(feed(&mut c, 1, 82, b.clone()).is_empty());
        assert!(c.silent_rules().contains(&Source::Detection(0)));
        assert!(!c.silent_rules().contains(&Source::Detection(1)));
    }

    #[test]
    fn out_of_order_events_within_the_lateness_count_and_later_ones_do_not() {
        let limits = Limits {
            lateness_ns: 30 * SEC,
            ..Limits::default()
        };
        let mut c = setup(&count("source.ip", "{gte: 3}"), limits);
        let a = json!({"source.ip": "10.0.0.1"});
        assert!(feed(&mut c, 0, 100, a.clone()).is_empty());
        assert!(feed(&mut c, 0, 60, a.clone()).is_empty());
        // 60, 70, 100: the window ending at 100 holds all three.
        let f = feed(&mut c, 0, 70, a.clone());
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].first_ns, f[0].last_ns), (60 * SEC, 100 * SEC));
        // Newest 100 s, lateness 30 s, timespan 60 s: anything before 10 s is too late.
        assert!(feed(&mut c, 0, 5, a.clone()).is_empty());
        assert_eq!(c.counters().too_late, 1);
        // An out-of-order event that completes a window ending after it.
        let mut c = setup(&count("source.ip", "{gte: 2}"), limits);
        assert!(feed(&mut c, 0, 200, a.clone()).is_empty());
        let f = feed(&mut c, 0, 150, a.clone());
        assert_eq!((f[0].first_ns, f[0].last_ns), (150 * SEC, 200 * SEC));
    }

    #[test]
    fn value_count_sum_avg_and_percentile() {
        let rule = |kind: &str, cond: &str| {
            format!("title: C\nid: c\ncorrelation:\n  type: {kind}\n  rules: [a]\n  group-by: [source.ip]\n  timespan: 1m\n  condition: {cond}\n")
        };
        let mut c = setup(
            &rule("value_count", "{field: user.name, gte: 3}"),
            Limits::default(),
        );
        let ev = |user: &str, bytes: u64| json!({"source.ip": "10.0.0.1", "user.name": user, "network.bytes": bytes});
        assert!(feed(&mut c, 0, 1, ev("root", 1)).is_empty());
        assert!(feed(&mut c, 0, 2, ev("root", 1)).is_empty());
        assert!(feed(&mut c, 0, 3, ev("admin", 1)).is_empty());
        let f = feed(&mut c, 0, 4, ev("oracle", 1));
        assert_eq!((f.len(), f[0].value, f[0].count), (1, 3.0, 4));

        let mut c = setup(
            &rule("value_sum", "{field: network.bytes, gt: 1000}"),
            Limits::default(),
        );
        assert!(feed(&mut c, 0, 1, ev("x", 600)).is_empty());
        assert_eq!(feed(&mut c, 0, 2, ev("x", 500))[0].value, 1100.0);

        let mut c = setup(
            &rule("value_avg", "{field: network.bytes, gte: 100}"),
            Limits::default(),
        );
        assert_eq!(feed(&mut c, 0, 1, ev("x", 150))[0].value, 150.0);
        let mut c = setup(
            &rule("value_avg", "{field: network.bytes, gte: 100}"),
            Limits::default(),
        );
        assert!(feed(&mut c, 0, 1, ev("x", 50)).is_empty());
        assert!(feed(&mut c, 0, 2, ev("x", 100)).is_empty());
        assert_eq!(feed(&mut c, 0, 3, ev("x", 200))[0].value, 350.0 / 3.0);

        let mut c = setup(
            &rule(
                "value_percentile",
                "{field: network.bytes, percentile: 90, gte: 1000}",
            ),
            Limits::default(),
        );
        for (i, b) in [10, 20, 30, 40, 50, 60, 70, 80, 90].iter().enumerate() {
            assert!(feed(&mut c, 0, i as i64, ev("x", *b)).is_empty());
        }
        // Ten values, the 90th percentile (nearest rank) is the 9th: 1000 is the 10th.
        assert!(feed(&mut c, 0, 10, ev("x", 1000)).is_empty());
        assert_eq!(feed(&mut c, 0, 11, ev("x", 5000))[0].value, 1000.0);
    }

    #[test]
    fn temporal_in_any_order_and_ordered() {
        let rule = |kind: &str| {
            format!("title: C\nid: c\ncorrelation:\n  type: {kind}\n  rules: [a, b]\n  group-by: [user.name]\n  timespan: 10s\n")
        };
        let u = |n: &str| json!({"user.name": n});
        let mut c = setup(&rule("temporal"), Limits::default());
        assert!(feed(&mut c, 1, 0, u("root")).is_empty());
        assert!(feed(&mut c, 0, 5, u("alice")).is_empty(), "another user");
        assert_eq!(feed(&mut c, 0, 8, u("root")).len(), 1, "b then a");
        assert!(feed(&mut c, 1, 20, u("root")).is_empty());
        assert!(feed(&mut c, 0, 31, u("root")).is_empty(), "11 s apart");

        let mut c = setup(&rule("temporal_ordered"), Limits::default());
        assert!(feed(&mut c, 1, 0, u("root")).is_empty());
        assert!(
            feed(&mut c, 0, 1, u("root")).is_empty(),
            "b before a is not the order"
        );
        assert_eq!(feed(&mut c, 1, 2, u("root")).len(), 1, "a then b");
        // Out of order arrival, in order event times.
        let mut c = setup(&rule("temporal_ordered"), Limits::default());
        assert!(feed(&mut c, 1, 5, u("root")).is_empty());
        assert_eq!(feed(&mut c, 0, 3, u("root")).len(), 1);
    }

    #[test]
    fn chains_aliases_and_generate() {
        // The specification's example: failed logins, then a success, of the same user.
        let yaml = "title: Brute force then success\nid: top\ncorrelation:\n  type: temporal_ordered\n  rules: [many_failed, b]\n  group-by: [user]\n  timespan: 10m\n---\ntitle: Many failed\nid: mf\nname: many_failed\ncorrelation:\n  type: event_count\n  rules: [a]\n  group-by: [user]\n  timespan: 10m\n  condition: {gte: 3}\n  aliases: {}\n";
        let mut c = setup(yaml, Limits::default());
        let u = json!({"user": "root"});
        assert!(feed(&mut c, 1, 0, u.clone()).is_empty(), "success first");
        assert!(feed(&mut c, 0, 1, u.clone()).is_empty());
        assert!(feed(&mut c, 0, 2, u.clone()).is_empty());
        let f = feed(&mut c, 0, 3, u.clone());
        assert_eq!(f.len(), 1, "many_failed fires: {f:?}");
        let f = feed(&mut c, 1, 4, u.clone());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].correlation, 0);
        assert_eq!(f[0].key, [("user".to_owned(), "root".to_owned())]);
        let silent = c.silent_rules();
        assert!(silent.contains(&Source::Detection(0)) && silent.contains(&Source::Detection(1)));
        assert!(
            silent.contains(&Source::Correlation(1)) && !silent.contains(&Source::Correlation(0))
        );

        // Aliases: the same address as destination in one rule and source in the other.
        let yaml = "title: C\nid: c\ncorrelation:\n  type: temporal\n  rules: [a, b]\n  group-by: [ip]\n  timespan: 10s\n  generate: true\n  aliases:\n    ip:\n      a: destination.ip\n      b: source.ip\n";
        let mut c = setup(yaml, Limits::default());
        assert!(feed(&mut c, 0, 0, json!({"destination.ip": "10.1.1.1"})).is_empty());
        assert!(feed(&mut c, 1, 1, json!({"source.ip": "10.9.9.9"})).is_empty());
        let f = feed(&mut c, 1, 2, json!({"source.ip": "10.1.1.1"}));
        assert_eq!(f[0].key, [("ip".to_owned(), "10.1.1.1".to_owned())]);
        assert!(c.silent_rules().is_empty(), "generate: true");
    }

    #[test]
    fn a_sweep_drops_groups_no_window_reaches() {
        let limits = Limits {
            lateness_ns: 0,
            ..Limits::default()
        };
        let mut c = setup(&count("source.ip", "{gte: 3}"), limits);
        for i in 0..100 {
            feed(&mut c, 0, 0, json!({"source.ip": format!("10.0.0.{i}")}));
        }
        assert_eq!(c.counters().held, 100);
        // A minute later (the timespan), one more event: every other group is out of reach.
        feed(&mut c, 0, 61, json!({"source.ip": "10.9.9.9"}));
        c.sweep();
        assert_eq!(c.counters().held, 1);
        assert_eq!(c.groups.len(), 1);
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        let mut c = setup(&count("source.ip", "{gte: 2}"), Limits::default());
        let a = json!({"source.ip": "10.0.0.1"});
        assert!(c.observe(0, i64::MIN, &a, &a).is_empty());
        assert!(c.observe(0, i64::MAX, &a, &a).is_empty());
        assert!(c.observe(0, i64::MIN + 1, &a, &a).is_empty());
        assert_eq!(c.observe(0, i64::MAX, &a, &a).len(), 1);
    }

    #[test]
    fn held_events_stay_within_the_bound() {
        let limits = Limits {
            max_events: 100,
            ..Limits::default()
        };
        let mut c = setup(&count("source.ip", "{gte: 1000}"), limits);
        for i in 0..1000 {
            feed(
                &mut c,
                0,
                i / 100,
                json!({"source.ip": format!("10.0.{}.{}", i / 250, i % 250)}),
            );
        }
        let n = c.counters();
        assert!(n.held <= 100, "{n:?}");
        assert!(n.evicted_groups >= 900, "{n:?}");
    }

    #[test]
    fn bad_correlations_are_reported() {
        let detections = "title: A\nid: a\nlogsource: {product: x}\ndetection:\n  sel: {k: a}\n  condition: sel\n";
        let yaml = format!("{detections}---\ntitle: C\nid: c\ncorrelation:\n  type: event_count\n  rules: [nope]\n  group-by: [x]\n  timespan: 1m\n  condition: {{gte: 2}}\n---\ntitle: D\nid: d\ncorrelation:\n  type: value_count\n  rules: [a]\n  group-by: [x]\n  timespan: 1m\n  condition: {{gte: 2}}\n---\ntitle: L1\nid: l1\ncorrelation:\n  type: temporal\n  rules: [l2]\n  group-by: [x]\n  timespan: 1m\n---\ntitle: L2\nid: l2\ncorrelation:\n  type: temporal\n  rules: [l1]\n  group-by: [x]\n  timespan: 1m\n");
        let c = rsigma_parser::parse_sigma_yaml(&yaml).expect("yaml");
        let d: Vec<&SigmaRule> = c.rules.iter().collect();
        let corr: Vec<&CorrelationRule> = c.correlations.iter().collect();
        let (_, problems) = Correlator::new(&corr, &d, &Mapping::identity(), Limits::default());
        let text: Vec<String> = problems.iter().map(|(i, p)| format!("{i}: {p}")).collect();
        assert_eq!(
            text,
            [
                "0: rules: no rule with the id or name 'nope'",
                "1: condition: value_count needs a field",
                "2: its rules refer back to it (a loop of correlations)",
                "3: its rules refer back to it (a loop of correlations)",
            ]
        );
    }
}
