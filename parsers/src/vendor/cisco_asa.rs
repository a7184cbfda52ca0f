//! Cisco ASA and Firepower Threat Defense (`%ASA-6-302013: …`, `%FTD-…`).
//!
//! Every ASA line gets `event.code` (the message id), the observer fields and the severity; the
//! messages below are decoded into ECS fields. Others keep their text in `message` and are
//! `ok` (the header is understood; their text has no fields we map).
//!
//! | ids | what | `event.action` |
//! |---|---|---|
//! | 106001, 106006, 106007, 106015 | inbound/no-connection denies (`from a/p to b/p`) | `firewall-rule` |
//! | 106010, 106014, 106023 | `Deny proto src [if:]a[/p] dst [if:]b[/p]` (ACL in 106023) | `firewall-rule` |
//! | 106016, 106017, 106021 | spoof, land attack, reverse-path denies | `firewall-rule` |
//! | 106100, 106102, 106103 | `access-list NAME permitted/denied …` hits | `firewall-rule` |
//! | 710003 | `TCP access denied by ACL from a/p to if:b/p` | `firewall-rule` |
//! | 313001, 313008 | ICMP / ICMPv6 denied | `firewall-rule` |
//! | 302013, 302015 | TCP / UDP connection built, with mapped (NAT) addresses | `flow-creation` |
//! | 302014, 302016 | TCP / UDP teardown, duration and bytes | `flow-expiration` |
//! | 302020, 302021 | ICMP built / teardown (`faddr gaddr laddr`) | `flow-creation` / `flow-expiration` |
//! | 305011, 305012 | NAT translation built / torn down | `translation-built` / `translation-teardown` |
//! | 113004, 113012 | AAA authentication succeeded (server / local database) | `aaa-authentication` |
//! | 113005, 113015 | AAA authentication rejected | `aaa-authentication` |
//! | 113019 | VPN session disconnected (group, user, IP, bytes) | `vpn-session-end` |
//! | 113039, 716001, 722022 | AnyConnect / WebVPN session started, SVC connection up | `vpn-session-start` |
//! | 716002, 722023, 722037 | WebVPN session ended, SVC connection closed | `vpn-session-end` |
//! | 605004, 605005 | management login denied / permitted | `login` |
//! | 611101, 611102 | user authentication succeeded / failed | `login` |
//! | 111008, 111010 | a user ran a configuration command | `configuration-change` |
//! | 502103 | privilege level changed | `privilege-change` |

use canh_schema::fields::events::Col;

use super::{between, word_after, Decoded, Input, Result};
use crate::out::Out;

/// The parsed `%ASA-[class-]N-NNNNNN:` tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag<'a> {
    pub product: &'a str,
    pub severity: u8,
    pub id: &'a str,
    /// Length of the tag including the colon.
    pub len: usize,
}

/// Parses `%ASA-6-302013:` or `%FTD-session-3-106102:` at the start of `s`.
pub fn tag(s: &str) -> Option<Tag<'_>> {
    let product = if s.starts_with("%ASA-") {
        "asa"
    } else if s.starts_with("%FTD-") {
        "ftd"
    } else {
        return None;
    };
    let rest = &s[5..];
    let colon = rest.find(':')?;
    let inner = &rest[..colon];
    // `[class-]severity-id`
    let (before, id) = inner.rsplit_once('-')?;
    let sev = before.rsplit('-').next()?;
    if sev.len() != 1 || id.len() != 6 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let severity = sev.as_bytes()[0].checked_sub(b'0').filter(|&d| d <= 7)?;
    Some(Tag {
        product,
        severity,
        id,
        len: 5 + colon + 1,
    })
}

pub fn looks_like(s: &str) -> bool {
    tag(s).is_some()
}

