//! Cisco IOS, IOS-XE and NX-OS (`%FACILITY-SEVERITY-MNEMONIC: text`).
//!
//! Every such line gets `event.code` (`FACILITY-SEVERITY-MNEMONIC`) and the observer fields;
//! these mnemonics are decoded further:
//!
//! | mnemonic | what | `event.action` |
//! |---|---|---|
//! | `LINK-*-UPDOWN`, `LINEPROTO-*-UPDOWN`, NX-OS `ETHPORT-*-IF_UP`/`IF_DOWN_*` | interface state | `interface-up` / `interface-down` |
//! | `SEC_LOGIN-*-LOGIN_SUCCESS` / `LOGIN_FAILED` | login | `login` |
//! | `SSH-*-SSH2_USERAUTH` | SSH authentication succeeded / failed | `login` |
//! | `SYS-*-CONFIG_I`, NX-OS `VSHD-*-VSHD_SYSLOG_CONFIG_I` | configured from a terminal | `configuration-change` |
//! | `PARSER-*-CFGLOG_LOGGEDCMD` | configuration command logged | `configuration-change` |
//! | `PORT_SECURITY-*-PSECURE_VIOLATION` (and `_VLAN`) | port security violation | `port-security-violation` |
//! | `SEC-*-IPACCESSLOGP`/`IPACCESSLOGDP`/`IPACCESSLOGNP`/`IPACCESSLOGS`, `IPV6_ACL-*-ACCESSLOGP` | ACL hits | `firewall-rule` |

use canh_schema::fields::events::Col;

use super::{word_after, Decoded, Input, Result};
use crate::out::Out;

/// A parsed `%FAC-N-MNEM:` tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mnemonic<'a> {
    pub facility: &'a str,
    pub severity: u8,
    pub mnemonic: &'a str,
    /// `FAC-N-MNEM`
    pub code: &'a str,
    /// Length including `%` and `:`.
    pub len: usize,
}

/// Parses `%FAC-N-MNEM:` at the start of `s`.
pub fn mnemonic(s: &str) -> Option<Mnemonic<'_>> {
    let rest = s.strip_prefix('%')?;
    let colon = rest.find(':')?;
    let code = &rest[..colon];
    let mut parts = code.splitn(3, '-');
    let facility = parts.next()?;
    let sev = parts.next()?;
    let mnem = parts.next()?;
    let ok_name = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    };
    if !ok_name(facility) || !ok_name(mnem) || sev.len() != 1 {
        return None;
    }
    let severity = sev.as_bytes()[0].checked_sub(b'0').filter(|&d| d <= 7)?;
    Some(Mnemonic {
        facility,
        severity,
        mnemonic: mnem,
        code,
        len: colon + 2,
    })
}

pub fn decode(out: &mut Out<'_>, input: &Input<'_>) -> Result {
    let line = input.line;
    let (m, at) = memchr::memchr_iter(b'%', line.as_bytes())
        .find_map(|p| mnemonic(&line[p..]).map(|m| (m, p)))
        .ok_or("no %FACILITY-SEVERITY-MNEMONIC: tag")?;
    let text = line[at + m.len..].trim();
    out.str(Col::EventCode, m.code);
    let nxos = matches!(
        m.facility,
        "ETHPORT" | "VSHD" | "AUTHPRIV" | "DAEMON" | "ETH_PORT_CHANNEL"
    );
    out.observer("Cisco", if nxos { "nx-os" } else { "ios" }, "network");
    let decoded = match (m.facility, m.mnemonic) {
        ("LINK" | "LINEPROTO", "UPDOWN") => updown(out, text),
        ("ETHPORT", mn) if mn == "IF_UP" || mn.starts_with("IF_DOWN") => {
            let iface = word_after(text, "Interface ")
                .unwrap_or("")
                .trim_end_matches(',');
            out.vendor("interface", iface);
            interface_state(out, mn == "IF_UP");
            Some(())
        }
        ("SEC_LOGIN", "LOGIN_SUCCESS") => login_brackets(out, text, true),
        ("SEC_LOGIN", "LOGIN_FAILED") => login_brackets(out, text, false),
        ("SSH", "SSH2_USERAUTH") => ssh_userauth(out, text),
        ("SYS", "CONFIG_I") | ("VSHD", "VSHD_SYSLOG_CONFIG_I") => config_i(out, text),
        ("PARSER", "CFGLOG_LOGGEDCMD") => logged_cmd(out, text),
        ("PORT_SECURITY", mn) if mn.starts_with("PSECURE_VIOLATION") => port_security(out, text),
        ("SEC" | "IPV6_ACL", mn)
            if mn.starts_with("IPACCESSLOG") || mn.starts_with("ACCESSLOG") =>
        {
            acl(out, text)
        }
        _ => {
            out.classify(&["host"], &["info"]);
            Some(())
        }
    };
    decoded
        .map(|()| Decoded::Fields)
        .ok_or_else(|| format!("%{}: unexpected message text", m.code))
}

fn interface_state(out: &mut Out<'_>, up: bool) {
    out.str(
        Col::EventAction,
        if up { "interface-up" } else { "interface-down" },
    );
    out.str(Col::EventOutcome, "success");
    out.classify(&["network"], &["change"]);
}

/// `Interface GigabitEthernet0/1, changed state to up` (`…to administratively down`).
fn updown(out: &mut Out<'_>, text: &str) -> Option<()> {
    let iface = word_after(text, "Interface ")?.trim_end_matches(',');
    out.vendor("interface", iface);
    let state = text.rsplit("changed state to ").next()?.trim();
    out.vendor("state", state);
    interface_state(out, state == "up");
    Some(())
}

