//! `key=value` text, as FortiGate, Sophos, Check Point and many others write it.
//!
//! * Pairs are separated by spaces (tabs too). Keys are letters, digits, `_`, `-`, `.`, `:`.
//! * A value in double quotes runs to the closing quote; inside it `\"` and `\\` are escapes
//!   (other backslashes are kept as written, as devices print Windows paths unescaped).
//! * An unquoted value runs to the next space that is followed by another `key=`, so a value
//!   with spaces (`device_id=C44 P29 log_id=…`) stays whole. `key=` followed by a space is an
//!   empty value.
//! * Text that is not a pair (a word without `=`) is skipped and counted in
//!   [`Pairs::skipped`].

use std::borrow::Cow;

/// Iterator over the pairs of a `key=value` text.
#[derive(Debug, Clone)]
pub struct Pairs<'a> {
    s: &'a str,
    pos: usize,
    /// The next pair's key (start, position of its `=`), found while looking for the end of
    /// an unquoted value, so it is not scanned twice.
    ahead: Option<(usize, usize)>,
    /// Words that were not `key=value` pairs, or quoted values without a closing quote.
    pub skipped: usize,
}

impl<'a> Pairs<'a> {
    pub fn new(s: &'a str) -> Self {
        Pairs {
            s,
            pos: 0,
            ahead: None,
            skipped: 0,
        }
    }
}

const KEY: u8 = 1;
const SEP: u8 = 2;

/// Byte classes: key bytes (letters, digits, `_-.:`) and separators (space, tab).
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b':') {
            t[b] = KEY;
        } else if matches!(c, b' ' | b'\t') {
            t[b] = SEP;
        }
        b += 1;
    }
    t
};

#[inline]
pub fn is_key_byte(b: u8) -> bool {
    CLASS[b as usize] == KEY
}

/// The end of the key starting at `i` (the first byte that is not a key byte).
#[inline]
fn key_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && CLASS[bytes[i] as usize] == KEY {
        i += 1;
    }
    i
}

/// The first separator at or after `i`, or the end.
#[inline]
fn sep_at_or_after(bytes: &[u8], i: usize) -> usize {
    crate::scan::find2(bytes, i, b' ', b'\t')
        .unwrap_or(bytes.len())
        .max(i)
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a str, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.s;
        let bytes = s.as_bytes();
        let (key_start, eq) = match self.ahead.take() {
            Some(k) => k,
            None => loop {
                while self.pos < bytes.len() && CLASS[bytes[self.pos] as usize] == SEP {
                    self.pos += 1;
                }
                if self.pos >= bytes.len() {
                    return None;
                }
                let key_start = self.pos;
                let i = key_end(bytes, key_start);
                if i > key_start && bytes.get(i) == Some(&b'=') {
                    break (key_start, i);
                }
                // Not a pair: skip the word (at least one byte).
                self.skipped += 1;
                self.pos = sep_at_or_after(bytes, i.max(key_start + 1));
            },
        };
        let key = &s[key_start..eq];
        let vstart = eq + 1;
        if bytes.get(vstart) == Some(&b'"') {
            if let Some((value, end)) = quoted(s, vstart + 1) {
                self.pos = end;
                return Some((key, value));
            }
            // No closing quote: take the rest as written.
            self.skipped += 1;
            self.pos = bytes.len();
            return Some((key, Cow::Borrowed(&s[vstart + 1..])));
        }
        // Unquoted: up to the next separator that begins another `key=` (remembered for the
        // next call), so values with spaces stay whole; `key=` then a space is empty.
        let mut i = vstart;
        let end = loop {
            let sp = sep_at_or_after(bytes, i);
            let mut next = sp;
            while next < bytes.len() && CLASS[bytes[next] as usize] == SEP {
                next += 1;
            }
            if next >= bytes.len() {
                break sp;
            }
            let k = key_end(bytes, next);
            if k > next && bytes.get(k) == Some(&b'=') {
                self.ahead = Some((next, k));
                break sp;
            }
            if sp == vstart {
                break sp;
            }
            i = k.max(next + 1);
        };
        self.pos = end;
        let value = &s[vstart..end];
        let value = match value.as_bytes().last() {
            Some(b) if b.is_ascii_whitespace() => value.trim_end(),
            _ => value,
        };
        Some((key, Cow::Borrowed(value)))
    }
}

