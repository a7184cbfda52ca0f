//! The compiled matcher: many rules over a batch of events at once.
//!
//! Every rule is taken apart into *atoms* — one matcher on one field (`user.name` ends with
//! `$`, `destination.port` ≥ 1024) — shared between rules that use the same one. For each
//! field, every atom that can be *indexed* is looked for over the whole column in one pass:
//!
//! * values a field must equal go into hash sets (ASCII-lowercased unless `cased`);
//! * text patterns (values with wildcards, `contains`/`startswith`/`endswith`, encodings, `re`)
//!   go into one Hyperscan database per field, scanned once over the column's values laid end
//!   to end one per line; a pattern Hyperscan cannot take (or every pattern, built without the
//!   `hyperscan` feature) is run with the `regex` crate on each value instead; `re` patterns go
//!   to Hyperscan in prefilter mode and every hit is confirmed with the `regex` crate, as is
//!   any hit of a pattern that is not exact in Hyperscan (`?`);
//! * numbers: one hash set of the exact values per field, and the comparisons;
//! * CIDR ranges: one hash table per prefix length.
//!
//! The rest (`null`, `exists`, `fieldref`, `neq`, booleans, time parts) is evaluated lazily,
//! only on the rows where a rule is evaluated; so is a common text (3 fixed bytes or fewer:
//! `:`, `GET`, `*`) that triggers no rule, which a scan would find on most rows only for
//! nothing. A rule is evaluated on a row only when one of
//! its *trigger* atoms hit there: atoms such that the rule cannot match without one of them
//! (the cheapest of the parts of an `and`, all of the parts of an `or`; a log source's
//! selection, which hits every event of the source, only when nothing else can). A rule with no
//! such atoms (only negations, only lazy matchers) is evaluated on every row. Where a rule is a
//! candidate but an indexed atom it needs did not hit (the other side of an `and`, its log
//! source's selection), it is passed over without evaluating its condition.
//!
//! Each atom keeps the plain matcher's own matcher, and whatever a scan does not settle is
//! settled by it, so the two matchers answer the same by construction wherever the scans find
//! every candidate; the differential tests check that they do.

use foldhash::{HashMap, HashMapExt};
use std::net::{IpAddr, Ipv4Addr};

use regex::Regex;
use rsigma_parser::{ConditionExpr, Modifier, Quantifier};

use crate::events::{Events, RowOf};
use crate::plain::{compare, Det, Item, Matcher, PlainRule, Row};

/// Many detection rules compiled together.
#[derive(Debug)]
pub struct Compiled {
    pub(crate) rules: Vec<CRule>,
    pub(crate) atoms: Vec<Atom>,
    fields: Vec<FieldIndex>,
    /// For each atom, the rules to evaluate where it hits.
    triggers: Vec<Vec<u32>>,
    /// Rules evaluated on every row.
    everywhere: Vec<u32>,
}

/// What [`Compiled::stats`] reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub rules: usize,
    pub atoms: usize,
    pub fields: usize,
    /// Text patterns in Hyperscan databases.
    pub hyperscan_patterns: usize,
    /// Text patterns run with the `regex` crate on every value.
    pub regex_patterns: usize,
    /// Whole values looked up in hash sets.
    pub exact_values: usize,
    /// Rules evaluated on every row.
    pub everywhere: usize,
}

#[derive(Debug)]
pub(crate) struct Atom {
    pub(crate) field: Option<String>,
    pub(crate) matcher: Matcher,
    indexed: bool,
}

#[derive(Debug)]
pub(crate) struct CRule {
    pub(crate) dets: Vec<CDet>,
    pub(crate) conditions: Vec<Cond>,
    /// Indexed atoms that hold wherever the rule matches: a row where one of them did not
    /// hit is passed over without evaluating the condition (a rule and its log source's
    /// selection, `a and not b` where `b` is costly).
    required: Vec<u32>,
    /// Detections that select a whole log source (added by the mapping): they hit a large
    /// share of the rows, so they trigger the rule only when nothing else can.
    broad: Vec<usize>,
}

#[derive(Debug)]
pub(crate) enum CDet {
    AllOf(Vec<CItem>),
    AnyOf(Vec<CDet>),
    And(Vec<CDet>),
}

#[derive(Debug)]
pub(crate) struct CItem {
    pub(crate) atoms: Vec<u32>,
    pub(crate) all: bool,
}

#[derive(Debug)]
pub(crate) enum Cond {
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    Det(usize),
    /// At least `need` of these detections.
    AtLeast(Vec<usize>, usize),
}

/// Everything indexed on one field.
#[derive(Debug, Default)]
struct FieldIndex {
    field: Option<String>,
    /// Hyperscan pattern id → (atom, whether a hit needs confirming).
    #[cfg(feature = "hyperscan")]
    hs: Option<Hs>,
    patterns: Vec<(u32, bool)>,
    /// Patterns run with the `regex` crate on every value: (atom, pattern).
    regexes: Vec<(u32, Regex)>,
    /// Atoms that match any text at all (`*`).
    any_text: Vec<u32>,
    /// Equality with a text: whole value → atoms; ASCII-lowercased values for caseless atoms.
    exact_caseless: HashMap<Box<[u8]>, Vec<u32>>,
    exact_cased: HashMap<Box<[u8]>, Vec<u32>>,
    /// The lengths of the exact texts: a value of another length is not looked up (nor
    /// lowercased for the lookup).
    exact_lengths: Lengths,
    /// Every text atom, for values Hyperscan does not scan (those holding a line break).
    text_atoms: Vec<u32>,
    /// Exact numbers (as f64 bits) → atoms.
    numbers: HashMap<u64, Vec<u32>>,
    compares: Vec<(Modifier, f64, u32)>,
    /// Per (IPv6?, prefix length): masked address → atoms. A list: walked for every address.
    cidrs: Vec<(bool, u8, HashMap<u128, Vec<u32>>)>,
}

/// A Hyperscan database (which has no `Debug` of its own).
#[cfg(feature = "hyperscan")]
struct Hs(hyperscan::BlockDatabase);

#[cfg(feature = "hyperscan")]
impl std::fmt::Debug for Hs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hyperscan database")
    }
}

/// A set of byte lengths: those under 256 one bit each, the longer ones together.
#[derive(Debug, Default, Clone)]
struct Lengths {
    short: [u64; 4],
    long: bool,
}

impl Lengths {
    fn insert(&mut self, len: usize) {
        match self.short.get_mut(len / 64) {
            Some(word) => *word |= 1 << (len % 64),
            None => self.long = true,
        }
    }

    fn may_hold(&self, len: usize) -> bool {
        self.short
            .get(len / 64)
            .map_or(self.long, |word| word & (1 << (len % 64)) != 0)
    }
}

impl FieldIndex {
    fn has_text(&self) -> bool {
        !self.patterns.is_empty()
            || !self.regexes.is_empty()
            || !self.any_text.is_empty()
            || !self.exact_caseless.is_empty()
            || !self.exact_cased.is_empty()
    }

