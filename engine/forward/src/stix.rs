//! Alerts as STIX 2.1 objects.
//!
//! One alert becomes:
//! * an `indicator` for the rule (pattern type `sigma`, the rule's YAML as the pattern), the
//!   same object for every alert of that rule and text;
//! * a `sighting` of that indicator: first and last event time, count, where it was seen (the
//!   agency's `identity`), and the alert id and rule id as custom properties;
//! * `observed-data` referring to the observables as cyber-observable objects: `ipv4-addr` /
//!   `ipv6-addr`, `network-traffic` between them (with the destination port), `user-account`;
//! * created by the province's `identity`, marked with a TLP `marking-definition`.
//!
//! Canh's own properties (`x_canh_alert_id`, `x_canh_rule_id`, `x_canh_level`,
//! `x_canh_group_key`) are STIX 2.1 custom properties. A top-level property extension would be
//! the newer form, but the reference TAXII server (medallion 3.0) fails to list a collection
//! holding an `extension-definition` (it takes its `version` for a timestamp).
//!
//! Every id is deterministic (UUIDv5: cyber-observables by the STIX 2.1 rules for their
//! id-contributing properties, the rest from the alert id, rule and names) and every timestamp
//! comes from the alert, so a redelivered alert is the very same objects, which a TAXII server
//! recognises as already present.

use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::alert::ForwardAlert;
use crate::dest::Tlp;

/// The STIX 2.1 namespace for cyber-observable ids (section 2.9).
const SCO_NAMESPACE: Uuid = Uuid::from_u128(0x00ab_edb4_aa42_466c_9c01_fed2_3315_a9b7);

/// Creation time of the objects that describe Canh's side (identity, indicators).
const FIXED_TIME: &str = "2024-01-01T00:00:00.000Z";

fn canh_namespace() -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, b"urn:canh:stix")
}

/// A deterministic id of the UUIDv4 form STIX asks for (SDOs SHOULD use UUIDv4): the bits of
/// a UUIDv5 of the name, with the version set to 4.
fn id(kind: &str, name: &str) -> String {
    let v5 = Uuid::new_v5(&canh_namespace(), name.as_bytes());
    format!(
        "{kind}--{}",
        uuid::Builder::from_random_bytes(*v5.as_bytes()).into_uuid()
    )
}

/// A cyber-observable's id from its id-contributing properties (RFC 8785 canonical JSON: the
/// keys sorted, no spaces; serde_json's map keeps them sorted without `preserve_order`, so
/// it is built here by hand).
fn sco_id(kind: &str, contributing: &[(&str, Value)]) -> String {
    let mut fields: Vec<&(&str, Value)> = contributing.iter().collect();
    fields.sort_by_key(|(k, _)| *k);
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{}", Value::from(*k), v))
        .collect();
    let canonical = format!("{{{}}}", body.join(","));
    format!(
        "{kind}--{}",
        Uuid::new_v5(&SCO_NAMESPACE, canonical.as_bytes())
    )
}

