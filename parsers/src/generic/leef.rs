//! IBM QRadar Log Event Extended Format.
//!
//! * LEEF 1.0: `LEEF:1.0|Vendor|Product|Version|EventID|k=v<TAB>k=v…`
//! * LEEF 2.0: `LEEF:2.0|Vendor|Product|Version|EventID|DELIM|k=v<DELIM>k=v…`, where DELIM is
//!   one character or its hex code (`x09`, `0x5E`, `^`). An empty DELIM means tab.
//!
//! Values run to the next delimiter; `devTime` with `devTimeFormat` gives the event time.

use canh_schema::fields::events::Col;

use crate::out::Out;
use crate::vendor::{Decoded, Input, Result};

pub fn decode(out: &mut Out<'_>, input: &Input<'_>) -> Result {
    let at = crate::find!(input.line.as_bytes(), b"LEEF:").ok_or("no LEEF: marker")?;
    let text = input.line[at + 5..].trim_end_matches(['\r', '\n']);
    let mut parts = text.splitn(6, '|');
    let version = parts.next().unwrap_or("");
    let vendor = parts.next().ok_or("LEEF: no vendor")?;
    let product = parts.next().ok_or("LEEF: no product")?;
    let dev_version = parts.next().ok_or("LEEF: no version")?;
    let event_id = parts.next().ok_or("LEEF: no event id")?;
    let mut rest = parts.next().unwrap_or("");
    let delim: char = match version {
        "1.0" | "1" => '\t',
        "2.0" | "2" => {
            let (d, attrs) = rest.split_once('|').ok_or("LEEF 2.0: no delimiter field")?;
            rest = attrs;
            delimiter(d).ok_or_else(|| format!("LEEF 2.0: bad delimiter {d:?}"))?
        }
        v => return Err(format!("LEEF: unknown version {v:?}")),
    };
    out.observer(vendor, product, "");
    out.vendor("device_version", dev_version);
    out.str(Col::EventCode, event_id);
    let mut dev_time = None;
    let mut dev_time_format = None;
    for pair in rest.split(delim) {
        let Some((k, v)) = pair.split_once('=') else {
            if !pair.trim().is_empty() {
                out.problem(|| format!("LEEF attribute without '=': {pair:?}"));
            }
            continue;
        };
        let k = k.trim();
        if super::common_field(out, k, v) {
            continue;
        }
        match k {
            "devTime" => dev_time = Some(v),
            "devTimeFormat" => dev_time_format = Some(v),
            "identHostName" => out.str(Col::HostHostname, v),
            _ => out.vendor(k, v),
        }
    }
    if let Some(t) = dev_time {
        match leef_time(t, dev_time_format) {
            Some(ns) => out.timestamp(ns),
            None => out.vendor("devTime", t),
        }
    }
    out.classify(&[], &["info"]);
    Ok(Decoded::Fields)
}

fn delimiter(d: &str) -> Option<char> {
    if d.is_empty() {
        return Some('\t');
    }
    let hex = d.strip_prefix("0x").or_else(|| d.strip_prefix('x'));
    match hex {
        Some(h) if !h.is_empty() && h.len() <= 4 => {
            char::from_u32(u32::from_str_radix(h, 16).ok()?)
        }
        _ if d.chars().count() == 1 => d.chars().next(),
        _ => None,
    }
}

/// `devTime` as epoch milliseconds, or `MMM dd yyyy HH:mm:ss` (the default format), or
/// `yyyy-MM-dd HH:mm:ss`.
fn leef_time(v: &str, _format: Option<&str>) -> Option<i64> {
    if let Ok(ms) = v.parse::<i64>() {
        return ms.checked_mul(1_000_000);
    }
    let mut w = v.split_ascii_whitespace();
    match (w.next(), w.next()) {
        (Some(d), Some(t)) if d.len() == 10 => {
            crate::time::parse_date_time(d, t).map(|c| c.to_unix_ns(0))
        }
        _ => crate::time::parse_month_day_year(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters() {
        assert_eq!(delimiter("^"), Some('^'));
        assert_eq!(delimiter("x09"), Some('\t'));
        assert_eq!(delimiter("0x5E"), Some('^'));
        assert_eq!(delimiter(""), Some('\t'));
        assert_eq!(delimiter("ab"), None);
    }
}