    fn has_numbers(&self) -> bool {
        !self.numbers.is_empty() || !self.compares.is_empty()
    }
}

/// Per-thread working memory for [`Compiled::matches`].
#[derive(Default)]
pub struct Scratch {
    #[cfg(feature = "hyperscan")]
    hs: Option<hyperscan::Scratch>,
    buf: Vec<u8>,
    /// Start offset of each line of `buf`, and its row.
    starts: Vec<u32>,
    line_rows: Vec<u32>,
    /// (line, text) of values not in `buf` because they hold a line break.
    slow: Vec<(u32, String)>,
    /// (row << 32 | atom) of every indexed atom that holds, and the same grouped by row.
    hits: Vec<u64>,
    by_row: Vec<u64>,
    /// Per row: where its next hit goes in `by_row`.
    row_next: Vec<u32>,
    /// Per Hyperscan pattern of the field being scanned: the line it last hit, plus one.
    #[cfg(feature = "hyperscan")]
    seen: Vec<u32>,
    gen: u32,
    atom_stamp: Vec<u32>,
    lazy_stamp: Vec<u32>,
    lazy_value: Vec<bool>,
    rule_stamp: Vec<u32>,
    candidates: Vec<u32>,
    /// Rule conditions evaluated so far, and atom hits (one per atom and row).
    evaluated: u64,
    atom_hits: u64,
}

impl Scratch {
    /// (rule evaluations, indexed atom hits) since this scratch was made: what the trigger
    /// atoms let through, the main cost of a large rule set.
    pub fn work(&self) -> (u64, u64) {
        (self.evaluated, self.atom_hits)
    }
}

impl std::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scratch").finish_non_exhaustive()
    }
}

/// One rule that matched one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Hit {
    pub row: u32,
    /// The rule's position in the list given to [`Compiled::new`].
    pub rule: u32,
}

impl Compiled {
    /// Compiles rules (from [`crate::plain::compile`], fields already mapped).
    pub fn new(rules: Vec<PlainRule>) -> Compiled {
        let mut b = Builder::default();
        let mut crules = Vec::with_capacity(rules.len());
        for rule in rules {
            crules.push(b.rule(rule));
        }
        let mut triggers = vec![Vec::new(); b.atoms.len()];
        let mut everywhere = Vec::new();
        // Atoms a scan must find: the triggers, and every atom of a rule evaluated everywhere.
        let mut scanned = vec![false; b.atoms.len()];
        for (i, r) in crules.iter().enumerate() {
            match r.trigger(&b.atoms) {
                Some((atoms, _)) => {
                    for a in atoms {
                        scanned[a as usize] = true;
                        triggers[a as usize].push(i as u32);
                    }
                }
                None => {
                    everywhere.push(i as u32);
                    r.each_atom(&mut |a| scanned[a as usize] = true);
                }
            }
        }
        // A common text (`:`, `0`, `GET`, `*`) that triggers no rule is not scanned for: it
        // would hit most rows (and, in Hyperscan, report every occurrence) only to be read
        // where a rarer atom of the same rule already brought the rule to the row. It is
        // settled there, lazily, by its matcher.
        for (a, atom) in b.atoms.iter_mut().enumerate() {
            if atom.indexed
                && !scanned[a]
                && matches!(atom.matcher, Matcher::Text(_))
                && cost(&atom.matcher) >= COMMON
            {
                atom.indexed = false;
            }
        }
        for r in &mut crules {
            r.required.retain(|&a| b.atoms[a as usize].indexed);
        }
        for t in &mut triggers {
            t.sort_unstable();
            t.dedup();
        }
        let fields = b.index();
        Compiled {
            rules: crules,
            atoms: b.atoms,
            fields,
            triggers,
            everywhere,
        }
    }

    pub fn stats(&self) -> Stats {
        Stats {
            rules: self.rules.len(),
            atoms: self.atoms.len(),
            fields: self.fields.len(),
            hyperscan_patterns: self.fields.iter().map(|f| f.patterns.len()).sum(),
            regex_patterns: self.fields.iter().map(|f| f.regexes.len()).sum(),
            exact_values: self
                .fields
                .iter()
                .map(|f| f.exact_cased.len() + f.exact_caseless.len())
                .sum(),
            everywhere: self.everywhere.len(),
        }
    }

    /// Every field the rules read: scanned over a whole batch, or read where a rule is
    /// evaluated (`exists`, `null`, the other side of `fieldref`, …); sorted.
    pub fn fields(&self) -> Vec<&str> {
        let mut fields: Vec<&str> = self
            .atoms
            .iter()
            .flat_map(|a| {
                let other = match &a.matcher {
                    Matcher::FieldRef(other, ..) => Some(other.as_str()),
                    _ => None,
                };
                a.field.as_deref().into_iter().chain(other)
            })
            .collect();
        fields.sort_unstable();
        fields.dedup();
        fields
    }

    /// Whether some rule searches keywords (in every string of an event).
    pub fn keywords(&self) -> bool {
        self.atoms.iter().any(|a| a.field.is_none())
    }

    /// Working memory for one thread.
    pub fn scratch(&self) -> Scratch {
        #[cfg_attr(not(feature = "hyperscan"), allow(unused_mut))]
        let mut s = Scratch::default();
        #[cfg(feature = "hyperscan")]
        for f in &self.fields {
            if let Some(Hs(db)) = &f.hs {
                match &mut s.hs {
                    None => s.hs = db.alloc_scratch().ok(),
                    Some(scratch) => {
                        // A scratch too small for a database makes its scan fail; the scan
                        // then falls back to the regular expressions (see `scan_text`).
                        let _ = db.realloc_scratch(scratch);
                    }
                }
            }
        }
        s
    }

