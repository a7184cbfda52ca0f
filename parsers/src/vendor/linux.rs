//! Linux authentication and account messages: sshd, sudo, su, PAM, and the shadow-utils tools
//! (useradd, usermod, userdel, groupadd, groupmod, groupdel, passwd, chpasswd).
//!
//! `event.action` follows the Elastic system module where it has a name (`ssh_login`), and the
//! program's own words elsewhere (`sudo`, `su`, `user-created`, …).

use canh_schema::fields::events::Col;

use super::{word_after, Decoded, Input, Result};
use crate::out::Out;

/// Programs whose messages this decoder reads.
pub fn is_linux_app(app: &str) -> bool {
    matches!(
        app,
        "sshd"
            | "sudo"
            | "su"
            | "useradd"
            | "usermod"
            | "userdel"
            | "groupadd"
            | "groupmod"
            | "groupdel"
            | "passwd"
            | "chpasswd"
            | "gpasswd"
            | "login"
            | "systemd-logind"
            | "unix_chkpwd"
    ) || app.starts_with("sshd-")
}

pub fn decode(out: &mut Out<'_>, input: &Input<'_>) -> Result {
    let app = input.header.appname.unwrap_or("");
    let msg = input.body.trim();
    if let Some(rest) = msg.strip_prefix("pam_unix(") {
        out.observer("Linux", app, "host");
        return pam(out, rest);
    }
    let ok = match app {
        "sudo" => sudo(out, msg),
        "su" => su(out, msg),
        "useradd" | "usermod" | "userdel" | "groupadd" | "groupmod" | "groupdel" | "passwd"
        | "chpasswd" | "gpasswd" => accounts(out, app, msg),
        a if a == "sshd" || a.starts_with("sshd-") => sshd(out, msg),
        _ => None,
    };
    // Programs log much more than logins; what has no fields stays plain syslog.
    Ok(if ok.is_some() {
        out.observer("Linux", app, "host");
        Decoded::Fields
    } else {
        Decoded::Plain
    })
}

fn login(out: &mut Out<'_>, ok: bool) {
    out.str(Col::EventAction, "ssh_login");
    if ok {
        out.str(Col::EventOutcome, "success");
        out.classify(
            &["authentication", "session"],
            &["authentication_success", "info"],
        );
    } else {
        out.str(Col::EventOutcome, "failure");
        out.classify(&["authentication"], &["authentication_failure", "info"]);
    }
}

/// `… from IP port N …`
fn from_ip_port(out: &mut Out<'_>, msg: &str) {
    if let Some(ip) = word_after(msg, " from ").or_else(|| word_after(msg, "from ")) {
        out.ip(Col::SourceIp, "source_ip", ip);
    }
    if let Some(p) = word_after(msg, " port ") {
        out.port(Col::SourcePort, "source_port", p.trim_end_matches(':'));
    }
}

