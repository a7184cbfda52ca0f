//! IOC lists: the values Sigma placeholders (`field|expand: '%name%'`) stand for.
//!
//! A folder of text files, one list per file: `name.txt` fills `%name%`, one value per line
//! (IP addresses, CIDR ranges with `|cidr`, domains, hashes, user names; Sigma wildcards
//! allowed), blank lines and lines starting with `#` ignored. A value holding several
//! placeholders takes every combination.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rsigma_parser::{SigmaString, SigmaValue};

/// Placeholder lists by name.
#[derive(Debug, Clone, Default)]
pub struct Iocs {
    lists: HashMap<String, Vec<String>>,
    /// Where they were read from (for messages).
    dir: Option<PathBuf>,
}

/// The most values a value with several placeholders may expand to.
const MAX_COMBINATIONS: usize = 1_000_000;

impl Iocs {
    /// Every `*.txt` file of a folder (none when the folder does not exist).
    pub fn load(dir: &Path) -> Result<Iocs, Vec<String>> {
        let mut lists = HashMap::new();
        let mut problems = Vec::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Iocs {
                    lists,
                    dir: Some(dir.to_owned()),
                })
            }
            Err(e) => return Err(vec![format!("{}: {e}", dir.display())]),
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "txt"))
            .collect();
        files.sort();
        for f in files {
            let Some(name) = f.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            match std::fs::read_to_string(&f) {
                Ok(text) => {
                    let values = text
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty() && !l.starts_with('#'))
                        .map(str::to_owned)
                        .collect();
                    lists.insert(name.to_owned(), values);
                }
                Err(e) => problems.push(format!("{}: {e}", f.display())),
            }
        }
        if problems.is_empty() {
            Ok(Iocs {
                lists,
                dir: Some(dir.to_owned()),
            })
        } else {
            Err(problems)
        }
    }

    /// Lists given directly (tests, embedding).
    pub fn from_lists(lists: impl IntoIterator<Item = (String, Vec<String>)>) -> Iocs {
        Iocs {
            lists: lists.into_iter().collect(),
            dir: None,
        }
    }

    pub fn lists(&self) -> usize {
        self.lists.len()
    }

    pub fn values(&self) -> usize {
        self.lists.values().map(Vec::len).sum()
    }

    /// The newest modification time among the folder and its files (to see a change).
    pub fn stamp(dir: &Path) -> Option<SystemTime> {
        let mut newest = std::fs::metadata(dir).and_then(|m| m.modified()).ok()?;
        for e in std::fs::read_dir(dir).ok()?.flatten() {
            if let Ok(t) = e.metadata().and_then(|m| m.modified()) {
                newest = newest.max(t);
            }
        }
        Some(newest)
    }

    /// A value with its placeholders filled: one value per combination of list entries.
    pub(crate) fn expand(&self, v: &SigmaValue) -> Result<Vec<SigmaValue>, String> {
        let SigmaValue::String(s) = v else {
            return Ok(vec![v.clone()]);
        };
        let mut out = vec![String::new()];
        let mut rest = s.original.as_str();
        while let Some(start) = rest.find('%') {
            let Some(len) = rest[start + 1..].find('%') else {
                break;
            };
            let name = &rest[start + 1..start + 1 + len];
            let values = self.lists.get(name).ok_or_else(|| {
                format!(
                    "placeholder '%{name}%' has no IOC list ({})",
                    self.dir.as_ref().map_or_else(
                        || format!("no list named {name}"),
                        |d| format!("no {}", d.join(format!("{name}.txt")).display())
                    )
                )
            })?;
            let before = &rest[..start];
            if out.len().saturating_mul(values.len().max(1)) > MAX_COMBINATIONS {
                return Err(format!(
                    "placeholders in '{}' expand to too many values",
                    s.original
                ));
            }
            out = out
                .iter()
                .flat_map(|o| values.iter().map(move |v| format!("{o}{before}{v}")))
                .collect();
            rest = &rest[start + 2 + len..];
        }
        Ok(out
            .into_iter()
            .map(|o| SigmaValue::String(SigmaString::new(&format!("{o}{rest}"))))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_take_every_value_and_unknown_ones_say_where_they_looked() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(
            dir.path().join("bad_ips.txt"),
            "# feed 2026-11-30\n203.0.113.66\n\n198.51.100.0/24\n",
        )
        .expect("write");
        std::fs::write(dir.path().join("tlds.txt"), "ru\ntop\n").expect("write");
        let iocs = Iocs::load(dir.path()).expect("load");
        assert_eq!((iocs.lists(), iocs.values()), (2, 4));
        let v = |s: &str| SigmaValue::String(SigmaString::new(s));
        let texts = |vs: Vec<SigmaValue>| -> Vec<String> {
            vs.into_iter()
                .map(|v| match v {
                    SigmaValue::String(s) => s.original,
                    _ => String::new(),
                })
                .collect()
        };
        assert_eq!(
            texts(iocs.expand(&v("%bad_ips%")).expect("ok")),
            ["203.0.113.66", "198.51.100.0/24"]
        );
        assert_eq!(
            texts(iocs.expand(&v("*.%tlds%")).expect("ok")),
            ["*.ru", "*.top"]
        );
        let e = iocs.expand(&v("%nope%")).expect_err("unknown");
        assert!(
            e.starts_with("placeholder '%nope%' has no IOC list (no "),
            "{e}"
        );
        assert!(e.ends_with("nope.txt)"), "{e}");
        // A missing folder is no lists.
        assert_eq!(Iocs::load(&dir.path().join("none")).expect("ok").lists(), 0);
    }
}