pub fn decode(out: &mut Out<'_>, input: &Input<'_>) -> Result {
    let start = if tag(input.body).is_some() {
        input.body
    } else {
        let p = memchr::memmem::find_iter(input.line.as_bytes(), b"%")
            .find(|&p| tag(&input.line[p..]).is_some())
            .ok_or("no %ASA-/%FTD- message tag")?;
        &input.line[p..]
    };
    let t = tag(start).ok_or("no %ASA-/%FTD- message tag")?;
    let msg = start[t.len..].trim();
    out.str(Col::EventCode, t.id);
    out.vendor("severity", severity_name(t.severity));
    out.observer("Cisco", t.product, "firewall");
    let decoded = match t.id {
        "106001" | "106006" | "106007" | "106015" => from_to_deny(out, msg),
        "106010" | "106014" | "106023" => src_dst_deny(out, msg),
        "106016" | "106017" | "106021" => ip_deny(out, msg),
        "106100" | "106102" | "106103" => access_list(out, msg),
        "710003" => from_to_deny(out, msg),
        "313001" | "313008" => icmp_denied(out, msg),
        "302013" | "302015" => built(out, msg),
        "302014" | "302016" => teardown(out, msg),
        "302020" | "302021" => icmp_conn(out, msg, t.id == "302020"),
        "305011" | "305012" => translation(out, msg, t.id == "305011"),
        "113004" | "113012" => aaa(out, msg, true),
        "113005" | "113015" => aaa(out, msg, false),
        "113019" => vpn_disconnect(out, msg),
        "113039" | "716001" | "722022" => vpn_session(out, msg, true),
        "716002" | "722023" | "722037" => vpn_session(out, msg, false),
        "605004" | "605005" => mgmt_login(out, msg, t.id == "605005"),
        "611101" | "611102" => user_auth(out, msg, t.id == "611101"),
        "111008" | "111010" => config_command(out, msg),
        "502103" => priv_change(out, msg),
        _ => {
            out.classify(&["network"], &["info"]);
            Some(())
        }
    };
    match decoded {
        Some(()) => Ok(Decoded::Fields),
        None => Err(format!(
            "%{}-{}: unexpected message text",
            t.product.to_ascii_uppercase(),
            t.id
        )),
    }
}

fn severity_name(s: u8) -> &'static str {
    [
        "emergency",
        "alert",
        "critical",
        "error",
        "warning",
        "notification",
        "informational",
        "debugging",
    ]
    .get(usize::from(s))
    .copied()
    .unwrap_or("debugging")
}

/// An address as ASA prints it: `[iface:]ip[/port]`, `iface/ip(port)`, optionally followed by
/// `(user)` or `(mapped/port)`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Endpoint<'a> {
    iface: Option<&'a str>,
    ip: &'a str,
    port: Option<&'a str>,
}