/// A double-quoted value starting after the opening quote at `start`: the value and the
/// position after the closing quote.
#[inline]
pub fn quoted(s: &str, start: usize) -> Option<(Cow<'_, str>, usize)> {
    // Nearly every value has no backslash: the closing quote is the first hit.
    let bytes = s.as_bytes();
    match crate::scan::find2(bytes, start, b'"', b'\\')? {
        at if bytes[at] == b'"' => Some((Cow::Borrowed(&s[start..at]), at + 1)),
        _ => quoted_escaped(s, start),
    }
}

/// [`quoted`] for a value with a backslash in it.
#[cold]
fn quoted_escaped(s: &str, start: usize) -> Option<(Cow<'_, str>, usize)> {
    let bytes = s.as_bytes();
    let mut i = start;
    let mut owned: Option<String> = None;
    let mut copied = start;
    loop {
        let at = crate::scan::find2(bytes, i, b'"', b'\\')?;
        if bytes[at] == b'"' {
            let value = match owned {
                None => Cow::Borrowed(&s[start..at]),
                Some(mut o) => {
                    o.push_str(&s[copied..at]);
                    Cow::Owned(o)
                }
            };
            return Some((value, at + 1));
        }
        // A backslash: `\"` and `\\` are escapes, any other is kept.
        match bytes.get(at + 1) {
            Some(b'"') | Some(b'\\') => {
                let o = owned.get_or_insert_with(String::new);
                o.push_str(&s[copied..at]);
                copied = at + 1;
                i = at + 2;
            }
            Some(_) => i = at + 1,
            None => return None,
        }
    }
}

/// The generic `key=value` decoder: well-known keys to ECS, the rest to the vendor map.
pub fn decode(
    out: &mut crate::out::Out<'_>,
    input: &crate::vendor::Input<'_>,
) -> crate::vendor::Result {
    use crate::vendor::Decoded;
    let mut pairs = Pairs::new(input.body);
    let mut n = 0;
    for (k, v) in pairs.by_ref() {
        n += 1;
        if !super::common_field(out, k, &v) {
            out.vendor(k, &v);
        }
    }
    if n == 0 {
        return Err("no key=value pairs".into());
    }
    if pairs.skipped > 0 {
        out.problem(|| {
            format!(
                "{} parts were not key=value pairs or lacked a closing quote",
                pairs.skipped
            )
        });
    }
    Ok(Decoded::Fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(s: &str) -> Vec<(String, String)> {
        Pairs::new(s)
            .map(|(k, v)| (k.to_string(), v.into_owned()))
            .collect()
    }

    fn p(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn quoted_unquoted_empty_and_spaced_values() {
        assert_eq!(
            pairs(r#"a=1 b="two words" c= d=C44 P29 e="x\"y\\z" f=last"#),
            vec![
                p("a", "1"),
                p("b", "two words"),
                p("c", ""),
                p("d", "C44 P29"),
                p("e", r#"x"y\z"#),
                p("f", "last")
            ]
        );
    }

    #[test]
    fn junk_is_skipped_and_counted() {
        let mut it = Pairs::new("junk a=1 = more b=\"open");
        let got: Vec<_> = it.by_ref().map(|(k, v)| (k, v.into_owned())).collect();
        assert_eq!(
            got,
            vec![("a", "1 = more".to_string()), ("b", "open".to_string())]
        );
        assert_eq!(it.skipped, 2);
    }

    #[test]
    fn windows_paths_keep_backslashes() {
        assert_eq!(
            pairs(r#"file="C:\Temp\x.exe" user=DOM\alice"#),
            vec![p("file", r"C:\Temp\x.exe"), p("user", r"DOM\alice")]
        );
    }

    #[test]
    fn trailing_spaces_and_tabs() {
        assert_eq!(pairs("a=1\tb=2   "), vec![p("a", "1"), p("b", "2")]);
    }
}