    /// Appends to `out` every (row, rule) that matches, rows in ascending order.
    pub fn matches(&self, events: &dyn Events, s: &mut Scratch, out: &mut Vec<Hit>) {
        s.hits.clear();
        for f in &self.fields {
            if f.has_text() {
                self.scan_text(f, events, s);
            }
            if let Some(name) = f.field.as_deref() {
                if f.has_numbers() {
                    scan_numbers(f, name, events, &mut s.hits);
                }
                if !f.cidrs.is_empty() {
                    scan_cidrs(f, name, events, &mut s.hits);
                }
            }
        }
        // Hits grouped by row, in one counting pass and one placing pass (a row's hits in
        // any order; the same atom twice is counted once below).
        let rows = events.rows();
        s.row_next.clear();
        s.row_next.resize(rows, 0);
        for &h in &s.hits {
            s.row_next[(h >> 32) as usize] += 1;
        }
        let mut sum = 0;
        for n in &mut s.row_next {
            (*n, sum) = (sum, sum + *n);
        }
        s.by_row.clear();
        s.by_row.resize(s.hits.len(), 0);
        for &h in &s.hits {
            let next = &mut s.row_next[(h >> 32) as usize];
            s.by_row[*next as usize] = h;
            *next += 1;
        }
        s.atom_stamp.resize(self.atoms.len(), 0);
        s.lazy_stamp.resize(self.atoms.len(), 0);
        s.lazy_value.resize(self.atoms.len(), false);
        s.rule_stamp.resize(self.rules.len(), 0);
        let hits = std::mem::take(&mut s.by_row);
        let mut at = 0;
        for row in 0..rows {
            let start = at;
            while at < hits.len() && (hits[at] >> 32) as usize == row {
                at += 1;
            }
            if at == start && self.everywhere.is_empty() {
                continue;
            }
            s.gen = s.gen.wrapping_add(1);
            if s.gen == 0 {
                s.atom_stamp.fill(0);
                s.lazy_stamp.fill(0);
                s.rule_stamp.fill(0);
                s.gen = 1;
            }
            let gen = s.gen;
            s.candidates.clear();
            for &h in &hits[start..at] {
                let atom = h as u32 as usize;
                if s.atom_stamp[atom] == gen {
                    continue;
                }
                s.atom_stamp[atom] = gen;
                s.atom_hits += 1;
                for &r in &self.triggers[atom] {
                    if s.rule_stamp[r as usize] != gen {
                        s.rule_stamp[r as usize] = gen;
                        s.candidates.push(r);
                    }
                }
            }
            s.candidates.extend_from_slice(&self.everywhere);
            s.candidates.sort_unstable();
            let row_of = RowOf { events, row };
            let candidates = std::mem::take(&mut s.candidates);
            for &r in &candidates {
                let rule = &self.rules[r as usize];
                if rule
                    .required
                    .iter()
                    .any(|&a| s.atom_stamp[a as usize] != gen)
                {
                    continue;
                }
                s.evaluated += 1;
                let mut ev = Eval {
                    atoms: &self.atoms,
                    row: row_of,
                    s,
                };
                if rule.matches(&mut ev) {
                    out.push(Hit {
                        row: row as u32,
                        rule: r,
                    });
                }
            }
            s.candidates = candidates;
        }
        s.by_row = hits;
    }

    /// Every text atom of a field that holds, over all rows.
    fn scan_text(&self, f: &FieldIndex, events: &dyn Events, s: &mut Scratch) {
        s.buf.clear();
        s.starts.clear();
        s.line_rows.clear();
        s.slow.clear();
        let (buf, starts, line_rows, slow, hits) = (
            &mut s.buf,
            &mut s.starts,
            &mut s.line_rows,
            &mut s.slow,
            &mut s.hits,
        );
        let mut lay = Lay {
            f,
            buf,
            starts,
            line_rows,
            slow,
            hits,
            lower: Vec::new(),
        };
        match f.field.as_deref().and_then(|n| events.text_column(n)) {
            // An Arrow column: walked here, without a call per value, and searched for line
            // breaks once instead of value by value.
            Some(a) => {
                let breaks = memchr::memchr(b'\n', a.value_data()).is_some();
                crate::batch::each_str(a, |row, text| lay.value(row, text, breaks));
            }
            // Value by value: laid out as if none held a line break, then, if the buffer has
            // more line ends than values, laid out again with each value checked.
            None => {
                let hits = lay.hits.len();
                events.each_text(f.field.as_deref(), &mut |row, text| {
                    lay.value(row, text, false)
                });
                if lay.buf.iter().filter(|&&b| b == b'\n').count() != lay.starts.len() {
                    lay.buf.clear();
                    lay.starts.clear();
                    lay.line_rows.clear();
                    lay.hits.truncate(hits);
                    events.each_text(f.field.as_deref(), &mut |row, text| {
                        lay.value(row, text, true)
                    });
                }
            }
        }
        if s.starts.is_empty() {
            return;
        }
        #[cfg_attr(not(feature = "hyperscan"), allow(unused_mut))]
        let mut scanned = false;
        #[cfg(feature = "hyperscan")]
        if let (Some(Hs(db)), Some(scratch)) = (&f.hs, &s.hs) {
            let (buf, starts, line_rows, slow, hits, seen) = (
                &s.buf,
                &s.starts,
                &s.line_rows,
                &s.slow,
                &mut s.hits,
                &mut s.seen,
            );
            // The line a match ends on: matches come in order of their end, so the line is
            // found by walking forward from the previous one (searched for if one does not).
            let mut cursor = 0;
            let mut line_of = |end: u64| {
                let end = end as u32;
                if starts[cursor] > end {
                    cursor = starts.partition_point(|&s| s <= end) - 1;
                }
                while starts.get(cursor + 1).is_some_and(|&s| s <= end) {
                    cursor += 1;
                }
                cursor
            };
            // The line each pattern last hit, plus one: a pattern that hits a value several
            // times (`contains` of a repeated word) is reported once.
            seen.clear();
            seen.resize(f.patterns.len(), 0);
            scanned = db
                .scan(buf, scratch, |id, _from, to, _flags| {
                    let line = line_of(to);
                    let last = &mut seen[id as usize];
                    if *last == line as u32 + 1 {
                        return hyperscan::Matching::Continue;
                    }
                    *last = line as u32 + 1;
                    let (atom, confirm) = f.patterns[id as usize];
                    if !slow.is_empty()
                        && slow.binary_search_by_key(&(line as u32), |s| s.0).is_ok()
                    {
                        return hyperscan::Matching::Continue;
                    }
                    if confirm {
                        let end = starts.get(line + 1).map_or(buf.len(), |&e| e as usize) - 1;
                        let text = std::str::from_utf8(&buf[starts[line] as usize..end]);
                        if !text.is_ok_and(|t| self.atoms[atom as usize].matcher.text(t)) {
                            return hyperscan::Matching::Continue;
                        }
                    }
                    hits.push(u64::from(line_rows[line]) << 32 | u64::from(atom));
                    hyperscan::Matching::Continue
                })
                .is_ok();
        }
        // Patterns Hyperscan does not hold (or all of them, when the scan could not run).
        let (buf, starts, line_rows) = (&s.buf, &s.starts, &s.line_rows);
        let mut regexes: Vec<(u32, &Regex)> = f.regexes.iter().map(|(a, r)| (*a, r)).collect();
        if !scanned && !f.patterns.is_empty() {
            regexes.extend(
                f.text_atoms
                    .iter()
                    .flat_map(|&a| self.text_regexes(a).map(move |r| (a, r))),
            );
        }
        if !regexes.is_empty() {
            for (line, &start) in starts.iter().enumerate() {
                let end = starts.get(line + 1).map_or(buf.len(), |&e| e as usize) - 1;
                let Ok(text) = std::str::from_utf8(&buf[start as usize..end]) else {
                    continue;
                };
                if s.slow.binary_search_by_key(&(line as u32), |s| s.0).is_ok() {
                    continue;
                }
                for &(atom, re) in &regexes {
                    if re.is_match(text) {
                        s.hits
                            .push(u64::from(line_rows[line]) << 32 | u64::from(atom));
                    }
                }
            }
        }
        // Values with a line break, which the scan buffer holds as empty lines.
        for (line, text) in &s.slow {
            for &a in &f.text_atoms {
                if self.atoms[a as usize].matcher.text(text) {
                    s.hits
                        .push(u64::from(s.line_rows[*line as usize]) << 32 | u64::from(a));
                }
            }
        }
    }