/// `[iface:]ip[/port]`: the interface name may itself contain `:` (`v1:outside`), and so may
/// an IPv6 address; the address is the longest suffix that parses as one.
fn colon_endpoint(s: &str) -> Option<Endpoint<'_>> {
    let s = s.trim_end_matches([',', ';']);
    let (addr, port) = match s.rsplit_once('/') {
        Some((a, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (a, Some(p)),
        _ => (s, None),
    };
    if is_ip(addr) {
        return Some(Endpoint {
            iface: None,
            ip: addr,
            port,
        });
    }
    for (i, _) in addr.match_indices(':') {
        let ip = &addr[i + 1..];
        if is_ip(ip) {
            return Some(Endpoint {
                iface: Some(&addr[..i]),
                ip,
                port,
            });
        }
    }
    None
}

/// `iface/ip(port)` as in access-list hits.
fn paren_endpoint(s: &str) -> Option<(Endpoint<'_>, &str)> {
    let slash = s.find('/')?;
    let open = s[slash..].find('(')? + slash;
    let close = s[open..].find(')')? + open;
    let ep = Endpoint {
        iface: Some(&s[..slash]),
        ip: &s[slash + 1..open],
        port: Some(&s[open + 1..close]),
    };
    is_ip(ep.ip).then_some((ep, &s[close + 1..]))
}

fn is_ip(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok()
}

fn source(out: &mut Out<'_>, e: &Endpoint<'_>) {
    out.ip(Col::SourceIp, "source_ip", e.ip);
    if let Some(p) = e.port {
        out.port(Col::SourcePort, "source_port", p);
    }
    if let Some(i) = e.iface {
        out.vendor("source_interface", i);
    }
}

fn destination(out: &mut Out<'_>, e: &Endpoint<'_>) {
    out.ip(Col::DestinationIp, "destination_ip", e.ip);
    if let Some(p) = e.port {
        out.port(Col::DestinationPort, "destination_port", p);
    }
    if let Some(i) = e.iface {
        out.vendor("destination_interface", i);
    }
}

fn deny(out: &mut Out<'_>) {
    out.str(Col::EventAction, "firewall-rule");
    out.str(Col::EventOutcome, "success");
    out.classify(&["network"], &["connection", "denied"]);
}

fn transport_word(out: &mut Out<'_>, w: &str) {
    match w.to_ascii_lowercase().as_str() {
        "ip" => {}
        "icmp6" | "ipv6-icmp" | "icmpv6" => out.str(Col::NetworkTransport, "ipv6-icmp"),
        t @ ("tcp" | "udp" | "icmp" | "gre" | "esp" | "ah" | "sctp" | "igmp" | "ospf" | "pim") => {
            out.str(Col::NetworkTransport, t)
        }
        other => {
            if let Ok(n) = other.parse::<u8>() {
                out.iana_protocol("protocol", &n.to_string());
            }
        }
    }
}

/// `Deny inbound UDP from 10.1.2.3/53 to 10.2.3.4/1234 on interface outside`,
/// `Inbound TCP connection denied from a/p to b/p flags SYN on interface outside`,
/// `Deny TCP (no connection) from a/p to b/p flags RST on interface inside`,
/// `TCP access denied by ACL from a/p to outside:b/p`.
fn from_to_deny(out: &mut Out<'_>, msg: &str) -> Option<()> {
    let proto = msg
        .split_ascii_whitespace()
        .find(|w| matches!(w.to_ascii_lowercase().as_str(), "tcp" | "udp" | "icmp"))?;
    transport_word(out, proto);
    let src = colon_endpoint(word_after(msg, " from ")?)?;
    let dst = colon_endpoint(word_after(msg, " to ")?)?;
    source(out, &src);
    destination(out, &dst);
    if let Some(i) = word_after(msg, "on interface ") {
        out.vendor("interface", i);
    }
    deny(out);
    Some(())
}

/// `Deny udp src outside:10.8.1.9/54864 dst inside:172.16.1.3/53 by access-group "acl" [..]`,
/// `Deny inbound icmp src outside:a dst inside:b (type 8, code 0)`.
fn src_dst_deny(out: &mut Out<'_>, msg: &str) -> Option<()> {
    let mut words = msg.split_ascii_whitespace();
    let mut proto = words.next()?;
    if proto == "Deny" {
        proto = words.next()?;
    }
    if proto == "inbound" || proto == "outbound" {
        proto = words.next()?;
    }
    transport_word(out, proto);
    let src = colon_endpoint(word_after(msg, "src ")?)?;
    let dst = colon_endpoint(word_after(msg, " dst ")?)?;
    source(out, &src);
    destination(out, &dst);
    if let Some(acl) = between(msg, "access-group \"", "\"") {
        out.str(Col::RuleName, acl);
    }
    deny(out);
    Some(())
}

/// `Deny IP spoof from (a) to b on interface outside`, `Deny IP due to Land Attack from a to b`,
/// `Deny TCP reverse path check from a to b on interface outside`.
fn ip_deny(out: &mut Out<'_>, msg: &str) -> Option<()> {
    let from = msg.rfind(" from ")?;
    let src = word_after(&msg[from..], " from ")?.trim_matches(|c| c == '(' || c == ')');
    let dst = word_after(&msg[from..], " to ")?;
    out.ip(Col::SourceIp, "source_ip", src);
    out.ip(Col::DestinationIp, "destination_ip", dst);
    if let Some(p) = msg.split_ascii_whitespace().nth(1) {
        transport_word(out, p);
    }
    if let Some(i) = word_after(msg, "on interface ") {
        out.vendor("interface", i);
    }
    deny(out);
    Some(())
}

/// `access-list ACL permitted udp dmz2/a(p)(user) -> inside/b(p) hit-cnt 1 first hit [..]`,
/// `access-list ACL denied tcp for user 'u' outside/a(p) -> inside/b(p) hit-cnt 1 …`.
fn access_list(out: &mut Out<'_>, msg: &str) -> Option<()> {
    let mut words = msg.split_ascii_whitespace();
    if words.next()? != "access-list" {
        return None;
    }
    let acl = words.next()?;
    let verdict = words.next()?;
    let proto = words.next()?;
    out.str(Col::RuleName, acl);
    transport_word(out, proto);
    if let Some(u) = word_after(msg, "for user ") {
        out.str(Col::UserName, u.trim_matches('\''));
    }
    let arrow = crate::scan::find_str(msg, " -> ")?;
    let src_text = msg[..arrow].rsplit(' ').next()?;
    let (src, src_user) = paren_endpoint(src_text)?;
    let (dst, _) = paren_endpoint(msg[arrow + 4..].split(' ').next()?)?;
    source(out, &src);
    destination(out, &dst);
    if let Some(u) = src_user.strip_prefix('(').and_then(|u| u.strip_suffix(')')) {
        out.str(Col::UserName, user_of(u));
    }
    if let Some(n) = word_after(msg, "hit-cnt ") {
        out.vendor("hit_count", n);
    }
    out.str(Col::EventAction, "firewall-rule");
    out.str(Col::EventOutcome, "success");
    let ty = if verdict == "denied" {
        "denied"
    } else {
        "allowed"
    };
    out.classify(&["network"], &["connection", ty]);
    Some(())
}

/// `LOCAL\alice, 123` → `alice`.
fn user_of(s: &str) -> &str {
    let s = s.split(',').next().unwrap_or(s).trim();
    let s = s.rsplit('\\').next().unwrap_or(s);
    s.trim_matches('\'')
}

/// `Denied ICMP type=0, code=0 from a on interface outside`.
fn icmp_denied(out: &mut Out<'_>, msg: &str) -> Option<()> {
    let src = word_after(msg, " from ")?;
    out.ip(Col::SourceIp, "source_ip", src);
    if msg.contains("IPv6-ICMP") {
        out.str(Col::NetworkTransport, "ipv6-icmp");
    } else {
        out.str(Col::NetworkTransport, "icmp");
    }
    if let Some(i) = word_after(msg, "on interface ") {
        out.vendor("interface", i);
    }
    deny(out);
    Some(())
}

/// One side of a built connection: `outside:a/p (ma/mp)(LOCAL\user, 1)`.
struct Side<'a> {
    real: Endpoint<'a>,
    mapped: Option<Endpoint<'a>>,
    user: Option<&'a str>,
}

