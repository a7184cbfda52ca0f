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
    /// Words that were not `key=value` pairs, or quoted values without a closing quote.
    pub skipped: usize,
}

impl<'a> Pairs<'a> {
    pub fn new(s: &'a str) -> Self {
        Pairs {
            s,
            pos: 0,
            skipped: 0,
        }
    }
}

#[inline]
pub fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':')
}

/// Whether `bytes` starts with `key=`.
#[inline]
fn starts_with_key(bytes: &[u8]) -> bool {
    let n = bytes.iter().take_while(|&&b| is_key_byte(b)).count();
    n > 0 && bytes.get(n) == Some(&b'=')
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a str, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.s;
        let bytes = s.as_bytes();
        loop {
            // Skip separators.
            while self.pos < bytes.len() && matches!(bytes[self.pos], b' ' | b'\t') {
                self.pos += 1;
            }
            if self.pos >= bytes.len() {
                return None;
            }
            let key_start = self.pos;
            let mut i = key_start;
            while i < bytes.len() && is_key_byte(bytes[i]) {
                i += 1;
            }
            if i == key_start || bytes.get(i) != Some(&b'=') {
                // Not a pair: skip the word.
                self.skipped += 1;
                self.pos = memchr::memchr2(b' ', b'\t', &bytes[i..]).map_or(bytes.len(), |p| i + p);
                if self.pos == i && i == key_start {
                    self.pos += 1;
                }
                continue;
            }
            let key = &s[key_start..i];
            let vstart = i + 1;
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
            // Unquoted: up to the next space that begins another `key=`.
            let mut end = vstart;
            loop {
                match memchr::memchr2(b' ', b'\t', &bytes[end..]) {
                    None => {
                        end = bytes.len();
                        break;
                    }
                    Some(p) => {
                        let sp = end + p;
                        let mut next = sp + 1;
                        while next < bytes.len() && matches!(bytes[next], b' ' | b'\t') {
                            next += 1;
                        }
                        if next >= bytes.len() || starts_with_key(&bytes[next..]) || sp == vstart {
                            end = sp;
                            break;
                        }
                        end = next;
                    }
                }
            }
            self.pos = end;
            return Some((key, Cow::Borrowed(s[vstart..end].trim_end())));
        }
    }
}

/// A double-quoted value starting after the opening quote at `start`: the value and the
/// position after the closing quote.
pub fn quoted(s: &str, start: usize) -> Option<(Cow<'_, str>, usize)> {
    let bytes = s.as_bytes();
    let mut i = start;
    let mut owned: Option<String> = None;
    let mut copied = start;
    loop {
        let p = memchr::memchr2(b'"', b'\\', &bytes[i..])?;
        let at = i + p;
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