    fn text_regexes(&self, atom: u32) -> impl Iterator<Item = &Regex> {
        let (text, re): (&[_], Option<&Regex>) = match &self.atoms[atom as usize].matcher {
            Matcher::Text(p) => (p, None),
            Matcher::Regex(r) => (&[], Some(&r.regex)),
            _ => (&[], None),
        };
        text.iter()
            .filter(|p| p.hs.is_some())
            .filter_map(|p| p.regex())
            .chain(re)
    }
}

/// Lays a field's values out one per line for its scan, looking each up among the exact texts
/// on the way.
struct Lay<'a> {
    f: &'a FieldIndex,
    buf: &'a mut Vec<u8>,
    starts: &'a mut Vec<u32>,
    line_rows: &'a mut Vec<u32>,
    slow: &'a mut Vec<(u32, String)>,
    hits: &'a mut Vec<u64>,
    /// The value lowercased, for the caseless exact texts.
    lower: Vec<u8>,
}

impl Lay<'_> {
    /// One value of `row`; `breaks`: whether it may hold a line break.
    #[inline(always)]
    fn value(&mut self, row: usize, text: &str, breaks: bool) {
        let f = self.f;
        let line = self.starts.len() as u32;
        self.starts.push(self.buf.len() as u32);
        self.line_rows.push(row as u32);
        let row = (row as u64) << 32;
        for &a in &f.any_text {
            self.hits.push(row | u64::from(a));
        }
        if f.exact_lengths.may_hold(text.len()) {
            if !f.exact_cased.is_empty() {
                if let Some(atoms) = f.exact_cased.get(text.as_bytes()) {
                    self.hits.extend(atoms.iter().map(|&a| row | u64::from(a)));
                }
            }
            if !f.exact_caseless.is_empty() {
                self.lower.clear();
                self.lower
                    .extend(text.bytes().map(|b| b.to_ascii_lowercase()));
                if let Some(atoms) = f.exact_caseless.get(self.lower.as_slice()) {
                    self.hits.extend(atoms.iter().map(|&a| row | u64::from(a)));
                }
            }
        }
        if breaks && memchr::memchr(b'\n', text.as_bytes()).is_some() {
            self.slow.push((line, text.to_owned()));
        } else {
            self.buf.extend_from_slice(text.as_bytes());
        }
        self.buf.push(b'\n');
    }
}

fn scan_numbers(f: &FieldIndex, name: &str, events: &dyn Events, hits: &mut Vec<u64>) {
    events.each_number(name, &mut |row, x| {
        let row = (row as u64) << 32;
        if let Some(atoms) = f.numbers.get(&number_key(x)) {
            hits.extend(atoms.iter().map(|&a| row | u64::from(a)));
        }
        for &(op, n, a) in &f.compares {
            if compare(op, x, n) {
                hits.push(row | u64::from(a));
            }
        }
    });
}

fn scan_cidrs(f: &FieldIndex, name: &str, events: &dyn Events, hits: &mut Vec<u64>) {
    events.each_text(Some(name), &mut |row, text| {
        let Some(ip) = parse_ip(text) else {
            return;
        };
        let (v6, bits) = match ip {
            IpAddr::V4(a) => (false, u128::from(u32::from(a))),
            IpAddr::V6(a) => (true, u128::from(a)),
        };
        let width = if v6 { 128 } else { 32 };
        for (is6, len, table) in &f.cidrs {
            if *is6 != v6 {
                continue;
            }
            if let Some(atoms) = table.get(&mask(bits, *len, width)) {
                hits.extend(atoms.iter().map(|&a| (row as u64) << 32 | u64::from(a)));
            }
        }
    });
}

/// A value's address, as `str::parse::<IpAddr>` reads the trimmed text. Dotted IPv4, nearly
/// every value a CIDR scan meets, is read directly (the standard parser's general path was 8%
/// of the NetFlow pipeline's CPU); anything else goes to the standard parser.
fn parse_ip(text: &str) -> Option<IpAddr> {
    match dotted_quad(text.as_bytes()) {
        Some(a) => Some(IpAddr::V4(Ipv4Addr::from(a))),
        None => text.trim().parse().ok(),
    }
}

/// `a.b.c.d`, each part 0–255 in decimal without a leading zero, which is what the standard
/// parser accepts for IPv4; `None` for anything else.
fn dotted_quad(b: &[u8]) -> Option<u32> {
    if !(7..=15).contains(&b.len()) {
        return None;
    }
    let (mut out, mut i) = (0u32, 0);
    for part in 0..4 {
        if part > 0 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let start = i;
        let mut n = 0u32;
        while i - start < 3 {
            match b.get(i) {
                Some(d) if d.is_ascii_digit() => n = n * 10 + u32::from(d - b'0'),
                _ => break,
            }
            i += 1;
        }
        if i == start || n > 255 || (i - start > 1 && b[start] == b'0') {
            return None;
        }
        out = out << 8 | n;
    }
    (i == b.len()).then_some(out)
}

fn mask(bits: u128, len: u8, width: u8) -> u128 {
    let keep = u32::from(len);
    let drop = u32::from(width) - keep;
    if keep == 0 {
        0
    } else {
        (bits >> drop) << drop
    }
}

fn number_key(x: f64) -> u64 {
    (x + 0.0).to_bits()
}

/// Evaluating one rule's condition on one row.
struct Eval<'a, 'b> {
    atoms: &'a [Atom],
    row: RowOf<'b>,
    s: &'a mut Scratch,
}

impl Eval<'_, '_> {
    fn atom(&mut self, a: u32) -> bool {
        let i = a as usize;
        let atom = &self.atoms[i];
        if atom.indexed {
            return self.s.atom_stamp[i] == self.s.gen;
        }
        if self.s.lazy_stamp[i] == self.s.gen {
            return self.s.lazy_value[i];
        }
        let v = match &atom.field {
            None => self.row.any_keyword_text(&mut |t| atom.matcher.text(t)),
            Some(f) => {
                match &atom.matcher {
                    // Presence alone: no value to build.
                    Matcher::Null => !self.row.has(f),
                    Matcher::Exists(want) => self.row.has(f) == *want,
                    m => {
                        let value = self.row.field(f);
                        m.matches(value.as_deref(), &self.row)
                    }
                }
            }
        };
        self.s.lazy_stamp[i] = self.s.gen;
        self.s.lazy_value[i] = v;
        v
    }
}

impl CRule {
    fn matches(&self, ev: &mut Eval<'_, '_>) -> bool {
        self.conditions.iter().any(|c| self.cond(c, ev))
    }

    /// Calls `f` with every atom of the rule.
    fn each_atom(&self, f: &mut dyn FnMut(u32)) {
        fn det(d: &CDet, f: &mut dyn FnMut(u32)) {
            match d {
                CDet::AllOf(items) => items.iter().flat_map(|i| &i.atoms).for_each(|&a| f(a)),
                CDet::AnyOf(ds) | CDet::And(ds) => ds.iter().for_each(|d| det(d, f)),
            }
        }
        self.dets.iter().for_each(|d| det(d, f));
    }