fn side(s: &str) -> Option<Side<'_>> {
    let s = s.trim();
    let first = s.split([' ', '(']).next()?;
    let real = colon_endpoint(first)?;
    let rest = &s[first.len()..];
    let mut mapped = None;
    let mut user = None;
    let mut r = rest.trim_start();
    while let Some(inner_start) = r.strip_prefix('(') {
        let close = inner_start.find(')')?;
        let inner = &inner_start[..close];
        match colon_endpoint(inner) {
            Some(m) if mapped.is_none() => mapped = Some(m),
            _ => user = Some(user_of(inner)),
        }
        r = inner_start[close + 1..].trim_start();
    }
    Some(Side { real, mapped, user })
}

/// `Built inbound TCP connection 123 for outside:a/p (ma/mp) to inside:b/p (mb/mp) [(user)]`.
fn built(out: &mut Out<'_>, msg: &str) -> Option<()> {
    let mut words = msg.split_ascii_whitespace();
    if words.next()? != "Built" {
        return None;
    }
    let direction = words.next()?;
    let proto = words.next()?;
    transport_word(out, proto);
    let for_at = crate::scan::find_str(msg, " for ")? + 5;
    let to_at = crate::scan::find_str(&msg[for_at..], " to ")? + for_at;
    let foreign = side(&msg[for_at..to_at])?;
    let local = side(&msg[to_at + 4..])?;
    if let Some(id) = word_after(msg, "connection ") {
        out.vendor("connection_id", id);
    }
    // Inbound: the `for` side started it; outbound: the `to` side did.
    let (src, dst) = if direction == "outbound" {
        (&local, &foreign)
    } else {
        (&foreign, &local)
    };
    endpoints_with_nat(out, src, dst);
    out.str(
        Col::NetworkDirection,
        if direction == "outbound" {
            "outbound"
        } else {
            "inbound"
        },
    );
    out.str(Col::EventAction, "flow-creation");
    out.str(Col::EventOutcome, "success");
    out.classify(&["network"], &["connection", "start"]);
    Some(())
}

