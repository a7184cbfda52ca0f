//! Alerts: what an analyst sees of a rule match or a correlation, deduplicated.
//!
//! A match or a correlation becomes a [`Candidate`]; [`Alerter::raise`] turns the first
//! candidate of a (rule, group key) into an [`Alert`] at once, and folds the ones that follow
//! within the rule's suppression window into it (count, last time, samples) instead of raising
//! new alerts. When such a window closes, [`Alerter::expire`] gives the alert again, with the
//! same id and the final count, so the stored row that counts is the last one per id.
//!
//! Ids are stable: derived from the rule id, the group key and the first event time, so the
//! same events give the same alert id live, on replay and in a hunt over history — as long as
//! they reach the rules in time order. A correlation that fires live before an earlier event
//! of its group has arrived (another connection, another parser thread) starts later than the
//! hunt's, which sees history in order, and its alert gets another id.

use std::collections::HashMap;

use serde_json::Value;

/// The event fields that identify "the same thing happening again" for a single-event rule.
pub const DEDUP_FIELDS: [&str; 3] = ["source.ip", "destination.ip", "user.name"];

/// The fields an alert keeps as its key observables (the alerts table's columns).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observables {
    pub organization: Option<String>,
    pub source_ip: Option<String>,
    pub destination_ip: Option<String>,
    pub destination_port: Option<u16>,
    pub user_name: Option<String>,
}

impl Observables {
    /// From an event (flat dotted or nested keys); a group key's values fill what it has.
    pub fn of(event: &Value) -> Observables {
        let text = |f: &str| {
            crate::plain::lookup(event, f)
                .and_then(crate::plain::text_of)
                .filter(|s| !s.is_empty())
        };
        Observables {
            organization: text("organization.name"),
            source_ip: text("source.ip"),
            destination_ip: text("destination.ip"),
            destination_port: text("destination.port").and_then(|p| p.parse().ok()),
            user_name: text("user.name"),
        }
    }
}

/// What a rule says about itself, for its alerts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleInfo {
    pub id: String,
    pub title: String,
    pub level: String,
    pub tags: Vec<String>,
}

/// A match or a correlation, before deduplication.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Index into the rules given to [`Alerter::new`].
    pub rule: u32,
    /// The group key: (field, value) pairs.
    pub key: Vec<(String, String)>,
    pub first_ns: i64,
    pub last_ns: i64,
    pub count: u64,
    pub observables: Observables,
    pub samples: Vec<Value>,
}

/// An alert, as stored and forwarded.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub id: String,
    pub rule: RuleInfo,
    /// `field=value` pairs joined by `,`.
    pub group_key: String,
    pub first_ns: i64,
    pub last_ns: i64,
    pub count: u64,
    pub observables: Observables,
    /// JSON texts of up to the sample limit of events.
    pub samples: Vec<String>,
}

#[derive(Debug)]
struct Open {
    alert: Alert,
    /// Event time at which the window closes.
    until_ns: i64,
    /// Whether anything was folded in since the alert was given out.
    changed: bool,
}

/// Deduplication and suppression of alerts per rule and group key.
#[derive(Debug)]
pub struct Alerter {
    rules: Vec<RuleInfo>,
    /// Per rule, how long after an alert the same key is folded into it (event time).
    suppress_ns: Vec<i64>,
    open: HashMap<(u32, String), Open>,
    samples: usize,
    max_open: usize,
    /// Alerts folded into an open one (for the metrics).
    pub suppressed: u64,
}

impl Alerter {
    /// `suppress_ns` per rule; `samples` events kept per alert; at most `max_open` windows
    /// (past it, the oldest closes early).
    pub fn new(
        rules: Vec<RuleInfo>,
        suppress_ns: Vec<i64>,
        samples: usize,
        max_open: usize,
    ) -> Alerter {
        Alerter {
            rules,
            suppress_ns,
            open: HashMap::new(),
            samples,
            max_open: max_open.max(1),
            suppressed: 0,
        }
    }

