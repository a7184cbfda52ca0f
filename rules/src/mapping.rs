//! Field mapping and log-source selection, in the spirit of pySigma processing pipelines: from
//! the names rules use (the Sigma taxonomy, ECS) to Canh's columns, and from a rule's
//! `logsource` to the events it sees. The format is described in `rules/mapping.toml`, which
//! is also the default built into canh.

use std::collections::{BTreeMap, HashMap};

use rsigma_parser::{ConditionExpr, LogSource, SigmaRule};
use serde::Deserialize;

use crate::plain::{Det, PlainRule};

/// Names of detections the mapping adds to a rule start with this; a rule's own selectors
/// (`1 of *`, `them`) do not see them.
pub(crate) const RESERVED: &str = "_canh_";

/// Names of the detections that select a log source's events start with this.
pub(crate) const LOGSOURCE: &str = "_canh_logsource_";

/// The mapping built into canh (`rules/mapping.toml`).
pub const DEFAULT: &str = include_str!("../mapping.toml");

/// The table a rule runs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    Events,
    Flows,
}

/// A field mapping, ready to apply to rules.
#[derive(Debug, Clone)]
pub struct Mapping {
    fields: HashMap<String, String>,
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    /// (key, value) pairs of the rule's logsource this entry is for.
    keys: Vec<(&'static str, String)>,
    /// The events the rule sees, as a detection.
    events: Option<Det>,
    fields: HashMap<String, String>,
    table: Option<Target>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    #[serde(default)]
    fields: BTreeMap<String, String>,
    #[serde(default)]
    logsource: Vec<EntryToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryToml {
    category: Option<String>,
    product: Option<String>,
    service: Option<String>,
    events: Option<toml::Table>,
    #[serde(default)]
    fields: BTreeMap<String, String>,
    table: Option<String>,
}

impl Mapping {
    /// The mapping built into canh.
    pub fn builtin() -> Mapping {
        #[allow(clippy::expect_used)] // Tested: `the_builtin_mapping_parses`.
        Mapping::parse(DEFAULT).expect("the built-in mapping is valid")
    }

    /// No renames and no selection: rules read events as they are (rule tests, plain hunts).
    pub fn identity() -> Mapping {
        Mapping {
            fields: HashMap::new(),
            entries: Vec::new(),
        }
    }

    /// Reads a mapping file's text; every problem at once, each with where it is.
    pub fn parse(text: &str) -> Result<Mapping, Vec<String>> {
        let file: FileToml = toml::from_str(text).map_err(|e| vec![e.to_string()])?;
        let mut problems = Vec::new();
        let mut entries = Vec::new();
        for (i, e) in file.logsource.into_iter().enumerate() {
            let at = format!("logsource[{i}]");
            let keys: Vec<(&'static str, String)> = [
                ("category", e.category),
                ("product", e.product),
                ("service", e.service),
            ]
            .into_iter()
            .filter_map(|(k, v)| Some((k, v?.to_ascii_lowercase())))
            .collect();
            if keys.is_empty() {
                problems.push(format!(
                    "{at}: give at least one of category, product, service"
                ));
            }
            let table = match e.table.as_deref() {
                None => None,
                Some("events") => Some(Target::Events),
                Some("flows") => Some(Target::Flows),
                Some(t) => {
                    problems.push(format!("{at}.table: '{t}' is not events or flows"));
                    None
                }
            };
            let events = match e.events.map(|t| selection(&t)) {
                None => None,
                Some(Ok(d)) => Some(d),
                Some(Err(why)) => {
                    problems.push(format!("{at}.events: {why}"));
                    None
                }
            };
            entries.push(Entry {
                keys,
                events,
                fields: e.fields.into_iter().collect(),
                table,
            });
        }
        if problems.is_empty() {
            Ok(Mapping {
                fields: file.fields.into_iter().collect(),
                entries,
            })
        } else {
            Err(problems)
        }
    }

    /// The entries that apply to a rule, least specific first.
    fn applying(&self, ls: &LogSource) -> Vec<&Entry> {
        let given = keys(ls);
        let has = |k: &str, v: &str| {
            given
                .iter()
                .any(|(gk, gv)| *gk == k && gv.is_some_and(|g| g.eq_ignore_ascii_case(v)))
        };
        let mut applying: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.keys.iter().all(|(k, v)| has(k, v)))
            .collect();
        // More specific entries rename last, so their names win.
        applying.sort_by_key(|e| e.keys.len());
        applying
    }

    fn renames<'a>(&'a self, applying: &[&'a Entry]) -> HashMap<&'a str, &'a str> {
        let mut renames: HashMap<&str, &str> = self
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        for e in applying {
            renames.extend(e.fields.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
        renames
    }

    /// Only the renames of a log source (a filter's fields; the rule it joins selects events).
    pub fn rename(&self, ls: &LogSource, plain: &mut PlainRule) {
        let renames = self.renames(&self.applying(ls));
        plain.rename_fields(&|name| renames.get(name).map(|n| (*n).to_owned()));
    }

    /// The name a field of a rule's events has in Canh (correlation group-by fields).
    pub fn field(&self, rule: &SigmaRule, name: &str) -> String {
        let applying = self.applying(&rule.logsource);
        let renames = self.renames(&applying);
        renames.get(name).copied().unwrap_or(name).to_owned()
    }

    /// Whether the mapping says which events a rule with this log source sees. A mapping
    /// without log-source entries selects nothing (every rule sees every event); otherwise
    /// every key the log source gives (category, product, service) must be given by an entry
    /// that applies to it: a Windows rule is not run over firewall logs because its category
    /// happens to be mapped, nor over every event because nothing is.
    pub fn covers(&self, ls: &LogSource) -> bool {
        self.lists(ls, &self.applying(ls))
    }

    /// [`Mapping::covers`], given the entries that apply.
    fn lists(&self, ls: &LogSource, applying: &[&Entry]) -> bool {
        self.entries.is_empty()
            || keys(ls).iter().filter(|(_, v)| v.is_some()).all(|(k, _)| {
                applying
                    .iter()
                    .any(|e| e.keys.iter().any(|(ek, _)| ek == k))
            })
    }

    /// Maps a compiled rule: its fields renamed, the selections of the log sources it is for
    /// added to every condition, and the table it runs over. `None` when the mapping does not
    /// cover the rule's log source ([`Mapping::covers`]): such a rule sees no events.
    pub fn apply(&self, rule: &SigmaRule, mut plain: PlainRule) -> Option<(PlainRule, Target)> {
        let ls = &rule.logsource;
        let applying = self.applying(ls);
        if !self.lists(ls, &applying) {
            return None;
        }
        let table = applying
            .iter()
            .rev()
            .find_map(|e| e.table)
            .unwrap_or(Target::Events);
        let renames = self.renames(&applying);
        plain.rename_fields(&|name| renames.get(name).map(|n| (*n).to_owned()));
        let mut names = Vec::new();
        for (i, e) in applying.iter().enumerate() {
            if let Some(d) = &e.events {
                let name = format!("{LOGSOURCE}{i}");
                plain.detections.insert(name.clone(), d.clone());
                names.push(ConditionExpr::Identifier(name));
            }
        }
        if !names.is_empty() {
            for c in &mut plain.conditions {
                let mut all = vec![std::mem::replace(c, ConditionExpr::Or(Vec::new()))];
                all.extend(names.iter().cloned());
                *c = ConditionExpr::And(all);
            }
        }
        Some((plain, table))
    }
}

/// Counts by name, the largest first (ties by name).
pub fn most_first(counts: BTreeMap<String, usize>) -> Vec<(String, usize)> {
    let mut by: Vec<(String, usize)> = counts.into_iter().collect();
    by.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    by
}

/// The keys a log source may give, with its values.
fn keys(ls: &LogSource) -> [(&'static str, Option<&str>); 3] {
    [
        ("category", ls.category.as_deref()),
        ("product", ls.product.as_deref()),
        ("service", ls.service.as_deref()),
    ]
}

/// A log source as rules write it (`product: windows, category: process_creation`), for
/// messages.
pub fn describe(ls: &LogSource) -> String {
    let parts: Vec<String> = keys(ls)
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}: {v}")))
        .collect();
    if parts.is_empty() {
        "(none)".to_owned()
    } else {
        parts.join(", ")
    }
}

/// A selection written in TOML (`{ "field|modifier" = value or [values] }`) as a detection,
/// through the same parser and compiler as rules (YAML is a superset of JSON).
fn selection(t: &toml::Table) -> Result<Det, String> {
    let json = serde_json::to_string(t).map_err(|e| e.to_string())?;
    let yaml =
        format!("title: selection\nlogsource: {{}}\ndetection:\n  sel: {json}\n  condition: sel\n");
    let c = rsigma_parser::parse_sigma_yaml(&yaml).map_err(|e| e.to_string())?;
    if let Some(e) = c.errors.first() {
        return Err(e.to_string());
    }
    let rule = c.rules.first().ok_or("not a selection")?;
    let mut plain = crate::plain::compile(rule)?;
    plain
        .detections
        .remove("sel")
        .ok_or_else(|| "not a selection".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mapped(mapping: &Mapping, yaml: &str) -> (PlainRule, Target) {
        let c = rsigma_parser::parse_sigma_yaml(yaml).expect("yaml");
        let plain = crate::plain::compile(&c.rules[0]).expect("compiles");
        mapping.apply(&c.rules[0], plain).expect("covered")
    }

    #[test]
    fn the_builtin_mapping_parses() {
        let m = Mapping::builtin();
        assert!(m.entries.len() > 10);
    }

    #[test]
    fn names_are_renamed_and_log_sources_select_events() {
        let m = Mapping::builtin();
        let (r, table) = mapped(
            &m,
            "title: t\nlogsource: {category: firewall}\ndetection:\n  sel:\n    dst_port: 22\n    action: deny\n  condition: sel\n",
        );
        assert_eq!(table, Target::Events);
        let fw =
            json!({"observer.type": "firewall", "destination.port": 22, "event.action": "deny"});
        assert!(r.matches(&fw));
        let mut other = fw.clone();
        other["observer.type"] = json!("host");
        assert!(
            !r.matches(&other),
            "a firewall rule sees firewall events only"
        );
        // linux + sshd: both entries' selections.
        let (r, _) = mapped(
            &m,
            "title: t\nlogsource: {product: linux, service: sshd}\ndetection:\n  keywords:\n    - 'Failed password'\n  condition: keywords\n",
        );
        let ev = json!({"observer.vendor": "Linux", "log.syslog.appname": "sshd", "message": "Failed password for x"});
        assert!(r.matches(&ev));
        let mut sudo = ev.clone();
        sudo["log.syslog.appname"] = json!("sudo");
        assert!(!r.matches(&sudo));
        // `them` does not count what the mapping added.
        let (r, _) = mapped(
            &m,
            "title: t\nlogsource: {product: linux}\ndetection:\n  sel:\n    user.name: root\n  condition: all of them\n",
        );
        assert!(r.matches(&json!({"observer.vendor": "Linux", "user.name": "root"})));
        let (_, table) = mapped(
            &m,
            "title: t\nlogsource: {category: flow}\ndetection:\n  sel:\n    destination.port: 22\n  condition: sel\n",
        );
        assert_eq!(table, Target::Flows);
        // SigmaHQ's FortiGate configuration rules: `action` is the decoder's event.action,
        // `cfgpath` a vendor field, and only type=event logs are seen.
        let (r, _) = mapped(
            &m,
            "title: t\nlogsource: {product: fortigate, service: event}\ndetection:\n  sel:\n    action: Add\n    cfgpath: firewall.policy\n  condition: sel\n",
        );
        let ev = json!({"observer.vendor": "Fortinet", "event.action": "Add",
            "vendor_fields": {"type": "event", "subtype": "system", "cfgpath": "firewall.policy"}});
        assert!(r.matches(&ev));
        let mut traffic = ev.clone();
        traffic["vendor_fields"]["type"] = json!("traffic");
        assert!(!r.matches(&traffic));
    }

    /// Every key of a rule's log source must be listed; a mapping without entries selects
    /// nothing.
    #[test]
    fn rules_see_events_only_through_the_log_sources_listed() {
        let m = Mapping::builtin();
        let ls = |yaml: &str| -> LogSource {
            let c = rsigma_parser::parse_sigma_yaml(&format!(
                "title: t\nlogsource: {yaml}\ndetection:\n  sel: {{a: 1}}\n  condition: sel\n"
            ))
            .expect("yaml");
            c.rules[0].logsource.clone()
        };
        for covered in [
            "{category: firewall}",
            "{product: linux}",
            "{product: Linux, service: sshd}",
            "{product: canh, category: authentication}",
            "{product: fortigate, service: event}",
            "{product: cisco, service: aaa}",
            "{}",
        ] {
            assert!(m.covers(&ls(covered)), "{covered}");
        }
        for not in [
            "{product: windows, category: process_creation}",
            // The category is listed, the product is not.
            "{product: windows, category: firewall}",
            "{product: linux, category: process_creation}",
            "{product: linux, service: auditd}",
            "{product: zeek, service: rdp}",
        ] {
            assert!(!m.covers(&ls(not)), "{not}");
        }
        let c = rsigma_parser::parse_sigma_yaml(
            "title: t\nlogsource: {product: windows}\ndetection:\n  sel: {a: 1}\n  condition: not sel\n",
        )
        .expect("yaml");
        let plain = crate::plain::compile(&c.rules[0]).expect("compiles");
        assert!(m.apply(&c.rules[0], plain.clone()).is_none());
        assert!(Mapping::identity().apply(&c.rules[0], plain).is_some());
        assert_eq!(
            describe(&ls("{product: windows, category: process_creation}")),
            "category: process_creation, product: windows"
        );
    }

    #[test]
    fn bad_mappings_are_reported_with_where() {
        let e = Mapping::parse(
            "[[logsource]]\ntable = \"nope\"\n[[logsource]]\ncategory = \"x\"\nevents = { \"a|cidr\" = \"no\" }\n",
        )
        .expect_err("bad");
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].starts_with("logsource[0]: give at least one"), "{e:?}");
        assert!(e[1].starts_with("logsource[0].table"), "{e:?}");
        assert!(
            e[2].starts_with("logsource[1].events: sel: a: 'no' is not a CIDR"),
            "{e:?}"
        );
    }
}
