//! A rule set: every usable detection rule, with the filters that apply to it, mapped and
//! compiled (one compiled matcher per table), and the correlation rules over them — what
//! `canh hunt` and the pipeline run.

use std::collections::HashMap;

use rsigma_parser::{CorrelationRule, FilterRuleTarget, LogSource, SigmaRule};

use crate::check::{check, Checked};
use crate::compiled::{Compiled, Hit};
use crate::correlation::{Correlator, Limits};
use crate::events::Events;
use crate::iocs::Iocs;
use crate::load::{Rejection, Rule, RuleKind};
use crate::mapping::{Mapping, Target, RESERVED};

/// Rules compiled for running, with what each one is.
#[derive(Debug)]
pub struct RuleSet {
    /// The detection rules that run, in load order.
    pub rules: Vec<Rule>,
    /// Positions in `rules` of those whose log source the mapping does not cover: they are
    /// loaded (correlations may name them) but see no events and are not compiled.
    pub unmapped: Vec<u32>,
    /// The correlation rules that run (their references resolved), in load order.
    pub correlations: Vec<Rule>,
    /// Filters applied (each to at least one rule).
    pub filters: usize,
    mapping: Mapping,
    tables: Vec<TableRules>,
}

/// Per-thread working memory for a [`RuleSet`].
#[derive(Debug)]
pub struct SetScratch(Vec<crate::compiled::Scratch>);

impl SetScratch {
    /// [`crate::compiled::Scratch::work`] summed over the tables.
    pub fn work(&self) -> (u64, u64) {
        self.0
            .iter()
            .map(|s| s.work())
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    }
}

#[derive(Debug)]
struct TableRules {
    target: Target,
    compiled: Compiled,
    /// Position in the compiled matcher → position in `rules`.
    global: Vec<u32>,
}

/// Whether every key a filter's log source gives is the rule's too.
fn covers(filter: &LogSource, rule: &LogSource) -> bool {
    let same = |f: &Option<String>, r: &Option<String>| match f {
        None => true,
        Some(f) => r.as_deref().is_some_and(|r| r.eq_ignore_ascii_case(f)),
    };
    same(&filter.category, &rule.category)
        && same(&filter.product, &rule.product)
        && same(&filter.service, &rule.service)
}

fn is_referenced(handles: &[String], rule: &SigmaRule) -> bool {
    handles
        .iter()
        .any(|h| Some(h.as_str()) == rule.id.as_deref() || Some(h.as_str()) == rule.name.as_deref())
}