    /// A new alert (`None` when the candidate was folded into an open one), and the alerts of
    /// windows this closed that had folded more in.
    pub fn raise(&mut self, c: Candidate) -> (Option<Alert>, Vec<Alert>) {
        let group_key = c
            .key
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let slot = (c.rule, group_key);
        if let Some(open) = self.open.get_mut(&slot) {
            if c.first_ns <= open.until_ns {
                let a = &mut open.alert;
                a.count += c.count;
                a.first_ns = a.first_ns.min(c.first_ns);
                a.last_ns = a.last_ns.max(c.last_ns);
                for s in c.samples {
                    if a.samples.len() < self.samples {
                        a.samples.push(s.to_string());
                    }
                }
                open.changed = true;
                self.suppressed += 1;
                return (None, Vec::new());
            }
        }
        // A new window (a closed one for the same key is given out first if it changed).
        let mut closed = Vec::new();
        if let Some(old) = self.open.remove(&slot) {
            if old.changed {
                closed.push(old.alert);
            }
        }
        let rule = self.rules.get(c.rule as usize).cloned().unwrap_or_default();
        let suppress = self.suppress_ns.get(c.rule as usize).copied().unwrap_or(0);
        let alert = Alert {
            id: alert_id(&rule.id, &slot.1, c.first_ns),
            rule,
            group_key: slot.1.clone(),
            first_ns: c.first_ns,
            last_ns: c.last_ns,
            count: c.count,
            observables: c.observables,
            samples: c
                .samples
                .iter()
                .take(self.samples)
                .map(Value::to_string)
                .collect(),
        };
        if suppress > 0 {
            if self.open.len() >= self.max_open {
                closed.extend(self.close_oldest());
            }
            self.open.insert(
                slot,
                Open {
                    alert: alert.clone(),
                    until_ns: c.first_ns.saturating_add(suppress),
                    changed: false,
                },
            );
        }
        (Some(alert), closed)
    }

    /// Closes the windows that end before `now_ns` (event time); gives out those that folded
    /// more in since their alert.
    pub fn expire(&mut self, now_ns: i64) -> Vec<Alert> {
        let done: Vec<(u32, String)> = self
            .open
            .iter()
            .filter(|(_, o)| o.until_ns < now_ns)
            .map(|(k, _)| k.clone())
            .collect();
        done.into_iter()
            .filter_map(|k| self.open.remove(&k))
            .filter(|o| o.changed)
            .map(|o| o.alert)
            .collect()
    }

    /// Suppression windows open now.
    pub fn open(&self) -> usize {
        self.open.len()
    }

    /// After a rule reload: takes over `old`'s open windows of the rules this alerter has too
    /// (the same id, title, level and tags, and the same suppression), so that what they go on
    /// matching folds into the alerts already raised instead of raising them again. Returns the
    /// others' alerts that folded more in, closed (as [`Alerter::close_all`] does).
    pub fn carry_over(&mut self, old: Alerter) -> Vec<Alert> {
        let mut by_id: HashMap<&str, Vec<u32>> = HashMap::new();
        for (j, r) in self.rules.iter().enumerate() {
            by_id.entry(r.id.as_str()).or_default().push(j as u32);
        }
        let to: Vec<Option<u32>> = old
            .rules
            .iter()
            .enumerate()
            .map(|(i, info)| {
                by_id.get(info.id.as_str())?.iter().copied().find(|&j| {
                    self.rules[j as usize] == *info
                        && self.suppress_ns.get(j as usize) == old.suppress_ns.get(i)
                })
            })
            .collect();
        let mut closed = Vec::new();
        for ((rule, key), open) in old.open {
            match to.get(rule as usize).copied().flatten() {
                Some(j) if self.open.len() < self.max_open => {
                    self.open.insert((j, key), open);
                }
                _ => closed.extend(open.changed.then_some(open.alert)),
            }
        }
        self.suppressed += old.suppressed;
        closed
    }

    /// Closes every window (shutdown).
    pub fn close_all(&mut self) -> Vec<Alert> {
        self.open
            .drain()
            .filter(|(_, o)| o.changed)
            .map(|(_, o)| o.alert)
            .collect()
    }

    fn close_oldest(&mut self) -> Option<Alert> {
        let k = self
            .open
            .iter()
            .min_by_key(|(_, o)| o.until_ns)
            .map(|(k, _)| k.clone())?;
        self.open.remove(&k).filter(|o| o.changed).map(|o| o.alert)
    }
}