fn endpoints_with_nat(out: &mut Out<'_>, src: &Side<'_>, dst: &Side<'_>) {
    source(out, &src.real);
    destination(out, &dst.real);
    if let Some(m) = src
        .mapped
        .filter(|m| m.ip != src.real.ip || m.port != src.real.port)
    {
        out.ip(Col::SourceNatIp, "source_nat_ip", m.ip);
        if let Some(p) = m.port {
            out.port(Col::SourceNatPort, "source_nat_port", p);
        }
    }
    if let Some(m) = dst
        .mapped
        .filter(|m| m.ip != dst.real.ip || m.port != dst.real.port)
    {
        out.ip(Col::DestinationNatIp, "destination_nat_ip", m.ip);
        if let Some(p) = m.port {
            out.port(Col::DestinationNatPort, "destination_nat_port", p);
        }
    }
    if let Some(u) = src.user.or(dst.user) {
        out.str(Col::UserName, u);
    }
}

/// `Teardown TCP connection 123 for outside:a/p to inside:b/p duration 0:00:05 bytes 1234 TCP FINs`.
fn teardown(out: &mut Out<'_>, msg: &str) -> Option<()> {
    let mut words = msg.split_ascii_whitespace();
    if words.next()? != "Teardown" {
        return None;
    }
    transport_word(out, words.next()?);
    let for_at = crate::scan::find_str(msg, " for ")? + 5;
    let to_at = crate::scan::find_str(&msg[for_at..], " to ")? + for_at;
    let end = crate::scan::find_str(&msg[to_at..], " duration ").map_or(msg.len(), |p| p + to_at);
    let a = side(&msg[for_at..to_at])?;
    let b = side(&msg[to_at + 4..end])?;
    endpoints_with_nat(out, &a, &b);
    if let Some(id) = word_after(msg, "connection ") {
        out.vendor("connection_id", id);
    }
    if let Some(d) = word_after(msg, " duration ") {
        out.vendor("duration", d);
    }
    if let Some(n) = word_after(msg, " bytes ") {
        out.uint(Col::NetworkBytes, "bytes", n);
    }
    if let Some(p) = crate::scan::find_str(msg, " bytes ") {
        let rest = msg[p + 7..].split_once(' ').map_or("", |(_, r)| r).trim();
        let reason = rest.split(" (").next().unwrap_or(rest).trim();
        if !reason.is_empty() {
            out.vendor("reason", reason);
        }
    }
    out.str(Col::EventAction, "flow-expiration");
    out.str(Col::EventOutcome, "success");
    out.classify(&["network"], &["connection", "end"]);
    Some(())
}

/// `Built inbound ICMP connection for faddr f/seq gaddr g/type laddr l/type [type 8 code 0]`.
fn icmp_conn(out: &mut Out<'_>, msg: &str, built: bool) -> Option<()> {
    let ip_of = |key: &str| word_after(msg, key).and_then(|w| w.split('/').next());
    let f = ip_of("faddr ")?;
    let g = ip_of("gaddr ")?;
    let l = ip_of("laddr ")?;
    let outbound = msg.contains(" outbound ");
    if outbound {
        out.ip(Col::SourceIp, "laddr", l);
        out.ip(Col::DestinationIp, "faddr", f);
        if g != l {
            out.ip(Col::SourceNatIp, "gaddr", g);
        }
    } else {
        out.ip(Col::SourceIp, "faddr", f);
        out.ip(Col::DestinationIp, "laddr", l);
        if g != l {
            out.ip(Col::DestinationNatIp, "gaddr", g);
        }
    }
    out.str(
        Col::NetworkTransport,
        if msg.contains("ICMPv6") {
            "ipv6-icmp"
        } else {
            "icmp"
        },
    );
    if let Some(t) = word_after(msg, " type ") {
        out.vendor("icmp_type", t);
    }
    if let Some(c) = word_after(msg, " code ") {
        out.vendor("icmp_code", c);
    }
    let (action, phase) = if built {
        ("flow-creation", "start")
    } else {
        ("flow-expiration", "end")
    };
    out.str(Col::EventAction, action);
    out.str(Col::EventOutcome, "success");
    out.classify(&["network"], &["connection", phase]);
    Some(())
}

