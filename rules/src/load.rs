//! Finding rule files and reading them, one document at a time, so a rejection can say where.

use std::path::{Path, PathBuf};

use rsigma_parser::{CorrelationRule, FilterRule, SigmaRule};

/// What a rule document is.
#[derive(Debug, Clone)]
pub enum RuleKind {
    Detection(Box<SigmaRule>),
    Correlation(Box<CorrelationRule>),
    Filter(Box<FilterRule>),
}

/// One rule and where it came from.
#[derive(Debug, Clone)]
pub struct Rule {
    pub file: PathBuf,
    /// The line its YAML document starts on (1-based).
    pub line: u32,
    pub kind: RuleKind,
}

impl Rule {
    pub fn title(&self) -> &str {
        match &self.kind {
            RuleKind::Detection(r) => &r.title,
            RuleKind::Correlation(r) => &r.title,
            RuleKind::Filter(r) => &r.title,
        }
    }

    /// The Sigma level in lower case (`high`), where the rule has one.
    pub fn level(&self) -> Option<String> {
        let level = match &self.kind {
            RuleKind::Detection(r) => r.level,
            RuleKind::Correlation(r) => r.level,
            RuleKind::Filter(_) => None,
        };
        level.map(|l| format!("{l:?}").to_lowercase())
    }

    /// The rule's tags (`attack.t1110`).
    pub fn tags(&self) -> Vec<String> {
        match &self.kind {
            RuleKind::Detection(r) => r.tags.clone(),
            RuleKind::Correlation(r) => r.tags.clone(),
            RuleKind::Filter(r) => r.tags.clone(),
        }
    }

    /// The `name` a correlation refers to the rule by.
    pub fn name(&self) -> Option<&str> {
        match &self.kind {
            RuleKind::Detection(r) => r.name.as_deref(),
            RuleKind::Correlation(r) => r.name.as_deref(),
            RuleKind::Filter(r) => r.name.as_deref(),
        }
    }

    pub fn id(&self) -> Option<&str> {
        match &self.kind {
            RuleKind::Detection(r) => r.id.as_deref(),
            RuleKind::Correlation(r) => r.id.as_deref(),
            RuleKind::Filter(r) => r.id.as_deref(),
        }
    }
}

/// A rule document that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub file: PathBuf,
    pub line: u32,
    pub reason: String,
}

/// Every rule found, and every document rejected.
#[derive(Debug, Default)]
pub struct Loaded {
    pub rules: Vec<Rule>,
    pub rejected: Vec<Rejection>,
}

/// Reads every `*.yml` / `*.yaml` file at or under `paths` (in name order). A file that
/// cannot be read, or a document that does not parse, is a [`Rejection`]; the rest load.
pub fn load(paths: &[PathBuf]) -> Loaded {
    let mut files = Vec::new();
    let mut out = Loaded::default();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut files, &mut out.rejected);
        } else {
            files.push(p.clone());
        }
    }
    files.sort();
    for f in files {
        match std::fs::read_to_string(&f) {
            Ok(text) => load_text(&f, &text, &mut out),
            Err(e) => out.rejected.push(Rejection {
                file: f,
                line: 0,
                reason: format!("cannot read: {e}"),
            }),
        }
    }
    out
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>, rejected: &mut Vec<Rejection>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            rejected.push(Rejection {
                file: dir.to_owned(),
                line: 0,
                reason: format!("cannot read the folder: {e}"),
            });
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, files, rejected);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yml" | "yaml")
        ) {
            files.push(path);
        }
    }
}

/// The documents of a YAML stream: (first line, text). Documents are separated by `---`
/// lines; a file that starts with one has no empty first document.
pub(crate) fn documents(text: &str) -> Vec<(u32, String)> {
    let mut docs = Vec::new();
    let mut start = 1;
    let mut cur = String::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_end() == "---" {
            if !cur.trim().is_empty() {
                docs.push((start, std::mem::take(&mut cur)));
            }
            cur.clear();
            start = i as u32 + 2;
        } else {
            cur.push_str(line);
            cur.push('\n');
        }
    }
    if !cur.trim().is_empty() {
        docs.push((start, cur));
    }
    docs
}

fn load_text(file: &Path, text: &str, out: &mut Loaded) {
    let docs = documents(text);
    // Plain multi-document files: each document alone, so each rule and each error has its
    // own line. Collections (`action: global`, `repeat`, `reset`) need the whole stream.
    if docs.len() > 1 && !text.contains("action:") {
        for (line, doc) in &docs {
            let mut one = Loaded::default();
            load_collection(file, doc, &[(1, doc.clone())], &mut one);
            for mut r in one.rules {
                r.line += line - 1;
                out.rules.push(r);
            }
            for mut r in one.rejected {
                r.line += line - 1;
                out.rejected.push(r);
            }
        }
        return;
    }
    load_collection(file, text, &docs, out);
}

