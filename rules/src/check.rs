//! What the parser accepts but no matcher could run: every problem of a rule, found before it
//! is compiled, so `canh rules check` rejects it with a reason instead of a rule that never
//! fires.

use rsigma_parser::{detection_name_matches, ConditionExpr, SelectorPattern};

use crate::iocs::Iocs;
use crate::load::{Rejection, Rule, RuleKind};
use crate::plain::PlainRule;

/// One problem: the reason, and text on the line it is about.
type Problem = (String, String);

/// What a loaded rule can do.
#[derive(Debug)]
pub enum Checked {
    /// A detection rule, ready to evaluate.
    Detection(Box<PlainRule>),
    /// A correlation or filter rule: loaded, not evaluated yet.
    NotEvaluated,
}

/// Builds what a rule needs to run, or gives every problem, each on the line of the rule's
/// file it is about (the condition, the field).
pub fn check(rule: &Rule, iocs: &Iocs) -> Result<Checked, Vec<Rejection>> {
    let RuleKind::Detection(r) = &rule.kind else {
        return Ok(Checked::NotEvaluated);
    };
    let mut problems = Vec::new();
    let names: Vec<&str> = r.detection.named.keys().map(String::as_str).collect();
    for c in &r.detection.conditions {
        condition(c, &names, &mut problems);
    }
    // Everything about values: what the plain matcher cannot build, no matcher can run.
    let compiled = crate::plain::compile_detections(&r.detection, iocs).map_err(|e| {
        // "detection: field: reason": the line is the field's.
        let near = e.split(": ").nth(1).unwrap_or("detection").to_owned();
        problems.push((e, near));
    });
    match compiled {
        Ok(m) if problems.is_empty() => Ok(Checked::Detection(Box::new(m))),
        _ => {
            let text = std::fs::read_to_string(&rule.file).unwrap_or_default();
            Err(problems
                .into_iter()
                .map(|(reason, near)| Rejection {
                    file: rule.file.clone(),
                    line: locate(&text, rule.line, &near),
                    reason,
                })
                .collect())
        }
    }
}

/// The first line at or after `from` (and before the next document) that holds `near`.
fn locate(text: &str, from: u32, near: &str) -> u32 {
    text.lines()
        .enumerate()
        .skip(from.saturating_sub(1) as usize)
        .take_while(|(i, l)| *i + 1 == from as usize || l.trim_end() != "---")
        .find(|(_, l)| l.contains(near))
        .map_or(from, |(i, _)| i as u32 + 1)
}

fn condition(c: &ConditionExpr, names: &[&str], problems: &mut Vec<Problem>) {
    match c {
        ConditionExpr::And(v) | ConditionExpr::Or(v) => {
            v.iter().for_each(|c| condition(c, names, problems))
        }
        ConditionExpr::Not(c) => condition(c, names, problems),
        ConditionExpr::Identifier(id) => {
            if !names.contains(&id.as_str()) {
                problems.push((
                    format!(
                        "condition: no detection named '{id}' (the rule has: {})",
                        names.join(", ")
                    ),
                    "condition".into(),
                ));
            }
        }
        ConditionExpr::Selector {
            pattern: SelectorPattern::Pattern(p),
            ..
        } => {
            if !names.iter().any(|n| detection_name_matches(p, n)) {
                problems.push((
                    format!("condition: no detection matches '{p}'"),
                    "condition".into(),
                ));
            }
        }
        ConditionExpr::Selector { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(detection: &str) -> Vec<String> {
        let yaml = format!("title: t\nlogsource: {{product: linux}}\ndetection:\n{detection}");
        let dir = tempfile::tempdir().expect("tmp");
        let f = dir.path().join("r.yml");
        std::fs::write(&f, yaml).expect("write");
        let loaded = crate::load(&[f]);
        assert!(loaded.rejected.is_empty(), "{:?}", loaded.rejected);
        match check(&loaded.rules[0], &Iocs::default()) {
            Ok(_) => Vec::new(),
            Err(rejections) => rejections.into_iter().map(|r| r.reason).collect(),
        }
    }

    #[test]
    fn what_a_matcher_could_not_run_is_a_problem() {
        assert!(problems("  sel:\n    a: x\n  condition: sel\n").is_empty());
        assert_eq!(
            problems("  sel:\n    a: x\n  condition: sel and filter\n"),
            ["condition: no detection named 'filter' (the rule has: sel)"]
        );
        assert_eq!(
            problems("  sel:\n    a: x\n  condition: 1 of filter_*\n"),
            ["condition: no detection matches 'filter_*'"]
        );
        assert!(problems("  sel_a:\n    a: x\n  condition: 1 of sel_*\n").is_empty());
        let re = problems("  sel:\n    a|re: '(['\n  condition: sel\n");
        assert!(
            re.len() == 1 && re[0].starts_with("sel: a: regular expression '(['"),
            "{re:?}"
        );
        assert!(problems("  sel:\n    a|re|i: '^ab+c$'\n  condition: sel\n").is_empty());
        assert_eq!(
            problems("  sel:\n    a|cidr: '10.0.0.0/99'\n  condition: sel\n"),
            ["sel: a: '10.0.0.0/99' is not a CIDR"]
        );
        assert!(problems("  sel:\n    a|cidr:\n      - '10.0.0.0/8'\n      - '2001:db8::/32'\n  condition: sel\n").is_empty());
        assert_eq!(
            problems("  sel:\n    a|gt: many\n  condition: sel\n").len(),
            1
        );
        assert!(problems("  sel:\n    a|gte: 10\n  condition: sel\n").is_empty());
    }
}