    fn cond(&self, c: &Cond, ev: &mut Eval<'_, '_>) -> bool {
        match c {
            Cond::And(v) => v.iter().all(|c| self.cond(c, ev)),
            Cond::Or(v) => v.iter().any(|c| self.cond(c, ev)),
            Cond::Not(c) => !self.cond(c, ev),
            Cond::Det(d) => self.dets[*d].matches(ev),
            Cond::AtLeast(ds, need) => {
                let mut hits = 0;
                for d in ds {
                    if self.dets[*d].matches(ev) {
                        hits += 1;
                        if hits >= *need {
                            return true;
                        }
                    }
                }
                hits >= *need
            }
        }
    }

    /// Indexed atoms that hold wherever this condition holds.
    fn cond_required(&self, c: &Cond, atoms: &[Atom]) -> Vec<u32> {
        match c {
            Cond::And(v) => v
                .iter()
                .flat_map(|c| self.cond_required(c, atoms))
                .collect(),
            Cond::Or(v) => v
                .iter()
                .map(|c| self.cond_required(c, atoms))
                .reduce(intersect)
                .unwrap_or_default(),
            Cond::Not(_) => Vec::new(),
            Cond::Det(d) => self.dets[*d].required(atoms),
            Cond::AtLeast(ds, need) if *need > 0 && *need >= ds.len() => ds
                .iter()
                .flat_map(|d| self.dets[*d].required(atoms))
                .collect(),
            Cond::AtLeast(..) => Vec::new(),
        }
    }

    /// Atoms of which at least one holds wherever the rule matches, and their cost; `None`
    /// when there are none (the rule must be evaluated everywhere).
    fn trigger(&self, atoms: &[Atom]) -> Option<Trigger> {
        self.conditions
            .iter()
            .map(|c| self.cond_trigger(c, atoms))
            .try_fold((Vec::new(), 0), |acc, t| union(acc, t?))
    }

    fn cond_trigger(&self, c: &Cond, atoms: &[Atom]) -> Option<Trigger> {
        match c {
            Cond::And(v) => cheapest(v.iter().map(|c| self.cond_trigger(c, atoms))),
            Cond::Or(v) => v
                .iter()
                .map(|c| self.cond_trigger(c, atoms))
                .try_fold((Vec::new(), 0), |acc, t| union(acc, t?)),
            Cond::Not(_) => None,
            Cond::Det(d) if self.broad.contains(d) => self.dets[*d]
                .trigger(atoms)
                .map(|(a, cost)| (a, cost.saturating_add(BROAD))),
            Cond::Det(d) => self.dets[*d].trigger(atoms),
            Cond::AtLeast(ds, need) if *need == 0 => None,
            Cond::AtLeast(ds, need) if *need >= ds.len() => {
                cheapest(ds.iter().map(|d| self.dets[*d].trigger(atoms)))
            }
            Cond::AtLeast(ds, _) => ds
                .iter()
                .map(|d| self.dets[*d].trigger(atoms))
                .try_fold((Vec::new(), 0), |acc, t| union(acc, t?)),
        }
    }
}

/// The atoms in both lists.
fn intersect(a: Vec<u32>, b: Vec<u32>) -> Vec<u32> {
    a.into_iter().filter(|x| b.contains(x)).collect()
}

fn union(mut a: Trigger, b: Trigger) -> Option<Trigger> {
    a.0.extend(b.0);
    Some((a.0, a.1.saturating_add(b.1)))
}

fn cheapest(ts: impl Iterator<Item = Option<Trigger>>) -> Option<Trigger> {
    ts.flatten().min_by_key(|t| t.1)
}

impl CDet {
    fn matches(&self, ev: &mut Eval<'_, '_>) -> bool {
        match self {
            CDet::AllOf(items) => items.iter().all(|i| {
                if i.all {
                    i.atoms.iter().all(|&a| ev.atom(a))
                } else {
                    i.atoms.iter().any(|&a| ev.atom(a))
                }
            }),
            CDet::AnyOf(ds) => ds.iter().any(|d| d.matches(ev)),
            CDet::And(ds) => ds.iter().all(|d| d.matches(ev)),
        }
    }

    /// Indexed atoms that hold wherever this detection does.
    fn required(&self, atoms: &[Atom]) -> Vec<u32> {
        match self {
            CDet::AllOf(items) => items
                .iter()
                .flat_map(|i| {
                    let indexed = i
                        .atoms
                        .iter()
                        .copied()
                        .filter(|&a| atoms[a as usize].indexed);
                    if i.all || i.atoms.len() == 1 {
                        indexed.collect()
                    } else {
                        Vec::new()
                    }
                })
                .collect(),
            CDet::AnyOf(ds) => ds
                .iter()
                .map(|d| d.required(atoms))
                .reduce(intersect)
                .unwrap_or_default(),
            CDet::And(ds) => ds.iter().flat_map(|d| d.required(atoms)).collect(),
        }
    }

    fn trigger(&self, atoms: &[Atom]) -> Option<Trigger> {
        match self {
            CDet::AllOf(items) => cheapest(items.iter().map(|i| {
                let one = |&a: &u32| {
                    let atom = &atoms[a as usize];
                    atom.indexed.then(|| (vec![a], cost(&atom.matcher)))
                };
                if i.all {
                    cheapest(i.atoms.iter().map(one))
                } else {
                    i.atoms
                        .iter()
                        .map(one)
                        .try_fold((Vec::new(), 0), |acc, t| union(acc, t?))
                }
            })),
            CDet::AnyOf(ds) => ds
                .iter()
                .map(|d| d.trigger(atoms))
                .try_fold((Vec::new(), 0), |acc, t| union(acc, t?)),
            CDet::And(ds) => cheapest(ds.iter().map(|d| d.trigger(atoms))),
        }
    }
}

/// Atoms of which one holds wherever a rule matches, and what evaluating the rule wherever
/// they hit is likely to cost (see [`cost`]).
type Trigger = (Vec<u32>, u64);

/// What a log source's selection adds to the cost of triggering on it: more than any other
/// choice costs.
const BROAD: u64 = 1 << 48;

/// How many rows an atom is likely to hit, as a relative weight, for choosing the atoms that
/// trigger a rule (the cheapest side of an `and`): values that can match any text hit the
/// most; a text hits fewer rows the longer its fixed part is, by a factor of 8 a byte up to
/// 10 bytes (`cs-method: GET` hits half of a web server's requests, `contains: /human2.aspx`
/// nearly none, so a rule with both is evaluated where the second hits). Numbers and CIDR
/// blocks weigh as a short text (status codes, ports and private ranges repeat).
fn cost(m: &Matcher) -> u64 {
    match m {
        Matcher::Text(p) if p.iter().any(|p| p.hs.is_none()) => 1 << 33,
        Matcher::Text(p) => p
            .iter()
            .fold(0u64, |sum, p| sum.saturating_add(text_cost(p.fixed))),
        Matcher::Number(_) | Matcher::Cidr(..) => text_cost(3),
        Matcher::Regex(_) => text_cost(5),
        _ => 1 << 33,
    }
}

