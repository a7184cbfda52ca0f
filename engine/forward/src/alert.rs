//! The alert as it is kept in the outbox and handed to destinations, and what a destination
//! may choose and hide of it (filters, redaction).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One alert, as forwarded: the alert row's content plus the rule's own text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ForwardAlert {
    /// The stable alert id (a UUID): the same events give the same id live and on replay.
    pub id: String,
    pub rule_id: String,
    pub rule_title: String,
    /// Sigma level: informational, low, medium, high, critical.
    pub level: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The rule's Sigma YAML document, where it is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_text: Option<String>,
    /// `field=value` pairs joined by `,`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group_key: String,
    /// Event time of the first and last event, ns since the epoch.
    pub first_ns: i64,
    pub last_ns: i64,
    pub count: u64,
    /// When Canh raised the alert, ns since the epoch.
    pub created_ns: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// A bounded sample of the events (JSON objects with ECS keys).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<Value>,
}

/// Sigma levels in order; an unknown level ranks as medium.
pub fn level_rank(level: &str) -> u8 {
    match level.to_ascii_lowercase().as_str() {
        "informational" | "info" => 0,
        "low" => 1,
        "high" => 3,
        "critical" => 4,
        _ => 2,
    }
}

/// Which alerts a destination receives. Empty lists let everything through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// The lowest level sent (`None`: all).
    pub min_level: Option<String>,
    /// At least one of these tags (`attack.*` matches by prefix).
    pub tags: Vec<String>,
    /// One of these organizations.
    pub organizations: Vec<String>,
}

impl Filter {
    pub fn accepts(&self, a: &ForwardAlert) -> bool {
        if let Some(min) = &self.min_level {
            if level_rank(&a.level) < level_rank(min) {
                return false;
            }
        }
        let tag_ok = self.tags.is_empty()
            || self.tags.iter().any(|want| {
                a.tags.iter().any(|t| match want.strip_suffix('*') {
                    Some(prefix) => t.starts_with(prefix),
                    None => t.eq_ignore_ascii_case(want),
                })
            });
        let org_ok = self.organizations.is_empty()
            || a.organization
                .as_ref()
                .is_some_and(|o| self.organizations.iter().any(|w| w == o));
        tag_ok && org_ok
    }
}

/// Fields a destination must not see. Names are the alert's own (`user.name`, `source.ip`,
/// `destination.ip`, `destination.port`, `organization.name`, `samples`, `rule_text`,
/// `group_key`) or event fields, which are removed from every sample and from the group key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redact(pub Vec<String>);

impl Redact {
    pub fn apply(&self, a: &mut ForwardAlert) {
        for f in &self.0 {
            match f.as_str() {
                "samples" => a.samples.clear(),
                "rule_text" => a.rule_text = None,
                "group_key" => a.group_key.clear(),
                "user.name" => a.user_name = None,
                "source.ip" => a.source_ip = None,
                "destination.ip" => a.destination_ip = None,
                "destination.port" => a.destination_port = None,
                "organization.name" => a.organization = None,
                _ => {}
            }
            for s in &mut a.samples {
                remove_path(s, f);
            }
            if !a.group_key.is_empty() {
                let prefix = format!("{f}=");
                a.group_key = a
                    .group_key
                    .split(',')
                    .filter(|kv| !kv.starts_with(&prefix))
                    .collect::<Vec<_>>()
                    .join(",");
            }
        }
    }
}

/// Removes a field from an event given with flat dotted keys, nested objects, or a mix.
fn remove_path(v: &mut Value, path: &str) {
    let Value::Object(map) = v else {
        return;
    };
    if map.remove(path).is_some() {
        return;
    }
    if let Some((head, rest)) = path.split_once('.') {
        if let Some(child) = map.get_mut(head) {
            remove_path(child, rest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alert() -> ForwardAlert {
        ForwardAlert {
            id: "a".into(),
            level: "high".into(),
            tags: vec!["attack.t1110".into(), "attack.credential_access".into()],
            organization: Some("So Tai Chinh".into()),
            user_name: Some("alice".into()),
            group_key: "source.ip=10.0.0.1,user.name=alice".into(),
            samples: vec![json!({"user.name": "alice", "source": {"ip": "10.0.0.1"}})],
            ..Default::default()
        }
    }

    #[test]
    fn filters_by_level_tag_and_organization() {
        let a = alert();
        let f = |min: Option<&str>, tags: &[&str], orgs: &[&str]| Filter {
            min_level: min.map(str::to_owned),
            tags: tags.iter().map(|s| s.to_string()).collect(),
            organizations: orgs.iter().map(|s| s.to_string()).collect(),
        };
        assert!(f(None, &[], &[]).accepts(&a));
        assert!(f(Some("medium"), &[], &[]).accepts(&a));
        assert!(!f(Some("critical"), &[], &[]).accepts(&a));
        assert!(f(None, &["attack.*"], &[]).accepts(&a));
        assert!(!f(None, &["attack.t1078"], &[]).accepts(&a));
        assert!(f(None, &[], &["So Tai Chinh"]).accepts(&a));
        assert!(!f(None, &[], &["So Y Te"]).accepts(&a));
    }

    #[test]
    fn redaction_reaches_samples_and_the_group_key() {
        let mut a = alert();
        Redact(vec!["user.name".into(), "source.ip".into()]).apply(&mut a);
        assert_eq!(a.user_name, None);
        assert_eq!(a.group_key, "");
        assert_eq!(a.samples[0], json!({"source": {}}));
        let mut a = alert();
        Redact(vec!["samples".into()]).apply(&mut a);
        assert!(a.samples.is_empty());
        assert_eq!(a.user_name.as_deref(), Some("alice"));
    }
}