impl RuleSet {
    /// Checks, filters, maps and compiles rules; the rejected come back with their reasons.
    pub fn build(loaded: &[Rule], mapping: &Mapping, iocs: &Iocs) -> (RuleSet, Vec<Rejection>) {
        let mut rules: Vec<Rule> = Vec::new();
        let mut rejected = Vec::new();
        let mut unmapped = Vec::new();
        let mut per_table: Vec<(Target, Vec<crate::plain::PlainRule>, Vec<u32>)> = Vec::new();
        // Filters, compiled once.
        let mut filters = Vec::new();
        for rule in loaded {
            if let RuleKind::Filter(f) = &rule.kind {
                match crate::plain::compile_detections(&f.detection, iocs) {
                    Ok(mut plain) => {
                        let ls = f.logsource.clone().unwrap_or_default();
                        mapping.rename(&ls, &mut plain);
                        filters.push((rule, f, ls, plain, false));
                    }
                    Err(e) => rejected.push(Rejection {
                        file: rule.file.clone(),
                        line: rule.line,
                        reason: format!("filter: {e}"),
                    }),
                }
            }
        }
        for rule in loaded {
            match check(rule, iocs) {
                Ok(Checked::Detection(plain)) => {
                    let RuleKind::Detection(sigma) = &rule.kind else {
                        continue;
                    };
                    let mut plain = *plain;
                    for (i, (_, f, ls, filter, used)) in filters.iter_mut().enumerate() {
                        let applies = match &f.rules {
                            FilterRuleTarget::Any => true,
                            FilterRuleTarget::Specific(handles) => is_referenced(handles, sigma),
                        };
                        if applies && covers(ls, &sigma.logsource) {
                            plain.exclude(filter.clone(), &format!("{RESERVED}filter{i}_"));
                            *used = true;
                        }
                    }
                    let Some((plain, target)) = mapping.apply(sigma, plain) else {
                        unmapped.push(rules.len() as u32);
                        rules.push(rule.clone());
                        continue;
                    };
                    let i = match per_table.iter().position(|t| t.0 == target) {
                        Some(i) => i,
                        None => {
                            per_table.push((target, Vec::new(), Vec::new()));
                            per_table.len() - 1
                        }
                    };
                    per_table[i].1.push(plain);
                    per_table[i].2.push(rules.len() as u32);
                    rules.push(rule.clone());
                }
                Ok(Checked::NotEvaluated) => {}
                Err(problems) => rejected.extend(problems),
            }
        }
        let filters_used = filters.iter().filter(|f| f.4).count();
        // Correlations: those whose references resolve among the rules that run.
        let candidates: Vec<&Rule> = loaded
            .iter()
            .filter(|r| matches!(r.kind, RuleKind::Correlation(_)))
            .collect();
        let correlations = {
            let detections = sigma_rules(&rules);
            let corr: Vec<&CorrelationRule> =
                candidates.iter().filter_map(|r| correlation(r)).collect();
            let (_, problems) = Correlator::new(&corr, &detections, mapping, Limits::default());
            let bad: Vec<usize> = problems.iter().map(|(i, _)| *i).collect();
            for (i, why) in problems {
                let r = candidates[i];
                rejected.push(Rejection {
                    file: r.file.clone(),
                    line: r.line,
                    reason: format!("correlation: {why}"),
                });
            }
            candidates
                .iter()
                .enumerate()
                .filter(|(i, _)| !bad.contains(i))
                .map(|(_, r)| (*r).clone())
                .collect()
        };
        let tables = per_table
            .into_iter()
            .map(|(target, plain, global)| TableRules {
                target,
                compiled: Compiled::new(plain),
                global,
            })
            .collect();
        (
            RuleSet {
                rules,
                unmapped,
                correlations,
                filters: filters_used,
                mapping: mapping.clone(),
                tables,
            },
            rejected,
        )
    }

    /// How many rules see no events for want of a mapping, by log source, most first.
    pub fn unmapped_log_sources(&self) -> Vec<(String, usize)> {
        let mut by = std::collections::BTreeMap::new();
        for &i in &self.unmapped {
            if let RuleKind::Detection(s) = &self.rules[i as usize].kind {
                *by.entry(crate::mapping::describe(&s.logsource))
                    .or_default() += 1;
            }
        }
        crate::mapping::most_first(by)
    }

    /// [`RuleSet::unmapped_log_sources`] in one line (`log source (count); …`), the first
    /// `shown` of them.
    pub fn unmapped_summary(&self, shown: usize) -> String {
        let by = self.unmapped_log_sources();
        let mut parts: Vec<String> = by
            .iter()
            .take(shown)
            .map(|(ls, n)| format!("{ls} ({n})"))
            .collect();
        if by.len() > shown {
            parts.push("…".into());
        }
        parts.join("; ")
    }

    /// A correlator (with empty state) over this set's rules.
    pub fn correlator(&self, limits: Limits) -> Correlator {
        let detections = sigma_rules(&self.rules);
        let corr: Vec<&CorrelationRule> =
            self.correlations.iter().filter_map(correlation).collect();
        Correlator::new(&corr, &detections, &self.mapping, limits).0
    }