/// A STIX timestamp (UTC, milliseconds).
pub fn timestamp(ns: i64) -> String {
    let ns = ns.max(0);
    jiff::Timestamp::from_nanosecond(i128::from(ns))
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// The STIX 2.1 predefined TLP 1.0 marking definitions (section 7.2.1.4).
fn tlp_marking(tlp: Tlp) -> Value {
    let (id, name) = match tlp {
        Tlp::White => ("613f2e26-407d-48c7-9eca-b8e91df99dc9", "white"),
        Tlp::Green => ("34098fce-860f-48ae-8e50-ebd3cc5e41da", "green"),
        Tlp::Amber => ("f88d31f6-486f-44da-b317-01333bde0b82", "amber"),
        Tlp::Red => ("5e57c739-391a-4eb3-b6be-7d15ca92d5ed", "red"),
    };
    json!({
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": format!("marking-definition--{id}"),
        "created": "2017-01-20T00:00:00.000Z",
        "definition_type": "tlp",
        "name": format!("TLP:{}", name.to_uppercase()),
        "definition": {"tlp": name},
    })
}

/// The objects of one destination.
#[derive(Debug, Clone)]
pub struct Stix {
    identity: Value,
    marking: Value,
}

/// Objects of one alert: the alert's own, and those many alerts share (by id).
#[derive(Debug, Default)]
pub struct AlertObjects {
    pub own: Vec<Value>,
    pub shared: Vec<Value>,
}

fn ip_object(ip: &str) -> Value {
    let kind = if ip.contains(':') {
        "ipv6-addr"
    } else {
        "ipv4-addr"
    };
    json!({
        "type": kind,
        "spec_version": "2.1",
        "id": sco_id(kind, &[("value", Value::from(ip))]),
        "value": ip,
    })
}

fn object_id(v: &Value) -> String {
    v.get("id").and_then(Value::as_str).unwrap_or("").to_owned()
}

impl Stix {
    pub fn new(identity_name: &str, tlp: Tlp) -> Stix {
        let identity = json!({
            "type": "identity",
            "spec_version": "2.1",
            "id": id("identity", &format!("soc:{identity_name}")),
            "created": FIXED_TIME,
            "modified": FIXED_TIME,
            "name": identity_name,
            "identity_class": "organization",
        });
        Stix {
            identity,
            marking: tlp_marking(tlp),
        }
    }

    fn identity_id(&self) -> String {
        object_id(&self.identity)
    }

    fn marking_id(&self) -> String {
        object_id(&self.marking)
    }

    /// The objects every envelope refers to: the province's identity and the TLP marking.
    pub fn common(&self) -> [Value; 2] {
        [self.identity.clone(), self.marking.clone()]
    }

    pub fn alert(&self, a: &ForwardAlert) -> AlertObjects {
        let mut out = AlertObjects::default();
        let created = timestamp(a.created_ns);
        let marking = vec![self.marking_id()];
        let (first, last) = (a.first_ns.min(a.last_ns), a.first_ns.max(a.last_ns));

        // The rule: one indicator per rule text.
        let pattern = a.rule_text.clone().unwrap_or_else(|| {
            format!(
                "title: {}\nid: {}\nlevel: {}\n",
                a.rule_title, a.rule_id, a.level
            )
        });
        let mut indicator = json!({
            "type": "indicator",
            "spec_version": "2.1",
            "id": id("indicator", &format!("rule:{}\n{pattern}", a.rule_id)),
            "created_by_ref": self.identity_id(),
            "created": FIXED_TIME,
            "modified": FIXED_TIME,
            "name": a.rule_title,
            "description": format!("Sigma rule {} (level {})", a.rule_id, a.level),
            "indicator_types": ["malicious-activity"],
            "pattern_type": "sigma",
            "pattern": pattern,
            "valid_from": FIXED_TIME,
            "object_marking_refs": marking,
            "x_canh_rule_id": a.rule_id,
            "x_canh_level": a.level,
        });
        if !a.tags.is_empty() {
            indicator["labels"] = json!(a.tags);
        }
        let indicator_id = object_id(&indicator);
        out.shared.push(indicator);

        // Where it was seen: the agency, or the province's SOC when the sender is unknown.
        let seen_by = match a.organization.as_deref().filter(|o| !o.is_empty()) {
            Some(org) => {
                let agency = json!({
                    "type": "identity",
                    "spec_version": "2.1",
                    "id": id("identity", &format!("organization:{org}")),
                    "created_by_ref": self.identity_id(),
                    "created": FIXED_TIME,
                    "modified": FIXED_TIME,
                    "name": org,
                    "identity_class": "organization",
                });
                let agency_id = object_id(&agency);
                out.shared.push(agency);
                agency_id
            }
            None => self.identity_id(),
        };

        // The observables.
        let mut refs = Vec::new();
        let ip_ref = |ip: &Option<String>, out: &mut AlertObjects| {
            ip.as_deref().filter(|s| !s.is_empty()).map(|ip| {
                let o = ip_object(ip);
                let id = object_id(&o);
                out.shared.push(o);
                id
            })
        };
        let src = ip_ref(&a.source_ip, &mut out);
        let dst = ip_ref(&a.destination_ip, &mut out);
        refs.extend(src.iter().cloned());
        refs.extend(dst.iter().cloned());
        if src.is_some() || dst.is_some() {
            let v6 = [&a.source_ip, &a.destination_ip]
                .iter()
                .any(|ip| ip.as_deref().is_some_and(|s| s.contains(':')));
            let protocols = json!([if v6 { "ipv6" } else { "ipv4" }]);
            let mut contributing = vec![("protocols", protocols.clone())];
            let mut nt = Map::new();
            nt.insert("type".into(), "network-traffic".into());
            nt.insert("spec_version".into(), "2.1".into());
            if let Some(s) = &src {
                contributing.push(("src_ref", Value::from(s.as_str())));
                nt.insert("src_ref".into(), s.as_str().into());
            }
            if let Some(d) = &dst {
                contributing.push(("dst_ref", Value::from(d.as_str())));
                nt.insert("dst_ref".into(), d.as_str().into());
            }
            if let Some(p) = a.destination_port {
                contributing.push(("dst_port", Value::from(p)));
                nt.insert("dst_port".into(), p.into());
            }
            nt.insert("protocols".into(), protocols);
            let nt_id = sco_id("network-traffic", &contributing);
            nt.insert("id".into(), nt_id.clone().into());
            refs.push(nt_id);
            out.shared.push(Value::Object(nt));
        }
        if let Some(user) = a.user_name.as_deref().filter(|u| !u.is_empty()) {
            let u = json!({
                "type": "user-account",
                "spec_version": "2.1",
                "id": sco_id("user-account", &[("account_login", Value::from(user))]),
                "account_login": user,
            });
            refs.push(object_id(&u));
            out.shared.push(u);
        }

        let mut sighting = json!({
            "type": "sighting",
            "spec_version": "2.1",
            "id": id("sighting", &format!("alert:{}", a.id)),
            "created_by_ref": self.identity_id(),
            "created": created,
            "modified": created,
            "first_seen": timestamp(first),
            "last_seen": timestamp(last),
            "count": a.count.min(999_999_999),
            "sighting_of_ref": indicator_id,
            "where_sighted_refs": [seen_by],
            "description": format!("{} ({})", a.rule_title, a.level),
            "object_marking_refs": marking,
            "x_canh_alert_id": a.id,
            "x_canh_rule_id": a.rule_id,
            "x_canh_level": a.level,
        });
        if !a.group_key.is_empty() {
            sighting["x_canh_group_key"] = Value::from(a.group_key.as_str());
        }
        if !refs.is_empty() {
            let observed = json!({
                "type": "observed-data",
                "spec_version": "2.1",
                "id": id("observed-data", &format!("alert:{}", a.id)),
                "created_by_ref": self.identity_id(),
                "created": created,
                "modified": created,
                "first_observed": timestamp(first),
                "last_observed": timestamp(last),
                "number_observed": a.count.clamp(1, 999_999_999),
                "object_refs": refs,
                "object_marking_refs": marking,
            });
            sighting["observed_data_refs"] = json!([object_id(&observed)]);
            out.own.push(observed);
        }
        out.own.push(sighting);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cyber_observable_ids_follow_the_specification() {
        // The ids the OASIS `stix2` Python library gives the same objects.
        assert_eq!(
            sco_id("ipv4-addr", &[("value", Value::from("198.51.100.3"))]),
            "ipv4-addr--28bb3599-77cd-5a82-a950-b5bc3caf07c4"
        );
    }

    #[test]
    fn an_alert_gives_the_same_objects_every_time() {
        let a = ForwardAlert {
            id: "5d7f0b0e-0000-4000-8000-000000000001".into(),
            rule_id: "r1".into(),
            rule_title: "SSH brute force".into(),
            level: "high".into(),
            first_ns: 1_700_000_000_000_000_000,
            last_ns: 1_700_000_060_000_000_000,
            created_ns: 1_700_000_061_000_000_000,
            count: 12,
            source_ip: Some("203.0.113.9".into()),
            destination_ip: Some("10.1.2.3".into()),
            destination_port: Some(22),
            user_name: Some("root".into()),
            organization: Some("So Tai Chinh".into()),
            ..Default::default()
        };
        let s = Stix::new("Province SOC", Tlp::Amber);
        let o = s.alert(&a);
        assert_eq!(o.own.len(), 2);
        let kinds: Vec<&str> = o.shared.iter().filter_map(|v| v["type"].as_str()).collect();
        assert_eq!(
            kinds,
            [
                "indicator",
                "identity",
                "ipv4-addr",
                "ipv4-addr",
                "network-traffic",
                "user-account"
            ]
        );
        let ids: Vec<String> = o.shared[4..].iter().map(object_id).collect();
        assert_eq!(
            ids,
            [
                "network-traffic--c484625b-4a04-5d50-980a-0c8ab6ae4e59",
                "user-account--3d209579-8f71-5179-b6a3-49509efb52cc"
            ]
        );
        let again = s.alert(&a);
        assert_eq!(o.own, again.own);
        assert_eq!(o.own[1]["x_canh_alert_id"], a.id.as_str());
        assert_eq!(o.own[1]["first_seen"], "2023-11-14T22:13:20.000Z");
    }
}