/// `Built dynamic TCP translation from inside:a/p to outside:b/p`.
fn translation(out: &mut Out<'_>, msg: &str, built: bool) -> Option<()> {
    let mut words = msg.split_ascii_whitespace();
    words.next()?;
    let kind = words.next()?;
    transport_word(out, words.next()?);
    let real = colon_endpoint(word_after(msg, " from ")?)?;
    let mapped = colon_endpoint(word_after(msg, " to ")?)?;
    source(out, &real);
    out.ip(Col::SourceNatIp, "mapped_ip", mapped.ip);
    if let Some(p) = mapped.port {
        out.port(Col::SourceNatPort, "mapped_port", p);
    }
    out.vendor("translation_type", kind);
    if let Some(d) = word_after(msg, " duration ") {
        out.vendor("duration", d);
    }
    out.str(
        Col::EventAction,
        if built {
            "translation-built"
        } else {
            "translation-teardown"
        },
    );
    out.str(Col::EventOutcome, "success");
    out.classify(&["network"], &[if built { "start" } else { "end" }]);
    Some(())
}

/// `: key = value :` fields of AAA messages (`key` includes the ` =`).
fn aaa_field<'a>(msg: &'a str, key: &str) -> Option<&'a str> {
    let p = crate::scan::find_str(msg, key)? + key.len();
    let rest = msg[p..].trim_start();
    let end = crate::scan::find_str(rest, " :").unwrap_or(rest.len());
    Some(rest[..end].trim())
}

/// `AAA user authentication Successful : server = 10.1.1.1 : user = alice`,
/// `AAA user authentication Rejected : reason = … : local database : user = bob : user IP = a`.
fn aaa(out: &mut Out<'_>, msg: &str, ok: bool) -> Option<()> {
    let user = aaa_field(msg, "user =")?;
    out.str(Col::UserName, user);
    if let Some(ip) = aaa_field(msg, "user IP =") {
        out.ip(Col::SourceIp, "user_ip", ip);
    }
    if let Some(s) = aaa_field(msg, "server =") {
        out.vendor("server", s);
    }
    if let Some(r) = aaa_field(msg, "reason =") {
        out.vendor("reason", r);
    }
    auth(out, "aaa-authentication", ok);
    Some(())
}

fn auth(out: &mut Out<'_>, action: &str, ok: bool) {
    out.str(Col::EventAction, action);
    out.str(Col::EventOutcome, if ok { "success" } else { "failure" });
    let ty = if ok {
        "authentication_success"
    } else {
        "authentication_failure"
    };
    out.classify(&["authentication"], &["info", ty]);
}

/// `Group <g> User <u> IP <a>` (AnyConnect, WebVPN) or `Group = g, Username = u, IP = a,`.
fn vpn_identity(out: &mut Out<'_>, msg: &str) -> Option<()> {
    if let Some(u) = between(msg, "User <", ">") {
        out.str(Col::UserName, u);
        if let Some(g) = between(msg, "Group <", ">") {
            out.vendor("group", g);
        }
        if let Some(ip) = between(msg, "IP <", ">") {
            out.ip(Col::SourceIp, "ip", ip);
        }
        return Some(());
    }
    let field = |k: &str| between(msg, k, ",").map(str::trim);
    let u = field("Username = ")?;
    out.str(Col::UserName, u);
    if let Some(g) = field("Group = ") {
        out.vendor("group", g);
    }
    if let Some(ip) = field("IP = ") {
        out.ip(Col::SourceIp, "ip", ip);
    }
    Some(())
}

fn vpn_session(out: &mut Out<'_>, msg: &str, start: bool) -> Option<()> {
    vpn_identity(out, msg)?;
    session(out, start);
    Some(())
}

fn session(out: &mut Out<'_>, start: bool) {
    out.str(
        Col::EventAction,
        if start {
            "vpn-session-start"
        } else {
            "vpn-session-end"
        },
    );
    out.str(Col::EventOutcome, "success");
    out.classify(
        &["network", "session"],
        &[if start { "start" } else { "end" }],
    );
}

