//! What the parser accepts but no matcher could run: every problem of a rule, found before it
//! is compiled, so `canh rules check` rejects it with a reason instead of a rule that never
//! fires.

use rsigma_parser::{
    detection_name_matches, ConditionExpr, Detection, DetectionItem, Modifier, SelectorPattern,
    SigmaValue,
};

use crate::load::{Rejection, Rule, RuleKind};

/// One problem: the reason, and text on the line it is about.
type Problem = (String, String);

/// The problems of one rule (empty when it can run), each on the line of the rule's file it
/// is about (the condition, the field).
pub fn check(rule: &Rule) -> Vec<Rejection> {
    let text = std::fs::read_to_string(&rule.file).unwrap_or_default();
    find_problems(rule)
        .into_iter()
        .map(|(reason, near)| Rejection {
            file: rule.file.clone(),
            line: locate(&text, rule.line, &near),
            reason,
        })
        .collect()
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

fn find_problems(rule: &Rule) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let RuleKind::Detection(r) = &rule.kind {
        let names: Vec<&str> = r.detection.named.keys().map(String::as_str).collect();
        for c in &r.detection.conditions {
            condition(c, &names, &mut problems);
        }
        let mut named: Vec<_> = r.detection.named.iter().collect();
        named.sort_by(|a, b| a.0.cmp(b.0));
        for (name, d) in named {
            detection(name, d, &mut problems);
        }
    }
    problems
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

fn detection(name: &str, d: &Detection, problems: &mut Vec<Problem>) {
    match d {
        Detection::AllOf(items) => items.iter().for_each(|i| item(name, i, problems)),
        Detection::AnyOf(ds) | Detection::And(ds) => {
            ds.iter().for_each(|d| detection(name, d, problems))
        }
        Detection::ArrayMatch { body, .. } => detection(name, body, problems),
        Detection::Conditional {
            named,
            condition: c,
        } => {
            let names: Vec<&str> = named.keys().map(String::as_str).collect();
            condition(c, &names, problems);
            named.values().for_each(|d| detection(name, d, problems));
        }
        Detection::Keywords(_) => {}
    }
}

fn item(name: &str, i: &DetectionItem, out: &mut Vec<Problem>) {
    let field = i.field.name.as_deref().unwrap_or("keywords");
    let at = || format!("{name}: {field}");
    let mut problems = Vec::new();
    let has = |m| i.field.has_modifier(m);
    let text = |v: &SigmaValue| match v {
        SigmaValue::String(s) => Some(s.original.clone()),
        SigmaValue::Integer(n) => Some(n.to_string()),
        SigmaValue::Float(f) => Some(f.to_string()),
        _ => None,
    };
    for v in &i.values {
        if has(Modifier::Re) {
            let Some(pattern) = text(v) else {
                problems.push(format!("{}: |re needs a pattern, not {v:?}", at()));
                continue;
            };
            let compiled = regex::RegexBuilder::new(&pattern)
                .case_insensitive(has(Modifier::IgnoreCase))
                .multi_line(has(Modifier::Multiline))
                .dot_matches_new_line(has(Modifier::DotAll))
                .size_limit(1 << 24)
                .build();
            if let Err(e) = compiled {
                let first = e.to_string();
                let first = first.lines().last().unwrap_or("").trim();
                let first = first.strip_prefix("error: ").unwrap_or(first);
                problems.push(format!("{}: regular expression '{pattern}': {first}", at()));
            }
        }
        if has(Modifier::Cidr) {
            match text(v) {
                Some(c) if cidr_ok(&c) => {}
                _ => problems.push(format!(
                    "{}: '{}' is not a CIDR",
                    at(),
                    text(v).unwrap_or_default()
                )),
            }
        }
        let comparison = [Modifier::Gt, Modifier::Gte, Modifier::Lt, Modifier::Lte]
            .iter()
            .any(|&m| has(m));
        if comparison && !matches!(v, SigmaValue::Integer(_) | SigmaValue::Float(_)) {
            let numeric = text(v).is_some_and(|t| t.trim().parse::<f64>().is_ok());
            if !numeric {
                problems.push(format!("{}: a comparison needs a number, not {v:?}", at()));
            }
        }
        if has(Modifier::Exists) && !matches!(v, SigmaValue::Bool(_)) {
            problems.push(format!("{}: |exists needs true or false, not {v:?}", at()));
        }
    }
    out.extend(problems.into_iter().map(|p| (p, field.to_owned())));
}

/// `10.0.0.0/8`, `2001:db8::/32`, or a bare address.
fn cidr_ok(c: &str) -> bool {
    let (addr, len) = match c.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (c, None),
    };
    let Ok(ip) = addr.trim().parse::<std::net::IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    len.is_none_or(|l| l.trim().parse::<u8>().is_ok_and(|n| n <= max))
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
        check(&loaded.rules[0])
            .into_iter()
            .map(|r| r.reason)
            .collect()
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