fn sshd(out: &mut Out<'_>, msg: &str) -> Option<()> {
    out.str(Col::NetworkProtocol, "ssh");
    if let Some(rest) = msg.strip_prefix("Accepted ") {
        // `Accepted publickey for alice from 10.0.0.1 port 22 ssh2: RSA SHA256:…`
        let mut w = rest.split_ascii_whitespace();
        let method = w.next()?;
        (w.next()? == "for").then_some(())?;
        out.str(Col::UserName, w.next()?);
        out.vendor("method", method);
        from_ip_port(out, rest);
        if let Some((_, sig)) = rest.split_once(": ") {
            out.vendor("signature", sig);
        }
        login(out, true);
        return Some(());
    }
    if let Some(rest) = msg.strip_prefix("Failed ") {
        // `Failed password for [invalid user ]root from 1.2.3.4 port 22 ssh2`
        let mut w = rest.split_ascii_whitespace();
        let method = w.next()?;
        (w.next()? == "for").then_some(())?;
        let mut user = w.next()?;
        if user == "invalid" && rest.contains(" invalid user ") {
            w.next();
            user = w.next()?;
            out.vendor("invalid_user", "true");
        }
        out.str(Col::UserName, user);
        out.vendor("method", method);
        from_ip_port(out, rest);
        login(out, false);
        return Some(());
    }
    if let Some(rest) = msg.strip_prefix("Invalid user ") {
        // `Invalid user test from 10.0.2.2[ port 22]`
        let user = rest.split(" from ").next()?.trim();
        out.str(Col::UserName, user);
        from_ip_port(out, rest);
        login(out, false);
        return Some(());
    }
    if let Some(rest) = msg.strip_prefix("error: maximum authentication attempts exceeded for ") {
        let rest = rest.strip_prefix("invalid user ").unwrap_or(rest);
        out.str(Col::UserName, rest.split_ascii_whitespace().next()?);
        from_ip_port(out, rest);
        login(out, false);
        return Some(());
    }
    if msg.starts_with("Did not receive identification string from ")
        || msg.starts_with("banner exchange: Connection from ")
    {
        from_ip_port(out, msg);
        out.str(Col::EventAction, "ssh_no_identification");
        out.classify(&["network"], &["connection", "info"]);
        return Some(());
    }
    let disconnect = [
        "Disconnected from ",
        "Received disconnect from ",
        "Connection closed by ",
        "Connection reset by ",
    ]
    .iter()
    .find_map(|p| msg.strip_prefix(p));
    if let Some(rest) = disconnect {
        // `Disconnected from [authenticating |invalid ]user root 1.2.3.4 port 22 [preauth]`,
        // `Connection closed by 1.2.3.4 port 22 [preauth]`, `Received disconnect from … : 11: bye`
        let rest = ["authenticating user ", "invalid user ", "user "]
            .iter()
            .find_map(|p| rest.strip_prefix(p))
            .map_or(rest, |r| {
                let mut it = r.splitn(2, ' ');
                if let Some(u) = it.next() {
                    out.str(Col::UserName, u);
                }
                it.next().unwrap_or("")
            });
        let mut w = rest.split_ascii_whitespace();
        if let Some(ip) = w.next() {
            out.ip(Col::SourceIp, "source_ip", ip.trim_end_matches(':'));
        }
        if w.next() == Some("port") {
            if let Some(p) = w.next() {
                // `port 58803:11:` (the disconnect reason code follows the port).
                out.port(
                    Col::SourcePort,
                    "source_port",
                    p.split(':').next().unwrap_or(p),
                );
            }
        }
        if msg.ends_with("[preauth]") {
            out.vendor("preauth", "true");
        }
        out.str(Col::EventAction, "ssh_disconnect");
        out.classify(&["session"], &["end"]);
        return Some(());
    }
    if msg.starts_with("Connection from ") {
        from_ip_port(out, msg);
        out.str(Col::EventAction, "ssh_connection");
        out.classify(&["network"], &["connection", "start"]);
        return Some(());
    }
    if msg.starts_with("Server listening on ") || msg.starts_with("Received signal ") {
        out.classify(&["process"], &["info"]);
        return Some(());
    }
    None
}

/// `pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=1.2.3.4  user=root`,
/// `pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)`.
fn pam(out: &mut Out<'_>, rest: &str) -> Result {
    let (service, msg) = rest
        .split_once("): ")
        .ok_or("pam_unix: no `(service): ` part")?;
    let (service, kind) = service.split_once(':').unwrap_or((service, ""));
    out.vendor("pam_service", service);
    out.vendor("pam_type", kind);
    if msg.starts_with("authentication failure") {
        for word in msg.split_ascii_whitespace() {
            if let Some(u) = word.strip_prefix("user=") {
                out.str(Col::UserName, u);
            } else if let Some(h) = word.strip_prefix("rhost=") {
                if h.parse::<std::net::IpAddr>().is_ok() {
                    out.ip(Col::SourceIp, "rhost", h);
                } else if !h.is_empty() {
                    out.vendor("rhost", h);
                }
            }
        }
        out.str(Col::EventAction, "pam_authentication");
        out.str(Col::EventOutcome, "failure");
        out.classify(&["authentication"], &["authentication_failure", "info"]);
        return Ok(Decoded::Fields);
    }
    for (prefix, start) in [
        ("session opened for user ", true),
        ("session closed for user ", false),
    ] {
        if let Some(r) = msg.strip_prefix(prefix) {
            let user = r.split([' ', '(']).next().unwrap_or("");
            out.str(Col::UserName, user);
            if let Some(by) = r.split(" by ").nth(1) {
                let by = by.split('(').next().unwrap_or("").trim();
                if !by.is_empty() {
                    out.vendor("by", by);
                }
            }
            out.str(
                Col::EventAction,
                if start {
                    "session-opened"
                } else {
                    "session-closed"
                },
            );
            out.str(Col::EventOutcome, "success");
            out.classify(&["session"], &[if start { "start" } else { "end" }]);
            return Ok(Decoded::Fields);
        }
    }
    if let Some(r) = msg.strip_prefix("password changed for ") {
        out.str(Col::UserName, r.trim());
        out.str(Col::EventAction, "password-changed");
        out.str(Col::EventOutcome, "success");
        out.classify(&["iam"], &["change", "user"]);
        return Ok(Decoded::Fields);
    }
    out.classify(&["authentication"], &["info"]);
    Ok(Decoded::Fields)
}

