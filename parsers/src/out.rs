//! The row a decoder writes: typed setters over the `events` columns.
//!
//! Decoders call these for what they find; the builder keeps the first value set for a column,
//! so a decoder's values take precedence over the syslog header's (the decoder runs first).
//! A value that does not fit its column (an address that is not an IP, a port above 65535) is
//! kept in the vendor map under the device's key and the row is marked `partial`, so nothing is
//! lost and nothing wrong lands in a typed column.

use std::net::IpAddr;

use canh_schema::fields::events::Col;
use canh_schema::TableBuilder;

/// Writes one row's decoded fields.
pub struct Out<'b> {
    b: &'b mut TableBuilder,
    /// The first field that did not fit its column, for `parse.error`.
    problem: Option<String>,
    /// The event time the decoder found, if any.
    event_ns: Option<i64>,
}

impl<'b> Out<'b> {
    pub fn new(b: &'b mut TableBuilder) -> Self {
        Out {
            b,
            problem: None,
            event_ns: None,
        }
    }

    /// The builder, for the row's remaining columns.
    pub fn builder(&mut self) -> &mut TableBuilder {
        self.b
    }

    /// The first value that did not fit its column, if any.
    pub fn take_problem(&mut self) -> Option<String> {
        self.problem.take()
    }

    /// Notes a problem (the first one is kept).
    pub fn problem(&mut self, what: impl FnOnce() -> String) {
        if self.problem.is_none() {
            self.problem = Some(what());
        }
    }

    /// Sets a text column; empty values are left unset.
    #[inline]
    pub fn str(&mut self, col: Col, v: &str) {
        if !v.is_empty() {
            self.b.set_str(col, v);
        }
    }

    /// Sets a text column in lower case (copied only when it has upper-case letters).
    #[inline]
    pub fn str_lower(&mut self, col: Col, v: &str) {
        if v.bytes().any(|b| b.is_ascii_uppercase()) {
            self.str(col, &v.to_ascii_lowercase());
        } else {
            self.str(col, v);
        }
    }

    /// Sets an IP address column, accepting IPv4 and IPv6 (an IPv6 zone `%eth0` is dropped).
    /// Empty values and placeholders (`N/A`, `-`) are left unset; anything else that is not an
    /// address goes to the vendor map under `key`.
    #[inline]
    pub fn ip(&mut self, col: Col, key: &str, v: &str) {
        if is_placeholder(v) {
            return;
        }
        let addr = match v.bytes().position(|b| b == b'%') {
            Some(p) => &v[..p],
            None => v,
        };
        if addr.parse::<IpAddr>().is_ok() {
            self.b.set_str(col, addr);
        } else {
            self.misfit(key, v, "an IP address");
        }
    }

    /// Sets a port column from decimal text.
    #[inline]
    pub fn port(&mut self, col: Col, key: &str, v: &str) {
        if is_placeholder(v) {
            return;
        }
        match v.parse::<u16>() {
            Ok(p) => self.b.set_uint(col, u64::from(p)),
            Err(_) => self.misfit(key, v, "a port"),
        }
    }

    /// Sets an unsigned integer column from decimal text.
    #[inline]
    pub fn uint(&mut self, col: Col, key: &str, v: &str) {
        if is_placeholder(v) {
            return;
        }
        match v.parse::<u64>() {
            Ok(n) => self.b.set_uint(col, n),
            Err(_) => self.misfit(key, v, "a number"),
        }
    }

    /// Sets an unsigned integer column.
    #[inline]
    pub fn num(&mut self, col: Col, n: u64) {
        self.b.set_uint(col, n);
    }

    /// Bytes and packets each way, and their totals in `network.*`.
    pub fn counters(&mut self, sb: Option<u64>, db: Option<u64>, sp: Option<u64>, dp: Option<u64>) {
        for (col, v) in [
            (Col::SourceBytes, sb),
            (Col::DestinationBytes, db),
            (Col::SourcePackets, sp),
            (Col::DestinationPackets, dp),
        ] {
            if let Some(v) = v {
                self.b.set_uint(col, v);
            }
        }
        if let Some(n) = sum(sb, db) {
            self.b.set_uint(Col::NetworkBytes, n);
        }
        if let Some(n) = sum(sp, dp) {
            self.b.set_uint(Col::NetworkPackets, n);
        }
    }

    /// Sets the event time (UTC ns).
    pub fn timestamp(&mut self, ns: i64) {
        self.event_ns.get_or_insert(ns);
        self.b.set_ts(Col::Timestamp, ns);
    }

    /// The event time the decoder set, if any.
    pub fn event_ns(&self) -> Option<i64> {
        self.event_ns
    }

    /// A vendor field with no ECS home, under the device's own name. Empty values are kept
    /// (an empty field is information too), as an empty string.
    #[inline]
    pub fn vendor(&mut self, k: &str, v: &str) {
        self.b.insert_map(Col::VendorFields, k, Some(v));
    }

    /// `event.kind`, `event.category` and `event.type` together.
    pub fn classify(&mut self, categories: &[&str], types: &[&str]) {
        self.b.set_str(Col::EventKind, "event");
        for c in categories {
            self.b.push_list(Col::EventCategory, c);
        }
        for t in types {
            self.b.push_list(Col::EventType, t);
        }
    }

    /// `observer.vendor`, `observer.product` and `observer.type`.
    pub fn observer(&mut self, vendor: &str, product: &str, ty: &str) {
        self.b.set_str(Col::ObserverVendor, vendor);
        self.b.set_str(Col::ObserverProduct, product);
        self.b.set_str(Col::ObserverType, ty);
    }

    /// `network.transport` from an IANA protocol number, or the number itself in the vendor
    /// map when it has no common name.
    pub fn iana_protocol(&mut self, key: &str, v: &str) {
        match v.parse::<u8>().ok().and_then(transport_name) {
            Some(name) => self.b.set_str(Col::NetworkTransport, name),
            None if is_placeholder(v) => {}
            None => self.vendor(key, v),
        }
    }

    /// `network.transport` from a protocol name in any case (`TCP`, `udp`, `ICMP`).
    pub fn transport(&mut self, v: &str) {
        if is_placeholder(v) {
            return;
        }
        self.str_lower(Col::NetworkTransport, v);
    }

    fn misfit(&mut self, key: &str, v: &str, what: &str) {
        self.vendor(key, v);
        self.problem(|| format!("{key}: {v:?} is not {what}"));
    }
}

fn sum(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
    }
}

/// Values devices write for "none".
#[inline]
pub fn is_placeholder(v: &str) -> bool {
    matches!(v, "" | "-" | "N/A" | "n/a" | "none" | "None")
}

/// The common name of an IANA protocol number, as ECS writes `network.transport`.
pub fn transport_name(n: u8) -> Option<&'static str> {
    Some(match n {
        1 => "icmp",
        2 => "igmp",
        4 => "ipip",
        6 => "tcp",
        17 => "udp",
        41 => "ipv6",
        47 => "gre",
        50 => "esp",
        51 => "ah",
        58 => "ipv6-icmp",
        88 => "eigrp",
        89 => "ospf",
        103 => "pim",
        112 => "vrrp",
        115 => "l2tp",
        132 => "sctp",
        _ => return None,
    })
}
