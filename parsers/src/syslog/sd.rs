//! RFC 5424 STRUCTURED-DATA, parsed with nom combinators.
//!
//! ```text
//! STRUCTURED-DATA = NILVALUE / 1*SD-ELEMENT
//! SD-ELEMENT      = "[" SD-ID *(SP SD-PARAM) "]"
//! SD-PARAM        = PARAM-NAME "=" %d34 PARAM-VALUE %d34
//! SD-NAME         = 1*32PRINTUSASCII except '=', SP, ']', %d34 (")
//! ```

use std::borrow::Cow;

use nom::bytes::complete::{escaped, tag, take_while_m_n};
use nom::character::complete::{char, none_of, one_of};
use nom::combinator::opt;
use nom::multi::{many0, many1};
use nom::sequence::{delimited, preceded, separated_pair};
use nom::{IResult, Parser};

use super::{is_print_us_ascii, SdElement};

fn is_sd_name_char(b: u8) -> bool {
    is_print_us_ascii(b) && b != b'=' && b != b']' && b != b'"'
}

fn sd_name(input: &str) -> IResult<&str, &str> {
    take_while_m_n(1, 32, |c: char| c.is_ascii() && is_sd_name_char(c as u8)).parse(input)
}

/// PARAM-VALUE: UTF-8 where `"`, `\` and `]` must be escaped with `\`. RFC 5424 §6.3.3 says a
/// backslash before any other character is kept as it is; like go-syslog's strict parser we
/// reject it, and the lenient path (`auto`) still archives such a line.
fn param_value(input: &str) -> IResult<&str, Cow<'_, str>> {
    let (rest, raw) = opt(escaped(none_of("\\\"]"), '\\', one_of("\"\\]"))).parse(input)?;
    let raw = raw.unwrap_or("");
    Ok((rest, unescape(raw)))
}

fn unescape(raw: &str) -> Cow<'_, str> {
    if !raw.contains('\\') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.peek() {
                Some(&n) => {
                    out.push(n);
                    chars.next();
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn sd_param(input: &str) -> IResult<&str, (&str, Cow<'_, str>)> {
    separated_pair(
        sd_name,
        char('='),
        delimited(char('"'), param_value, char('"')),
    )
    .parse(input)
}

fn sd_element(input: &str) -> IResult<&str, SdElement<'_>> {
    let (rest, (id, params)) = delimited(
        char('['),
        (sd_name, many0(preceded(tag(" "), sd_param))),
        char(']'),
    )
    .parse(input)?;
    Ok((rest, SdElement { id, params }))
}

/// Parses one or more SD-ELEMENTs at the start of `input`; returns the elements and the rest.
pub(crate) fn structured_data(input: &str) -> Option<(Vec<SdElement<'_>>, &str)> {
    let (rest, elems) = many1(sd_element).parse(input).ok()?;
    // SD-IDs are unique within a message (RFC 5424 §6.3.2).
    let duplicate = elems
        .iter()
        .enumerate()
        .any(|(i, e)| elems[..i].iter().any(|p| p.id == e.id));
    (!duplicate).then_some((elems, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_params_and_escapes() {
        let (sd, rest) = structured_data(r#"[a@1 x="1" y="q\"\]\\z"][b] msg"#).expect("parses");
        assert_eq!(rest, " msg");
        assert_eq!(sd.len(), 2);
        assert_eq!(sd[0].id, "a@1");
        assert_eq!(sd[0].params[0], ("x", Cow::Borrowed("1")));
        assert_eq!(sd[0].params[1].1, r#"q"]\z"#);
        assert_eq!(
            structured_data(r#"[a x="\n"]"#),
            None,
            "only \\, \" and ] may be escaped"
        );
        assert!(sd[1].params.is_empty());
        assert_eq!(structured_data(r#"[a x="1"#), None);
        assert_eq!(structured_data("[]"), None);
        let (sd, _) = structured_data(r#"[a x=""]"#).expect("empty value");
        assert_eq!(sd[0].params[0].1, "");
    }
}