/// The weight of a text with `fixed` bytes that hold no wildcard (see [`cost`]).
const fn text_cost(fixed: usize) -> u64 {
    let fixed = if fixed < 10 { fixed } else { 10 };
    1 << (3 * (10 - fixed))
}

/// From this weight on (a text of 3 fixed bytes or fewer, or one that matches any text), a
/// text atom is common enough that it is scanned for only when it triggers a rule.
const COMMON: u64 = text_cost(3);

/// Collects atoms (deduplicated) while rules are compiled.
#[derive(Default)]
struct Builder {
    atoms: Vec<Atom>,
    by_key: HashMap<String, u32>,
}

impl Builder {
    fn rule(&mut self, rule: PlainRule) -> CRule {
        let mut names: Vec<String> = rule.detections.keys().cloned().collect();
        names.sort_unstable();
        let index: HashMap<&str, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let conditions = rule
            .conditions
            .iter()
            .map(|c| condition(c, &rule, &index))
            .collect();
        let mut detections = rule.detections;
        let dets = names
            .iter()
            .map(|n| {
                let d = detections.remove(n).unwrap_or(Det::AllOf(Vec::new()));
                self.det(d)
            })
            .collect();
        let broad = names
            .iter()
            .enumerate()
            .filter(|(_, n)| n.starts_with(crate::mapping::LOGSOURCE))
            .map(|(i, _)| i)
            .collect();
        let mut rule = CRule {
            dets,
            conditions,
            required: Vec::new(),
            broad,
        };
        let mut required = rule
            .conditions
            .iter()
            .map(|c| rule.cond_required(c, &self.atoms))
            .reduce(intersect)
            .unwrap_or_default();
        required.sort_unstable();
        required.dedup();
        rule.required = required;
        rule
    }

    fn det(&mut self, d: Det) -> CDet {
        match d {
            Det::AllOf(items) => CDet::AllOf(items.into_iter().map(|i| self.item(i)).collect()),
            Det::AnyOf(ds) => CDet::AnyOf(ds.into_iter().map(|d| self.det(d)).collect()),
            Det::And(ds) => CDet::And(ds.into_iter().map(|d| self.det(d)).collect()),
        }
    }

    fn item(&mut self, i: Item) -> CItem {
        let Item {
            field,
            matchers,
            all,
        } = i;
        let atoms = matchers
            .into_iter()
            .map(|m| self.atom(field.clone(), m))
            .collect();
        CItem { atoms, all }
    }

    fn atom(&mut self, field: Option<String>, matcher: Matcher) -> u32 {
        // The matcher's debug text holds everything it compares with (patterns with their
        // flags, numbers, networks), so equal keys are equal atoms.
        let key = format!("{field:?}\u{0}{matcher:?}");
        if let Some(&a) = self.by_key.get(&key) {
            return a;
        }
        let indexed = match (&field, &matcher) {
            (_, Matcher::Text(_) | Matcher::Regex(_)) => true,
            (Some(_), Matcher::Number(n)) => !n.is_nan(),
            (Some(_), Matcher::Cidr(..)) => true,
            (Some(_), Matcher::Compare(op, _)) => *op != Modifier::Neq,
            _ => false,
        };
        let a = self.atoms.len() as u32;
        self.atoms.push(Atom {
            field,
            matcher,
            indexed,
        });
        self.by_key.insert(key, a);
        a
    }

    /// The per-field indexes of every indexed atom.
    fn index(&self) -> Vec<FieldIndex> {
        let mut fields: Vec<FieldIndex> = Vec::new();
        let mut by_name: HashMap<Option<&str>, usize> = HashMap::new();
        for (a, atom) in self.atoms.iter().enumerate() {
            if !atom.indexed {
                continue;
            }
            let a = a as u32;
            let i = *by_name.entry(atom.field.as_deref()).or_insert_with(|| {
                fields.push(FieldIndex {
                    field: atom.field.clone(),
                    ..FieldIndex::default()
                });
                fields.len() - 1
            });
            let f = &mut fields[i];
            match &atom.matcher {
                Matcher::Text(patterns) => {
                    f.text_atoms.push(a);
                    if patterns.iter().any(|p| p.hs.is_none()) {
                        f.any_text.push(a);
                    }
                }
                Matcher::Regex(_) => f.text_atoms.push(a),
                Matcher::Number(n) => f.numbers.entry(number_key(*n)).or_default().push(a),
                Matcher::Compare(op, n) => f.compares.push((*op, *n, a)),
                Matcher::Cidr(net, len) => {
                    let (v6, bits, width) = match net {
                        IpAddr::V4(n) => (false, u128::from(u32::from(*n)), 32),
                        IpAddr::V6(n) => (true, u128::from(*n), 128),
                    };
                    let t = match f.cidrs.iter().position(|t| (t.0, t.1) == (v6, *len)) {
                        Some(t) => t,
                        None => {
                            f.cidrs.push((v6, *len, HashMap::new()));
                            f.cidrs.len() - 1
                        }
                    };
                    f.cidrs[t]
                        .2
                        .entry(mask(bits, *len, width))
                        .or_default()
                        .push(a);
                }
                _ => {}
            }
        }
        for f in &mut fields {
            self.build_text(f);
        }
        fields
    }