/// `alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/ls`,
/// `tsg : user NOT in sudoers ; TTY=pts/1 ; …`, `alice : 3 incorrect password attempts ; …`.
fn sudo(out: &mut Out<'_>, msg: &str) -> Option<()> {
    let (user, rest) = msg.split_once(" : ")?;
    out.str(Col::UserName, user.trim());
    let mut failure = None;
    for part in rest.split(" ; ") {
        let part = part.trim();
        match part.split_once('=') {
            Some(("TTY", v)) => out.vendor("tty", v),
            Some(("PWD", v)) => out.vendor("pwd", v),
            Some(("USER", v)) => out.vendor("target_user", v),
            Some(("COMMAND", v)) => out.vendor("command", v),
            Some((k, v)) if k.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') => {
                out.vendor(&k.to_ascii_lowercase(), v)
            }
            _ => failure = Some(part),
        }
    }
    out.str(Col::EventAction, "sudo");
    match failure {
        Some(reason) => {
            out.vendor("error", reason);
            out.str(Col::EventOutcome, "failure");
            out.classify(&["process", "authentication"], &["start", "denied"]);
        }
        None => {
            out.str(Col::EventOutcome, "success");
            out.classify(&["process"], &["start"]);
        }
    }
    Some(())
}

/// `(to root) alice on pts/0`, `Successful su for root by alice`, `FAILED su for root by alice`,
/// `FAILED SU (to root) alice on pts/0`.
fn su(out: &mut Out<'_>, msg: &str) -> Option<()> {
    let failed = msg.starts_with("FAILED");
    let (user, target) = if let Some(r) = msg.split("(to ").nth(1) {
        let (target, rest) = r.split_once(')')?;
        (rest.split_ascii_whitespace().next()?, target)
    } else {
        let target = word_after(msg, " for ")?;
        (word_after(msg, " by ")?, target)
    };
    out.str(Col::UserName, user);
    out.vendor("target_user", target);
    out.str(Col::EventAction, "su");
    out.str(
        Col::EventOutcome,
        if failed { "failure" } else { "success" },
    );
    out.classify(
        &["authentication"],
        &[if failed {
            "authentication_failure"
        } else {
            "authentication_success"
        }],
    );
    Some(())
}

/// `name=apache, UID=48, GID=48, home=…` → the value of `key`.
fn list_value<'a>(msg: &'a str, key: &str) -> Option<&'a str> {
    msg.split([',', ' '])
        .find_map(|p| p.trim().strip_prefix(key))
        .map(|v| v.trim_matches('\''))
}

/// Account and group changes from shadow-utils.
fn accounts(out: &mut Out<'_>, app: &str, msg: &str) -> Option<()> {
    let quoted = |s: &str| s.split('\'').nth(1).map(str::to_owned);
    let (action, ty, user, group): (&str, &str, Option<String>, Option<String>) = if msg
        .starts_with("new user:")
    {
        (
            "user-created",
            "creation",
            list_value(msg, "name=").map(str::to_owned),
            None,
        )
    } else if msg.starts_with("new group:") || msg.starts_with("group added to") {
        (
            "group-created",
            "creation",
            None,
            list_value(msg, "name=").map(str::to_owned),
        )
    } else if msg.starts_with("delete user") {
        ("user-deleted", "deletion", quoted(msg), None)
    } else if msg.starts_with("removed group") || msg.contains("group '") && msg.contains("removed")
    {
        ("group-deleted", "deletion", None, quoted(msg))
    } else if msg.starts_with("add '") && msg.contains(" to group '") {
        let mut q = msg.split('\'');
        let user = q.nth(1).map(str::to_owned);
        let group = q.nth(1).map(str::to_owned);
        ("user-added-to-group", "change", user, group)
    } else if msg.starts_with("change user") || msg.starts_with("changed user") {
        ("user-changed", "change", quoted(msg), None)
    } else if msg.starts_with("password for ") || msg.contains("password changed") {
        (
            "password-changed",
            "change",
            quoted(msg).or_else(|| word_after(msg, "for ").map(str::to_owned)),
            None,
        )
    } else if app.starts_with("group") {
        (
            "group-changed",
            "change",
            None,
            list_value(msg, "name=")
                .map(str::to_owned)
                .or_else(|| quoted(msg)),
        )
    } else {
        return None;
    };
    if let Some(u) = &user {
        out.str(Col::UserName, u);
    }
    if let Some(g) = &group {
        out.vendor("group", g);
    }
    for key in ["UID=", "GID=", "home=", "shell="] {
        if let Some(v) = list_value(msg, key) {
            out.vendor(&key[..key.len() - 1].to_ascii_lowercase(), v);
        }
    }
    out.str(Col::EventAction, action);
    out.str(Col::EventOutcome, "success");
    let what = if group.is_some() && user.is_none() {
        "group"
    } else {
        "user"
    };
    out.classify(&["iam"], &[what, ty]);
    Some(())
}
