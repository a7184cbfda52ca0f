//! ArcSight Common Event Format:
//! `CEF:Version|Vendor|Product|Version|Signature ID|Name|Severity|Extension`.
//!
//! Header fields escape `|` and `\` with a backslash. The extension is `key=value` pairs
//! separated by spaces; a value runs to the space before the next `key=` (values may contain
//! spaces), and escapes `\=`, `\\`, `\n`, `\r`. Keys CEF defines a meaning for are mapped onto
//! ECS (see [`super::common_field`]); custom strings `cs1`…`cs6` (and `cn`, `cfp`, `c6a`) are
//! stored under their label when a `cs1Label` names them.

use std::borrow::Cow;

use canh_schema::fields::events::Col;

use crate::out::Out;
use crate::vendor::{Decoded, Input, Result};

pub fn decode(out: &mut Out<'_>, input: &Input<'_>) -> Result {
    let at = crate::find!(input.line.as_bytes(), b"CEF:").ok_or("no CEF: marker")?;
    let text = input.line[at + 4..].trim_end();
    let (header, ext) = header(text).ok_or("CEF: fewer than 7 header fields")?;
    let [version, vendor, product, dev_version, sig, name, severity] = &header;
    if !version.trim().chars().all(|c| c.is_ascii_digit()) || version.trim().is_empty() {
        return Err(format!("CEF: version {version:?} is not a number"));
    }
    out.observer(vendor, product, "");
    out.vendor("cef.version", version.trim());
    out.vendor("device_version", dev_version);
    out.str(Col::EventCode, sig);
    out.vendor("name", name);
    out.vendor("severity", severity);
    let pairs = extension(ext);
    let label = |key: &str| -> Option<&str> {
        pairs
            .iter()
            .find(|(k, _)| k.len() == key.len() + 5 && k.starts_with(key) && k.ends_with("Label"))
            .map(|(_, v)| v.as_ref())
    };
    for (k, v) in &pairs {
        let v: &str = v;
        if super::common_field(out, k, v) {
            continue;
        }
        match *k {
            "rt" | "end" if *k == "rt" => {
                if let Some(ns) = cef_time(v) {
                    out.timestamp(ns);
                } else {
                    out.vendor(k, v);
                }
            }
            "dvc" => out.vendor(k, v),
            "deviceDirection" => out.str(
                Col::NetworkDirection,
                match v {
                    "0" => "inbound",
                    "1" => "outbound",
                    other => other,
                },
            ),
            "dhost" => out.str(Col::UrlDomain, v),
            "duser" => out.vendor(k, v),
            k if k.ends_with("Label") => {}
            k if is_custom(k) => match label(k) {
                Some(l) => out.vendor(l, v),
                None => out.vendor(k, v),
            },
            _ => out.vendor(k, v),
        }
    }
    out.classify(&[], &["info"]);
    Ok(Decoded::Fields)
}

fn is_custom(k: &str) -> bool {
    let b = k.as_bytes();
    let prefix = [
        "cs",
        "cn",
        "cfp",
        "c6a",
        "flexString",
        "flexNumber",
        "deviceCustomDate",
    ]
    .iter()
    .find(|p| k.starts_with(*p));
    prefix.is_some_and(|p| b.len() == p.len() + 1 && b[p.len()].is_ascii_digit())
}

