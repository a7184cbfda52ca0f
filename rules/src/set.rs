//! A rule set: every usable detection rule, mapped and compiled, one compiled matcher per
//! table — what `canh hunt` and the pipeline run.

use crate::check::{check, Checked};
use crate::compiled::{Compiled, Hit};
use crate::events::Events;
use crate::load::{Rejection, Rule, RuleKind};
use crate::mapping::{Mapping, Target};

/// Rules compiled for running, with what each one is.
#[derive(Debug)]
pub struct RuleSet<'r> {
    /// The detection rules that run, in load order.
    pub rules: Vec<&'r Rule>,
    /// Correlation and filter rules, not run yet.
    pub not_evaluated: usize,
    tables: Vec<TableRules>,
}

/// Per-thread working memory for a [`RuleSet`].
#[derive(Debug)]
pub struct SetScratch(Vec<crate::compiled::Scratch>);

#[derive(Debug)]
struct TableRules {
    target: Target,
    compiled: Compiled,
    /// Position in the compiled matcher → position in `rules`.
    global: Vec<u32>,
}

impl<'r> RuleSet<'r> {
    /// Checks, maps and compiles rules; the rejected come back with their reasons.
    pub fn build(loaded: &'r [Rule], mapping: &Mapping) -> (RuleSet<'r>, Vec<Rejection>) {
        let mut rules = Vec::new();
        let mut rejected = Vec::new();
        let mut not_evaluated = 0;
        let mut per_table: Vec<(Target, Vec<crate::plain::PlainRule>, Vec<u32>)> = Vec::new();
        for rule in loaded {
            match check(rule) {
                Ok(Checked::Detection(plain)) => {
                    let RuleKind::Detection(sigma) = &rule.kind else {
                        continue;
                    };
                    let (plain, target) = mapping.apply(sigma, *plain);
                    let i = match per_table.iter().position(|t| t.0 == target) {
                        Some(i) => i,
                        None => {
                            per_table.push((target, Vec::new(), Vec::new()));
                            per_table.len() - 1
                        }
                    };
                    per_table[i].1.push(plain);
                    per_table[i].2.push(rules.len() as u32);
                    rules.push(rule);
                }
                Ok(Checked::NotEvaluated) => not_evaluated += 1,
                Err(problems) => rejected.extend(problems),
            }
        }
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
                not_evaluated,
                tables,
            },
            rejected,
        )
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