/// `Group = g, Username = u, IP = a, Session disconnected. Session Type: SSL, Duration: 0h:01m:
/// 12s, Bytes xmt: 1234, Bytes rcv: 567, Reason: User Requested`.
fn vpn_disconnect(out: &mut Out<'_>, msg: &str) -> Option<()> {
    vpn_identity(out, msg)?;
    let num = |k: &str| {
        between(msg, k, ",")
            .or_else(|| crate::scan::find_str(msg, k).map(|p| &msg[p + k.len()..]))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    // Sent to the user is traffic towards the client: destination bytes from the client's view.
    out.counters(num("Bytes rcv:"), num("Bytes xmt:"), None, None);
    if let Some(r) = crate::scan::find_str(msg, "Reason:").map(|p| msg[p + 7..].trim()) {
        out.vendor("reason", r);
    }
    session(out, false);
    Some(())
}

/// `Login denied from 10.1.1.1/1234 to outside:10.2.2.2/ssh for user "admin"`.
fn mgmt_login(out: &mut Out<'_>, msg: &str, ok: bool) -> Option<()> {
    let src = colon_endpoint(word_after(msg, " from ")?)?;
    source(out, &src);
    if let Some(to) = word_after(msg, " to ") {
        if let Some((addr, service)) = to.rsplit_once('/') {
            if let Some(d) = colon_endpoint(addr) {
                destination(out, &d);
            }
            out.str_lower(Col::NetworkProtocol, service);
        }
    }
    if let Some(u) = between(msg, "for user \"", "\"") {
        out.str(Col::UserName, u);
    }
    auth(out, "login", ok);
    Some(())
}

/// `User authentication succeeded: IP address: 10.1.1.1, Uname: alice`.
fn user_auth(out: &mut Out<'_>, msg: &str, ok: bool) -> Option<()> {
    let user = msg.split("Uname: ").nth(1)?.trim();
    out.str(Col::UserName, user);
    if let Some(ip) = between(msg, "IP address: ", ",") {
        out.ip(Col::SourceIp, "ip", ip);
    }
    auth(out, "login", ok);
    Some(())
}

/// `User 'enable_15' executed the 'write memory' command.`,
/// `User 'admin', running 'CLI' from IP 10.1.1.1, executed 'no logging on'`.
fn config_command(out: &mut Out<'_>, msg: &str) -> Option<()> {
    let user = between(msg, "User '", "'")?;
    out.str(Col::UserName, user);
    if let Some(ip) = between(msg, "from IP ", ",") {
        out.ip(Col::SourceIp, "ip", ip);
    }
    let cmd = between(msg, "executed the '", "'")
        .or_else(|| between(msg, "executed '", "'"))
        .unwrap_or("");
    if !cmd.is_empty() {
        out.vendor("command", cmd);
    }
    out.str(Col::EventAction, "configuration-change");
    out.str(Col::EventOutcome, "success");
    out.classify(&["configuration"], &["change"]);
    Some(())
}

/// `User priv level changed: Uname: alice From: 1 To: 15`.
fn priv_change(out: &mut Out<'_>, msg: &str) -> Option<()> {
    let user = word_after(msg, "Uname: ")?;
    out.str(Col::UserName, user);
    if let Some(f) = word_after(msg, "From: ") {
        out.vendor("privilege_from", f);
    }
    if let Some(t) = word_after(msg, "To: ") {
        out.vendor("privilege_to", t);
    }
    out.str(Col::EventAction, "privilege-change");
    out.str(Col::EventOutcome, "success");
    out.classify(&["iam"], &["change", "user"]);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        let t = tag("%ASA-6-302013: Built").expect("tag");
        assert_eq!(
            (t.product, t.severity, t.id, t.len),
            ("asa", 6, "302013", 14)
        );
        let t = tag("%ASA-session-3-106102: x").expect("class");
        assert_eq!((t.severity, t.id), (3, "106102"));
        assert_eq!(tag("%FTD-1-430003:").map(|t| t.product), Some("ftd"));
        assert!(tag("%ASA-9-302013:").is_none());
        assert!(tag("%ASA-6-30201: x").is_none());
        assert!(tag("%LINK-3-UPDOWN:").is_none());
    }

    #[test]
    fn endpoints() {
        let e = colon_endpoint("v1:outside:10.8.1.9/54864").expect("ep");
        assert_eq!(
            (e.iface, e.ip, e.port),
            (Some("v1:outside"), "10.8.1.9", Some("54864"))
        );
        let e = colon_endpoint("outside:fe80::1/53").expect("v6");
        assert_eq!(
            (e.iface, e.ip, e.port),
            (Some("outside"), "fe80::1", Some("53"))
        );
        let e = colon_endpoint("10.0.0.1").expect("bare");
        assert_eq!((e.iface, e.port), (None, None));
        assert!(colon_endpoint("outside:notanip/1").is_none());
        let (e, rest) = paren_endpoint("dmz2/127.2.3.4(56575)(LOCAL\\bob)").expect("paren");
        assert_eq!(
            (e.ip, e.port, rest),
            ("127.2.3.4", Some("56575"), "(LOCAL\\bob)")
        );
    }
}
