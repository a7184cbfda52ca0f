//! RFC 5424 STRUCTURED-DATA.
//!
//! ```text
//! STRUCTURED-DATA = NILVALUE / 1*SD-ELEMENT
//! SD-ELEMENT      = "[" SD-ID *(SP SD-PARAM) "]"
//! SD-PARAM        = PARAM-NAME "=" %d34 PARAM-VALUE %d34
//! SD-NAME         = 1*32PRINTUSASCII except '=', SP, ']', %d34 (")
//! ```
//!
//! Read byte by byte (it is a small grammar on the hot path of every RFC 5424 line): names are
//! checked as ASCII, and only parameter values are checked as UTF-8, so the rest of the line is
//! not validated twice.

use std::borrow::Cow;

use super::{is_print_us_ascii, SdElement};

fn is_sd_name_char(b: u8) -> bool {
    is_print_us_ascii(b) && b != b'=' && b != b']' && b != b'"'
}

/// SD-NAME at `*i`: 1 to 32 name characters.
fn sd_name<'a>(input: &'a [u8], i: &mut usize) -> Option<&'a str> {
    let start = *i;
    while *i < input.len() && *i - start < 32 && is_sd_name_char(input[*i]) {
        *i += 1;
    }
    if *i == start {
        return None;
    }
    std::str::from_utf8(&input[start..*i]).ok()
}

/// PARAM-VALUE after its opening quote at `*i`, up to and past the closing quote. UTF-8 where
/// `"`, `\` and `]` must be escaped with `\`. RFC 5424 §6.3.3 says a backslash before any
/// other character is kept as it is; like go-syslog's strict parser we reject it, and the
/// lenient path (`auto`) still archives such a line.
fn param_value<'a>(input: &'a [u8], i: &mut usize) -> Option<Cow<'a, str>> {
    let start = *i;
    let mut escaped = false;
    loop {
        let at = crate::scan::find3(input, *i, b'"', b'\\', b']')?;
        match input[at] {
            b'"' => {
                let raw = std::str::from_utf8(&input[start..at]).ok()?;
                *i = at + 1;
                return Some(if escaped {
                    Cow::Owned(unescape(raw))
                } else {
                    Cow::Borrowed(raw)
                });
            }
            b'\\' if matches!(input.get(at + 1), Some(b'"' | b'\\' | b']')) => {
                escaped = true;
                *i = at + 2;
            }
            _ => return None,
        }
    }
}

/// Resolves the escapes of a value known to hold only valid ones.
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// One SD-ELEMENT at `*i` (its `[`), up to and past its `]`.
fn sd_element<'a>(input: &'a [u8], i: &mut usize) -> Option<SdElement<'a>> {
    *i += 1;
    let id = sd_name(input, i)?;
    let mut params = Vec::with_capacity(4);
    loop {
        match input.get(*i)? {
            b']' => {
                *i += 1;
                return Some(SdElement { id, params });
            }
            b' ' => {
                *i += 1;
                let name = sd_name(input, i)?;
                if input.get(*i..*i + 2)? != b"=\"" {
                    return None;
                }
                *i += 2;
                params.push((name, param_value(input, i)?));
            }
            _ => return None,
        }
    }
}

/// Parses one or more SD-ELEMENTs at the start of `input`; returns the elements and the length
/// they take.
pub(crate) fn structured_data(input: &[u8]) -> Option<(Vec<SdElement<'_>>, usize)> {
    let mut i = 0;
    let mut elems: Vec<SdElement<'_>> = Vec::with_capacity(2);
    while input.get(i) == Some(&b'[') {
        let e = sd_element(input, &mut i)?;
        // SD-IDs are unique within a message (RFC 5424 §6.3.2).
        if elems.iter().any(|p| p.id == e.id) {
            return None;
        }
        elems.push(e);
    }
    (!elems.is_empty()).then_some((elems, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_params_and_escapes() {
        let line = r#"[a@1 x="1" y="q\"\]\\z"][b] msg"#;
        let (sd, len) = structured_data(line.as_bytes()).expect("parses");
        assert_eq!(&line[len..], " msg");
        assert_eq!(sd.len(), 2);
        assert_eq!(sd[0].id, "a@1");
        assert_eq!(sd[0].params[0], ("x", Cow::Borrowed("1")));
        assert_eq!(sd[0].params[1].1, r#"q"]\z"#);
        assert_eq!(
            structured_data(br#"[a x="\n"]"#),
            None,
            "only \\, \" and ] may be escaped"
        );
        assert!(sd[1].params.is_empty());
        assert_eq!(structured_data(br#"[a x="1"#), None);
        assert_eq!(structured_data(b"[]"), None);
        let (sd, _) = structured_data(br#"[a x=""]"#).expect("empty value");
        assert_eq!(sd[0].params[0].1, "");
        assert_eq!(
            structured_data(br#"[a x="1"][a y="2"]"#),
            None,
            "duplicate SD-ID"
        );
        assert_eq!(structured_data(br#"[a x="]"]"#), None, "unescaped ]");
        assert_eq!(structured_data(b"[a x=\"\xff\"]"), None, "not UTF-8");
        let (sd, _) = structured_data("[a x=\"Tiếng Việt\"]".as_bytes()).expect("UTF-8 value");
        assert_eq!(sd[0].params[0].1, "Tiếng Việt");
        let name33 = format!("[{}]", "a".repeat(33));
        assert_eq!(structured_data(name33.as_bytes()), None, "SD-NAME over 32");
    }
}