    /// Puts a field's text patterns into Hyperscan, or (what it rejects, or everything without
    /// the `hyperscan` feature) into the list run with the `regex` crate.
    fn build_text(&self, f: &mut FieldIndex) {
        // Each pattern: (atom, confirm hits?, Hyperscan text, the pattern, caseless?).
        let mut texts: Vec<(u32, bool, &str, Source<'_>, bool)> = Vec::new();
        for &a in &f.text_atoms {
            match &self.atoms[a as usize].matcher {
                Matcher::Text(ps) => {
                    for p in ps {
                        if let Some(lit) = &p.literal {
                            let map = if p.caseless {
                                &mut f.exact_caseless
                            } else {
                                &mut f.exact_cased
                            };
                            map.entry(lit.as_bytes().into()).or_default().push(a);
                            f.exact_lengths.insert(lit.len());
                        } else if let Some(hs) = &p.hs {
                            texts.push((a, !p.exact, hs, Source::Text(p), p.caseless));
                        }
                    }
                }
                Matcher::Regex(r) => texts.push((a, true, &r.pcre, Source::Regex(&r.regex), false)),
                _ => {}
            }
        }
        #[cfg(feature = "hyperscan")]
        {
            let mut take: Vec<bool> = vec![true; texts.len()];
            loop {
                let chosen: Vec<usize> = (0..texts.len()).filter(|&i| take[i]).collect();
                if chosen.is_empty() {
                    break;
                }
                match hyperscan_db(&chosen, &texts, &self.atoms) {
                    Ok(db) => {
                        f.hs = Some(Hs(db));
                        f.patterns = chosen.iter().map(|&i| (texts[i].0, texts[i].1)).collect();
                        break;
                    }
                    Err(Some(bad)) => take[chosen[bad]] = false,
                    Err(None) => {
                        take.fill(false);
                    }
                }
            }
            for (i, t) in texts.iter().enumerate() {
                if !take[i] {
                    tracing::debug!(
                        field = f.field.as_deref().unwrap_or("(keywords)"),
                        pattern = t.2,
                        "Hyperscan does not take this pattern: the regex crate runs it on \
                         every value of the field"
                    );
                    if let Some(re) = t.3.regex() {
                        f.regexes.push((t.0, re));
                    }
                }
            }
        }
        #[cfg(not(feature = "hyperscan"))]
        for t in &texts {
            if let Some(re) = t.3.regex() {
                f.regexes.push((t.0, re));
            }
        }
    }
}

/// Where a text pattern comes from: a rule's text value, or a regular expression (`re`).
#[derive(Clone, Copy)]
enum Source<'a> {
    Text(&'a crate::plain::TextPattern),
    Regex(&'a Regex),
}

impl Source<'_> {
    fn regex(self) -> Option<Regex> {
        match self {
            Source::Text(p) => p.regex().cloned(),
            Source::Regex(r) => Some(r.clone()),
        }
    }

    #[cfg(feature = "hyperscan")]
    fn allows_empty(self) -> bool {
        match self {
            Source::Text(p) => p.empty,
            Source::Regex(r) => r.is_match(""),
        }
    }
}

/// One Hyperscan database of the chosen patterns, or the index (in `chosen`) of a pattern it
/// rejected (`None`: a failure no one pattern explains).
#[cfg(feature = "hyperscan")]
fn hyperscan_db(
    chosen: &[usize],
    texts: &[(u32, bool, &str, Source<'_>, bool)],
    atoms: &[Atom],
) -> Result<hyperscan::BlockDatabase, Option<usize>> {
    use hyperscan::prelude::*;
    let patterns: Patterns = chosen
        .iter()
        .enumerate()
        .map(|(id, &i)| {
            let (a, _, text, re, caseless) = texts[i];
            let is_re = matches!(atoms[a as usize].matcher, Matcher::Regex(_));
            let mut flags = CompileFlags::MULTILINE;
            if is_re {
                // PCRE's classes: ASCII `\w`, `\d`, `\s`, `\b` (no UCP), as the regex crate is given.
                flags |= CompileFlags::PREFILTER | CompileFlags::UTF8;
            } else if caseless {
                flags |= CompileFlags::CASELESS;
            }
            if re.allows_empty() {
                flags |= CompileFlags::ALLOWEMPTY;
            }
            Pattern {
                expression: text.to_owned(),
                flags,
                id: Some(id),
                ext: Default::default(),
                som: None,
            }
        })
        .collect();
    let key: String = patterns
        .0
        .iter()
        .map(|p| format!("{:?} {:x} {}\0", p.id, p.flags.bits(), p.expression))
        .collect();
    crate::hscache::load_or_build(&key, || patterns.build::<hyperscan::BlockMode>()).map_err(|e| {
        match e {
            hyperscan::Error::Hyperscan(hyperscan::HsError::CompileError(c)) => c.expression(),
            _ => None,
        }
    })
}

fn condition(c: &ConditionExpr, rule: &PlainRule, index: &HashMap<&str, usize>) -> Cond {
    let all = |v: &[ConditionExpr]| v.iter().map(|c| condition(c, rule, index)).collect();
    match c {
        ConditionExpr::And(v) => Cond::And(all(v)),
        ConditionExpr::Or(v) => Cond::Or(all(v)),
        ConditionExpr::Not(c) => Cond::Not(Box::new(condition(c, rule, index))),
        // A name the rule does not define never matches (`check` rejects such rules).
        ConditionExpr::Identifier(id) => match index.get(id.as_str()) {
            Some(&d) => Cond::Det(d),
            None => Cond::Or(Vec::new()),
        },
        ConditionExpr::Selector {
            quantifier,
            pattern,
        } => {
            let ds: Vec<usize> = rule
                .selected(pattern)
                .into_iter()
                .filter_map(|n| index.get(n).copied())
                .collect();
            let need = match quantifier {
                Quantifier::Any => 1,
                Quantifier::All => ds.len(),
                Quantifier::Count(n) => usize::try_from(*n).unwrap_or(usize::MAX),
            };
            Cond::AtLeast(ds, need)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lines::JsonLines;
    use proptest::prelude::*;
    use serde_json::json;

    /// What the standard parser makes of a text, the reference `parse_ip` must agree with.
    fn std_ip(text: &str) -> Option<IpAddr> {
        text.trim().parse().ok()
    }

    #[test]
    fn addresses_read_as_the_standard_parser_reads_them() {
        for text in [
            "0.0.0.0",
            "10.1.2.3",
            "255.255.255.255",
            "192.168.001.1",
            "01.2.3.4",
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.",
            "1.2.3.4.5",
            "1..2.3",
            ".1.2.3.4",
            "1.2.3.1000",
            "1.2.3.-1",
            "1.2.3.+1",
            " 10.0.0.1 ",
            "10.0.0.1\n",
            "::1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
            "1234567",
            "",
            "host-1",
        ] {
            assert_eq!(parse_ip(text), std_ip(text), "{text:?}");
        }
    }

    proptest! {
        #[test]
        fn dotted_quads_agree_with_the_standard_parser(
            text in "[0-9.]{0,17}",
            parts in proptest::array::uniform4(0u32..300),
            zeros in proptest::array::uniform4(0usize..3),
        ) {
            prop_assert_eq!(parse_ip(&text), std_ip(&text));
            let quad = parts
                .iter()
                .zip(zeros)
                .map(|(p, z)| format!("{}{p}", "0".repeat(z)))
                .collect::<Vec<_>>()
                .join(".");
            prop_assert_eq!(parse_ip(&quad), std_ip(&quad));
        }
    }

    #[test]
    fn lengths_hold_what_was_inserted_and_nothing_else() {
        let mut l = Lengths::default();
        assert!(!l.may_hold(0) && !l.may_hold(300));
        for len in [0, 5, 63, 64, 255] {
            l.insert(len);
        }
        for len in [0, 5, 63, 64, 255] {
            assert!(l.may_hold(len), "{len}");
        }
        for len in [1, 62, 65, 128, 254, 256, 10_000] {
            assert!(!l.may_hold(len), "{len}");
        }
        l.insert(1000);
        assert!(l.may_hold(256) && l.may_hold(10_000) && !l.may_hold(65));
    }

    /// A rule is passed over on a row where an atom it needs did not hit, whichever atom
    /// brought it there; the answers stay the same.
    #[test]
    fn a_rule_is_not_evaluated_where_an_atom_it_needs_did_not_hit() {
        // (Texts of 4 fixed bytes: common ones are not scanned for unless they trigger.)
        let yaml = "title: t\nlogsource: {}\ndetection:\n  sel:\n    a|contains: xxxx\n  ls:\n    b: yyyy\n  costly:\n    c|exists: true\n  condition: sel and ls and not costly\n";
        let c = rsigma_parser::parse_sigma_yaml(yaml).expect("yaml");
        let compiled = Compiled::new(vec![crate::plain::compile(&c.rules[0]).expect("rule")]);
        let events = [
            json!({"a": "xxxxx", "b": "z"}),
            json!({"a": "xxxxx", "b": "yyyy"}),
            json!({"a": "xxxxx", "b": "yyyy", "c": 1}),
            json!({"a": "q", "b": "yyyy"}),
        ];
        let lines = JsonLines::of(&events, &compiled.fields(), compiled.keywords());
        let mut s = compiled.scratch();
        let mut out = Vec::new();
        compiled.matches(&lines, &mut s, &mut out);
        let rows: Vec<u32> = out.iter().map(|h| h.row).collect();
        assert_eq!(rows, [1]);
        // Rows 1 and 2 evaluated; row 0 (no `ls`) and row 3 (no trigger) passed over.
        assert_eq!(s.work().0, 2);
    }

    /// A rule is triggered by its own atoms, not by its log source's selection (which hits
    /// every event of that source), unless it has nothing else.
    #[test]
    fn log_source_selections_trigger_only_rules_made_of_negations() {
        let mapping = crate::Mapping::parse(
            "[[logsource]]\ncategory = \"fw\"\nevents = { \"ls\" = \"fw\" }\n",
        )
        .expect("mapping");
        let rule = |detection: &str| {
            let yaml = format!("title: t\nlogsource: {{category: fw}}\ndetection:\n{detection}");
            let c = rsigma_parser::parse_sigma_yaml(&yaml).expect("yaml");
            let plain = crate::plain::compile(&c.rules[0]).expect("rule");
            mapping.apply(&c.rules[0], plain).expect("covered").0
        };
        let compiled = Compiled::new(vec![
            rule("  sel_a:\n    a: 1\n  sel_b:\n    b: 2\n  condition: 1 of sel_*\n"),
            rule("  sel:\n    a: 1\n  condition: not sel\n"),
        ]);
        let events = [
            json!({"ls": "fw", "a": 1}),
            json!({"ls": "fw", "a": 3}),
            json!({"ls": "fw", "b": 4}),
            json!({"ls": "other", "a": 5}),
        ];
        let lines = JsonLines::of(&events, &compiled.fields(), compiled.keywords());
        let mut s = compiled.scratch();
        let mut out = Vec::new();
        compiled.matches(&lines, &mut s, &mut out);
        let got: Vec<(u32, u32)> = out.iter().map(|h| (h.row, h.rule)).collect();
        assert_eq!(got, [(0, 0), (1, 1), (2, 1)]);
        // The first rule on row 0 only; the second on the three rows of its log source.
        assert_eq!(s.work().0, 4);
    }

    /// Of the two sides of an `and`, a rule is triggered by the one likely to hit fewer rows:
    /// a long fixed text rather than a short exact value, a few long keywords rather than
    /// two one-byte ones.
    #[test]
    fn rules_are_triggered_by_their_rarest_side() {
        let rule = |detection: &str| {
            let yaml = format!("title: t\nlogsource: {{}}\ndetection:\n{detection}");
            let c = rsigma_parser::parse_sigma_yaml(&yaml).expect("yaml");
            crate::plain::compile(&c.rules[0]).expect("rule")
        };
        let compiled = Compiled::new(vec![
            rule("  sel:\n    m: GET\n    u|contains:\n      - /human2.aspx\n      - /_human2.aspx\n  condition: sel\n"),
            rule("  tools:\n    - 'scp '\n    - 'rsync '\n  filter:\n    - '@'\n    - ':'\n  condition: tools and filter\n"),
        ]);
        let mut events: Vec<_> = (0..20)
            .map(|i| json!({"m": "GET", "u": format!("/page{i}"), "message": "a@b:c"}))
            .collect();
        events.push(json!({"m": "GET", "u": "/human2.aspx?x", "message": "scp a@b:/c"}));
        let lines = JsonLines::of(&events, &compiled.fields(), compiled.keywords());
        let mut s = compiled.scratch();
        let mut out = Vec::new();
        compiled.matches(&lines, &mut s, &mut out);
        let got: Vec<(u32, u32)> = out.iter().map(|h| (h.row, h.rule)).collect();
        assert_eq!(got, [(20, 0), (20, 1)]);
        // Each rule evaluated on the one row where its rare side hit, not on the 21 where
        // `GET` or `@` did.
        assert_eq!(s.work().0, 2);
    }

    /// A common text (`GET`, `:`) is not scanned for when a rarer side of every rule using it
    /// brings the rule to the row; it is settled there. Where it is what triggers a rule, it
    /// is scanned for.
    #[test]
    fn common_texts_are_scanned_for_only_where_they_trigger() {
        let rule = |detection: &str| {
            let yaml = format!("title: t\nlogsource: {{}}\ndetection:\n{detection}");
            let c = rsigma_parser::parse_sigma_yaml(&yaml).expect("yaml");
            crate::plain::compile(&c.rules[0]).expect("rule")
        };
        let rare = [
            rule("  sel:\n    m: GET\n    u|contains: /human2.aspx\n  condition: sel\n"),
            rule("  tools:\n    - 'scp '\n  filter:\n    - '@'\n    - ':'\n  condition: tools and filter\n"),
        ];
        let mut events: Vec<_> = (0..20)
            .map(|i| json!({"m": "GET", "u": format!("/page{i}"), "message": "a@b:c"}))
            .collect();
        events.push(json!({"m": "GET", "u": "/human2.aspx?x", "message": "scp a:/c"}));
        events.push(json!({"m": "POST", "u": "/human2.aspx?y", "message": "scp /a /c"}));
        let run = |rules: Vec<PlainRule>| {
            let compiled = Compiled::new(rules);
            let lines = JsonLines::of(&events, &compiled.fields(), compiled.keywords());
            let mut s = compiled.scratch();
            let mut out = Vec::new();
            compiled.matches(&lines, &mut s, &mut out);
            let got: Vec<(u32, u32)> = out.iter().map(|h| (h.row, h.rule)).collect();
            (got, s.work())
        };
        // Atom hits: `/human2.aspx` and `scp ` on rows 20 and 21; `GET`, `@` and `:` none.
        // Evaluations: both rules on both rows.
        assert_eq!(run(rare.to_vec()), (vec![(20, 0), (20, 1)], (4, 4)));
        // A rule triggered by `:` alone: `:` is scanned for (21 rows), and the other rules
        // answer the same.
        let mut with_colon = rare.to_vec();
        with_colon.push(rule("  sel:\n    - ':'\n  condition: sel\n"));
        let (got, (evaluated, hits)) = run(with_colon);
        let mut want: Vec<(u32, u32)> = (0..21).map(|r| (r, 2)).collect();
        want.extend([(20, 0), (20, 1)]);
        want.sort_unstable();
        assert_eq!((got, hits), (want, 4 + 21));
        assert_eq!(evaluated, 4 + 21);
    }
}