/// `Login Success [user: admin] [Source: 10.1.1.1] [localport: 22] at …`,
/// `Login failed [user: admin] [Source: 10.1.1.1] [localport: 22] [Reason: …] at …`.
fn login_brackets(out: &mut Out<'_>, text: &str, ok: bool) -> Option<()> {
    let field = |k: &str| {
        let p = crate::scan::find_str(text, k)? + k.len();
        let e = text[p..].find(']')? + p;
        Some(text[p..e].trim())
    };
    out.str(Col::UserName, field("[user:")?);
    if let Some(ip) = field("[Source:") {
        out.ip(Col::SourceIp, "source", ip);
    }
    if let Some(p) = field("[localport:") {
        out.port(Col::DestinationPort, "localport", p);
    }
    if let Some(r) = field("[Reason:") {
        out.vendor("reason", r);
    }
    auth(out, ok);
    Some(())
}

fn auth(out: &mut Out<'_>, ok: bool) {
    out.str(Col::EventAction, "login");
    out.str(Col::EventOutcome, if ok { "success" } else { "failure" });
    let ty = if ok {
        "authentication_success"
    } else {
        "authentication_failure"
    };
    out.classify(&["authentication"], &["info", ty]);
}

/// `User 'admin' authentication for SSH2 Session from 10.1.1.1 (tty = 0) using crypto cipher
/// 'aes256-ctr', hmac 'hmac-sha2-256' Succeeded`.
fn ssh_userauth(out: &mut Out<'_>, text: &str) -> Option<()> {
    let user = text.split('\'').nth(1)?;
    out.str(Col::UserName, user);
    if let Some(ip) = word_after(text, " from ") {
        out.ip(Col::SourceIp, "from", ip);
    }
    out.str(Col::NetworkProtocol, "ssh");
    auth(out, text.trim_end().ends_with("Succeeded"));
    Some(())
}

/// `Configured from console by admin on vty0 (10.1.1.1)`, NX-OS `Configured from vty by admin
/// on 10.1.1.1@pts/0`.
fn config_i(out: &mut Out<'_>, text: &str) -> Option<()> {
    let by = word_after(text, " by ")?;
    out.str(Col::UserName, by);
    if let Some(open) = text.rfind('(') {
        let ip = text[open + 1..].trim_end_matches(')');
        if ip.parse::<std::net::IpAddr>().is_ok() {
            out.ip(Col::SourceIp, "source", ip);
        }
    } else if let Some(on) = word_after(text, " on ") {
        let ip = on.split('@').next().unwrap_or("");
        if ip.parse::<std::net::IpAddr>().is_ok() {
            out.ip(Col::SourceIp, "source", ip);
        }
    }
    config_change(out);
    Some(())
}

fn config_change(out: &mut Out<'_>) {
    out.str(Col::EventAction, "configuration-change");
    out.str(Col::EventOutcome, "success");
    out.classify(&["configuration"], &["change"]);
}

/// `User:admin  logged command:interface Gi0/1`.
fn logged_cmd(out: &mut Out<'_>, text: &str) -> Option<()> {
    let user = text
        .strip_prefix("User:")?
        .split_ascii_whitespace()
        .next()?;
    out.str(Col::UserName, user);
    if let Some(cmd) = text.split("logged command:").nth(1) {
        out.vendor("command", cmd.trim());
    }
    config_change(out);
    Some(())
}

/// `Security violation occurred, caused by MAC address 0000.1111.2222 on port Gi0/1.`
fn port_security(out: &mut Out<'_>, text: &str) -> Option<()> {
    let mac = word_after(text, "MAC address ")?;
    out.vendor("mac", mac.trim_end_matches(['.', ',']));
    if let Some(port) = word_after(text, " on port ") {
        out.vendor("interface", port.trim_end_matches(['.', ',']));
    }
    out.str(Col::EventAction, "port-security-violation");
    out.str(Col::EventOutcome, "success");
    out.classify(&["network", "intrusion_detection"], &["denied"]);
    Some(())
}

/// `list 101 denied tcp 10.1.1.1(1234) -> 10.2.2.2(80), 1 packet`,
/// `list ACL permitted icmp 10.1.1.1 -> 10.2.2.2 (8/0), 3 packets`.
fn acl(out: &mut Out<'_>, text: &str) -> Option<()> {
    let mut w = text.split_ascii_whitespace();
    if w.next()? != "list" {
        return None;
    }
    out.str(Col::RuleName, w.next()?);
    let verdict = w.next()?;
    let proto = w.next()?;
    if proto.parse::<u8>().is_ok() {
        out.iana_protocol("protocol", proto);
    } else {
        out.transport(proto);
    }
    let (src, dst) = text.split_once(" -> ")?;
    let src = src.rsplit(' ').next()?;
    let dst = dst.split([' ', ',']).next()?;
    let split = |e: &str| -> (String, Option<String>) {
        match e.split_once('(') {
            Some((ip, port)) => (ip.to_owned(), Some(port.trim_end_matches(')').to_owned())),
            None => (e.to_owned(), None),
        }
    };
    let (sip, sport) = split(src);
    let (dip, dport) = split(dst);
    out.ip(Col::SourceIp, "source", &sip);
    out.ip(Col::DestinationIp, "destination", &dip);
    if let Some(p) = sport {
        out.port(Col::SourcePort, "source_port", &p);
    }
    if let Some(p) = dport {
        out.port(Col::DestinationPort, "destination_port", &p);
    }
    if let Some(n) = text.rsplit(", ").next().and_then(|t| t.split(' ').next()) {
        if n.parse::<u64>().is_ok() {
            out.uint(Col::NetworkPackets, "packets", n);
        }
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