/// The seven header fields (escapes resolved) and the extension text.
fn header(text: &str) -> Option<([Cow<'_, str>; 7], &str)> {
    let b = text.as_bytes();
    let mut fields: Vec<Cow<'_, str>> = Vec::with_capacity(7);
    let mut start = 0;
    let mut i = 0;
    let mut owned: Option<String> = None;
    while fields.len() < 7 {
        let Some(at) = crate::scan::find2(b, i, b'|', b'\\') else {
            break;
        };
        i = at;
        match b[i] {
            b'\\' if matches!(b.get(i + 1), Some(b'|' | b'\\')) => {
                let o = owned.get_or_insert_with(String::new);
                o.push_str(&text[start..i]);
                start = i + 1;
                i += 2;
            }
            b'|' => {
                fields.push(match owned.take() {
                    Some(mut o) => {
                        o.push_str(&text[start..i]);
                        Cow::Owned(o)
                    }
                    None => Cow::Borrowed(&text[start..i]),
                });
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    let arr: [Cow<'_, str>; 7] = fields.try_into().ok()?;
    Some((arr, &text[start..]))
}

/// Splits the extension into pairs: every unescaped `=` preceded by a key ends the previous
/// value at the space before that key.
fn extension(ext: &str) -> Vec<(&str, Cow<'_, str>)> {
    let b = ext.as_bytes();
    // Positions of `key=` starts: (key start, '=' position).
    let mut keys: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while let Some(eq) = crate::scan::find2(b, i, b'=', b'=') {
        i = eq + 1;
        if eq > 0 && b[eq - 1] == b'\\' {
            continue;
        }
        let mut s = eq;
        while s > 0 && is_cef_key_byte(b[s - 1]) {
            s -= 1;
        }
        if s == eq || (s > 0 && b[s - 1] != b' ') {
            continue;
        }
        keys.push((s, eq));
    }
    let mut out = Vec::with_capacity(keys.len());
    for (n, &(ks, eq)) in keys.iter().enumerate() {
        let vend = keys.get(n + 1).map_or(ext.len(), |&(next, _)| next);
        let raw = ext[eq + 1..vend].trim_end_matches(' ');
        out.push((&ext[ks..eq], unescape(raw)));
    }
    out
}

fn is_cef_key_byte(c: u8) -> bool {
    static KEY: [bool; 256] = {
        let mut t = [false; 256];
        let mut c = 0;
        while c < 256 {
            let b = c as u8;
            t[c] = b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'[' | b']' | b'-');
            c += 1;
        }
        t
    };
    KEY[c as usize]
}

fn unescape(v: &str) -> Cow<'_, str> {
    if !v.contains('\\') {
        return Cow::Borrowed(v);
    }
    let mut o = String::with_capacity(v.len());
    let mut it = v.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            o.push(c);
            continue;
        }
        match it.next() {
            Some('n') => o.push('\n'),
            Some('r') => o.push('\r'),
            Some('=') => o.push('='),
            Some('\\') => o.push('\\'),
            Some(other) => {
                o.push('\\');
                o.push(other);
            }
            None => o.push('\\'),
        }
    }
    Cow::Owned(o)
}

/// `rt`: milliseconds since the epoch, or `MMM dd yyyy HH:mm:ss[.SSS] [zone]` (UTC without one).
fn cef_time(v: &str) -> Option<i64> {
    match v.parse::<i64>() {
        Ok(ms) => ms.checked_mul(1_000_000),
        Err(_) => crate::time::parse_month_day_year(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_escapes() {
        let (h, ext) = header(r"0|Ven\|dor|Prod\\uct|1.0|100|Name|5|a=b").expect("header");
        assert_eq!(h[1], "Ven|dor");
        assert_eq!(h[2], r"Prod\uct");
        assert_eq!(ext, "a=b");
        assert!(header("0|a|b|c").is_none());
    }

    #[test]
    fn extension_values_with_spaces_and_escapes() {
        let got = extension(
            r"msg=Detected a threat\=bad\nnow src=10.0.0.1 cs1=a b c cs1Label=Policy Name ",
        );
        let got: Vec<(String, String)> = got
            .into_iter()
            .map(|(k, v)| (k.into(), v.into_owned()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("msg".into(), "Detected a threat=bad\nnow".into()),
                ("src".into(), "10.0.0.1".into()),
                ("cs1".into(), "a b c".into()),
                ("cs1Label".into(), "Policy Name".into()),
            ]
        );
    }
}