    /// Where each detection rule of this set is in `new` (a reload of it), if it is there
    /// unchanged (the same rule as parsed): matches this set made that arrive after the reload
    /// are renumbered with it rather than lost.
    pub fn renumber(&self, new: &RuleSet) -> Vec<Option<u32>> {
        let handle = |r: &Rule| r.id().unwrap_or(r.title()).to_owned();
        let mut by_handle: HashMap<String, Vec<u32>> = HashMap::new();
        for (j, r) in new.rules.iter().enumerate() {
            by_handle.entry(handle(r)).or_default().push(j as u32);
        }
        self.rules
            .iter()
            .map(|r| {
                let RuleKind::Detection(a) = &r.kind else {
                    return None;
                };
                by_handle.get(&handle(r))?.iter().copied().find(
                    |&j| matches!(&new.rules[j as usize].kind, RuleKind::Detection(b) if a == b),
                )
            })
            .collect()
    }

    /// The compiled matcher of a table's rules, if any rule runs over it.
    pub fn compiled(&self, target: Target) -> Option<&Compiled> {
        self.tables
            .iter()
            .find(|t| t.target == target)
            .map(|t| &t.compiled)
    }

    /// Working memory for one thread.
    pub fn scratch(&self) -> SetScratch {
        SetScratch(self.tables.iter().map(|t| t.compiled.scratch()).collect())
    }

    /// Runs a table's rules over a batch: (row, position in `rules`) for every match.
    pub fn matches(
        &self,
        target: Target,
        events: &dyn Events,
        scratch: &mut SetScratch,
        out: &mut Vec<Hit>,
    ) {
        let Some(i) = self.tables.iter().position(|t| t.target == target) else {
            return;
        };
        let t = &self.tables[i];
        let from = out.len();
        t.compiled.matches(events, &mut scratch.0[i], out);
        for h in &mut out[from..] {
            h.rule = t.global[h.rule as usize];
        }
    }
}

fn sigma_rules(rules: &[Rule]) -> Vec<&SigmaRule> {
    rules
        .iter()
        .filter_map(|r| match &r.kind {
            RuleKind::Detection(s) => Some(&**s),
            _ => None,
        })
        .collect()
}

fn correlation(r: &Rule) -> Option<&CorrelationRule> {
    match &r.kind {
        RuleKind::Correlation(c) => Some(c),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lines::JsonLines;
    use serde_json::json;

    /// A Sigma filter: the rules it names (with a log source it covers) stop matching what
    /// it selects; other rules are untouched.
    #[test]
    fn filters_exclude_what_they_select_from_the_rules_they_name() {
        let dir = tempfile::tempdir().expect("tmp");
        let rules = "title: Admin login\nid: r1\nlogsource: {product: linux}\ndetection:\n  sel: {event.action: ssh_login}\n  condition: sel\n---\ntitle: Other\nid: r2\nlogsource: {product: linux}\ndetection:\n  sel: {event.action: ssh_login}\n  condition: sel\n---\ntitle: Jump host is expected\nlogsource: {product: linux}\nfilter:\n  rules: [r1]\n  selection:\n    source.ip|cidr: 10.9.0.0/16\n  condition: selection\n";
        std::fs::write(dir.path().join("r.yml"), rules).expect("write");
        let loaded = crate::load(&[dir.path().to_owned()]);
        assert!(loaded.rejected.is_empty(), "{:?}", loaded.rejected);
        let (set, rejected) = RuleSet::build(&loaded.rules, &Mapping::identity(), &Iocs::default());
        assert!(rejected.is_empty(), "{rejected:?}");
        assert_eq!(set.filters, 1);
        let events = [
            json!({"event.action": "ssh_login", "source.ip": "10.9.1.1"}),
            json!({"event.action": "ssh_login", "source.ip": "10.8.1.1"}),
        ];
        let compiled = set.compiled(Target::Events).expect("rules on events");
        let mut hits = Vec::new();
        set.matches(
            Target::Events,
            &JsonLines::of(&events, &compiled.fields(), compiled.keywords()),
            &mut set.scratch(),
            &mut hits,
        );
        let got: Vec<(u32, &str)> = hits
            .iter()
            .map(|h| (h.row, set.rules[h.rule as usize].title()))
            .collect();
        assert_eq!(got, [(0, "Other"), (1, "Admin login"), (1, "Other")]);
    }
}