/// A stable id: 128 bits of two FNV-1a hashes over the rule id, group key and first time,
/// written as a UUID.
pub fn alert_id(rule: &str, key: &str, first_ns: i64) -> String {
    let mut data = Vec::with_capacity(rule.len() + key.len() + 10);
    data.extend_from_slice(rule.as_bytes());
    data.push(0);
    data.extend_from_slice(key.as_bytes());
    data.push(0);
    data.extend_from_slice(&first_ns.to_le_bytes());
    let fnv = |seed: u64| {
        data.iter().fold(seed, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    let (a, b) = (fnv(0xcbf2_9ce4_8422_2325), fnv(0x6c62_272e_07bb_0142));
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SEC: i64 = 1_000_000_000;

    fn candidate(key: &str, t: i64) -> Candidate {
        let e = json!({"source.ip": key, "organization.name": "So Y Te", "destination.port": 22});
        Candidate {
            rule: 0,
            key: vec![("source.ip".into(), key.into())],
            first_ns: t * SEC,
            last_ns: t * SEC,
            count: 1,
            observables: Observables::of(&e),
            samples: vec![e],
        }
    }

    #[test]
    fn repeats_within_the_window_fold_into_one_alert() {
        let rules = vec![RuleInfo {
            id: "r1".into(),
            title: "SSH failure".into(),
            level: "low".into(),
            tags: vec![],
        }];
        let mut a = Alerter::new(rules, vec![300 * SEC], 2, 100);
        let (first, closed) = a.raise(candidate("10.0.0.1", 0));
        let first = first.expect("new alert");
        assert!(closed.is_empty());
        assert_eq!(first.observables.organization.as_deref(), Some("So Y Te"));
        assert_eq!(first.observables.destination_port, Some(22));
        assert_eq!(first.group_key, "source.ip=10.0.0.1");
        // Same key within 5 minutes: folded; another key: a new alert.
        assert!(a.raise(candidate("10.0.0.1", 10)).0.is_none());
        assert!(a.raise(candidate("10.0.0.1", 20)).0.is_none());
        assert!(a.raise(candidate("10.0.0.2", 20)).0.is_some());
        assert_eq!(a.suppressed, 2);
        // The window closes: the alert again, same id, final count, samples bounded.
        assert!(a.expire(200 * SEC).is_empty());
        let closed = a.expire(301 * SEC);
        assert_eq!(closed.len(), 1, "only the one that folded more in");
        assert_eq!(
            (closed[0].id.as_str(), closed[0].count),
            (first.id.as_str(), 3)
        );
        assert_eq!(closed[0].samples.len(), 2);
        assert_eq!(closed[0].last_ns, 20 * SEC);
        // After the window: a new alert with a new id.
        let again = a.raise(candidate("10.0.0.1", 400)).0.expect("new");
        assert_ne!(again.id, first.id);
    }

    /// A reload keeps the open windows of rules it leaves as they were (wherever they are in
    /// the new list) and closes those of changed rules.
    #[test]
    fn a_reload_keeps_the_windows_of_unchanged_rules() {
        let info = |id: &str, level: &str| RuleInfo {
            id: id.into(),
            title: id.into(),
            level: level.into(),
            tags: vec![],
        };
        let mut old = Alerter::new(
            vec![info("kept", "low"), info("changed", "low")],
            vec![300 * SEC; 2],
            5,
            100,
        );
        let kept = old.raise(candidate("10.0.0.1", 0)).0.expect("new");
        let mut c = candidate("10.0.0.1", 0);
        c.rule = 1;
        old.raise(c.clone()).0.expect("new");
        c.first_ns = SEC;
        assert!(old.raise(c).0.is_none());
        let mut new = Alerter::new(
            vec![
                info("added", "low"),
                info("changed", "high"),
                info("kept", "low"),
            ],
            vec![300 * SEC; 3],
            5,
            100,
        );
        let closed = new.carry_over(old);
        assert_eq!(closed.len(), 1);
        assert_eq!(
            (closed[0].rule.id.as_str(), closed[0].count),
            ("changed", 2)
        );
        assert_eq!(new.suppressed, 1);
        // The kept rule is third now: its match folds into the alert from before the reload.
        let mut c = candidate("10.0.0.1", 10);
        c.rule = 2;
        assert!(new.raise(c).0.is_none());
        let all = new.close_all();
        assert_eq!((all[0].id.as_str(), all[0].count), (kept.id.as_str(), 2));
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        let id = alert_id("r1", "source.ip=10.0.0.1", 5);
        assert_eq!(id, alert_id("r1", "source.ip=10.0.0.1", 5));
        assert_ne!(id, alert_id("r1", "source.ip=10.0.0.1", 6));
        assert_ne!(id, alert_id("r2", "source.ip=10.0.0.1", 5));
        assert_eq!(id.len(), 36);
    }

    #[test]
    fn without_suppression_every_candidate_is_an_alert() {
        let mut a = Alerter::new(vec![RuleInfo::default()], vec![0], 5, 10);
        assert!(a.raise(candidate("x", 0)).0.is_some());
        assert!(a.raise(candidate("x", 0)).0.is_some());
    }
}
