//! Rule tests: events a rule must match and events it must not, next to the rule.
//!
//! For a rule file `x.yml`, its tests are `x.tests.jsonl`, one JSON object per line:
//! `{"match": true, "event": {…}}` (or `false`), with an optional `"rule"` (id, name or title) when
//! the file holds several rules and the test is for one of them, and an optional `"note"`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::compiled::Compiled;
use crate::lines::JsonLines;
use crate::load::Rule;
use crate::plain::PlainRule;

/// One test line's result.
#[derive(Debug)]
pub struct Outcome {
    pub file: PathBuf,
    pub line: usize,
    pub rule: String,
    pub expected: bool,
    pub got: bool,
    pub note: Option<String>,
}

/// The tests file of a rule file.
pub fn tests_file(rule_file: &Path) -> PathBuf {
    rule_file.with_extension("tests.jsonl")
}

/// Runs the tests of one rule file against its rules (mapped as they run), in the plain and
/// the compiled matcher; where the two disagree, the test fails and says so. Lines that are
/// not tests are errors with their line.
pub fn run(rules: &[(&Rule, &PlainRule)], file: &Path) -> Result<Vec<Outcome>, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let compiled: Vec<Compiled> = rules
        .iter()
        .map(|(_, p)| Compiled::new(vec![(*p).clone()]))
        .collect();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{}:{}", file.display(), i + 1);
        let t: Value =
            serde_json::from_str(line).map_err(|e| format!("{}: not JSON: {e}", at()))?;
        let expected = t["match"]
            .as_bool()
            .ok_or_else(|| format!("{}: \"match\" must be true or false", at()))?;
        let event = &t["event"];
        if !event.is_object() {
            return Err(format!("{}: \"event\" must be an object", at()));
        }
        let only = t["rule"].as_str();
        let mut ran = false;
        for ((rule, plain), compiled) in rules.iter().zip(&compiled) {
            if only.is_some_and(|o| {
                Some(o) != rule.id() && Some(o) != rule.name() && o != rule.title()
            }) {
                continue;
            }
            ran = true;
            let got = plain.matches(event);
            let events = std::slice::from_ref(event);
            let mut hits = Vec::new();
            compiled.matches(
                &JsonLines::of(events, &compiled.fields(), compiled.keywords()),
                &mut compiled.scratch(),
                &mut hits,
            );
            let note = t["note"].as_str().map(str::to_owned);
            let (got, note) = if got == hits.is_empty() {
                let why = format!(
                    "the plain matcher says {got}, the compiled matcher {}",
                    !got
                );
                (
                    !expected,
                    Some(note.map_or(why.clone(), |n| format!("{n}; {why}"))),
                )
            } else {
                (got, note)
            };
            out.push(Outcome {
                file: file.to_owned(),
                line: i + 1,
                rule: rule.title().to_owned(),
                expected,
                got,
                note,
            });
        }
        if !ran {
            return Err(format!(
                "{}: no detection rule {} in the rule file",
                at(),
                only.map_or("at all".into(), |o| format!("'{o}'"))
            ));
        }
    }
    Ok(out)
}