/// Reads one YAML stream: a single rule, or a collection whose documents build on each other.
fn load_collection(file: &Path, text: &str, docs: &[(u32, String)], out: &mut Loaded) {
    let reject = |line: u32, reason: String| Rejection {
        file: file.to_owned(),
        line,
        reason,
    };
    let collection = match rsigma_parser::parse_sigma_yaml(text) {
        Ok(c) => c,
        Err(e) => {
            out.rejected.push(reject(1, one_line(&e.to_string())));
            return;
        }
    };
    let first_line = docs.first().map_or(1, |d| d.0);
    for e in &collection.errors {
        let at = docs.first().map_or(0, |(_, d)| line_in(d, e));
        out.rejected.push(reject(first_line + at, one_line(e)));
    }
    // Documents that produced rules, in order; their lines follow the documents that are
    // not `action: global` headers.
    let rule_lines: Vec<u32> = docs
        .iter()
        .filter(|(_, d)| !d.contains("action: global"))
        .map(|(l, _)| *l)
        .collect();
    let mut lines = rule_lines.into_iter();
    let mut next_line = || lines.next().unwrap_or(first_line);
    let kinds = collection
        .rules
        .into_iter()
        .map(|r| RuleKind::Detection(Box::new(r)))
        .chain(
            collection
                .correlations
                .into_iter()
                .map(|r| RuleKind::Correlation(Box::new(r))),
        )
        .chain(
            collection
                .filters
                .into_iter()
                .map(|r| RuleKind::Filter(Box::new(r))),
        );
    for kind in kinds {
        out.rules.push(Rule {
            file: file.to_owned(),
            line: next_line(),
            kind,
        });
    }
}

/// The parser's messages span lines (a caret diagram for conditions); keep the first.
fn one_line(e: &str) -> String {
    e.lines().next().unwrap_or(e).trim().to_owned()
}

/// Where in a document an error points: the `condition:` line for condition errors, the
/// line naming an unknown modifier, a missing key's parent, else the document's first line
/// (0-based offset).
fn line_in(doc: &str, error: &str) -> u32 {
    let find = |needle: &str| {
        doc.lines()
            .position(|l| l.contains(needle))
            .map(|i| i as u32)
    };
    let quoted = error.split('\'').nth(1).filter(|q| !q.is_empty());
    if error.starts_with("Condition") {
        return find("condition:").unwrap_or(0);
    }
    if error.starts_with("Unknown modifier") {
        if let Some(m) = quoted {
            return find(&format!("|{m}")).unwrap_or(0);
        }
    }
    if let Some(at) = error
        .split(" at line ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse::<u32>().ok())
    {
        return at.saturating_sub(1);
    }
    if error.starts_with("Missing required field") {
        return find("detection:").unwrap_or(0);
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_keep_their_first_lines() {
        let docs = documents("---\na: 1\n---\nb: 2\nc: 3\n---\n");
        assert_eq!(
            docs,
            vec![(2, "a: 1\n".to_owned()), (4, "b: 2\nc: 3\n".to_owned())]
        );
    }

    #[test]
    fn rejections_say_file_line_and_reason() {
        let dir = tempfile::tempdir().expect("tmp");
        let good = "title: ok\nlogsource: {product: linux}\ndetection:\n  sel:\n    a: x\n  condition: sel\n";
        let bad = "title: bad\nlogsource: {product: linux}\ndetection:\n  sel:\n    a|contanis: x\n  condition: sel\n";
        std::fs::write(dir.path().join("one.yml"), format!("{good}---\n{bad}")).expect("write");
        std::fs::write(dir.path().join("two.yaml"), "title: [unclosed\n").expect("write");
        std::fs::write(dir.path().join("notes.txt"), "not a rule").expect("write");
        let loaded = load(&[dir.path().to_owned()]);
        assert_eq!(loaded.rules.len(), 1);
        assert_eq!(loaded.rules[0].title(), "ok");
        assert_eq!(loaded.rules[0].line, 1);
        assert_eq!(loaded.rejected.len(), 2, "{:?}", loaded.rejected);
        let r = &loaded.rejected[0];
        assert!(r.file.ends_with("one.yml"));
        assert_eq!(
            (r.line, r.reason.as_str()),
            (12, "Unknown modifier 'contanis'")
        );
        let r = &loaded.rejected[1];
        assert!(r.file.ends_with("two.yaml") && r.reason.starts_with("YAML parse error"));
    }
}
