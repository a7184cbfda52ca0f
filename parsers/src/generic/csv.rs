//! Comma-separated fields as firewalls print them: a field in double quotes may hold commas,
//! and `""` inside it is one quote.

use std::borrow::Cow;

/// Splits `s` into its fields (appended to `fields`, which is cleared first).
pub fn split_into<'a>(s: &'a str, fields: &mut Vec<Cow<'a, str>>) {
    fields.clear();
    let b = s.as_bytes();
    let mut i = 0;
    loop {
        if b.get(i) == Some(&b'"') {
            // Quoted field.
            let mut owned: Option<String> = None;
            let mut j = i + 1;
            let mut copied = j;
            let end;
            loop {
                match memchr::memchr(b'"', &b[j..]) {
                    None => {
                        end = b.len();
                        break;
                    }
                    Some(p) => {
                        let q = j + p;
                        if b.get(q + 1) == Some(&b'"') {
                            let o = owned.get_or_insert_with(String::new);
                            o.push_str(&s[copied..=q]);
                            j = q + 2;
                            copied = j;
                        } else {
                            end = q;
                            break;
                        }
                    }
                }
            }
            let value = match owned {
                Some(mut o) => {
                    o.push_str(&s[copied..end]);
                    Cow::Owned(o)
                }
                None => Cow::Borrowed(&s[i + 1..end]),
            };
            fields.push(value);
            // Skip to the comma after the closing quote.
            let after = (end + 1).min(b.len());
            match memchr::memchr(b',', &b[after..]) {
                Some(p) => i = after + p + 1,
                None => return,
            }
        } else {
            match memchr::memchr(b',', &b[i..]) {
                Some(p) => {
                    fields.push(Cow::Borrowed(&s[i..i + p]));
                    i += p + 1;
                }
                None => {
                    fields.push(Cow::Borrowed(&s[i..]));
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_empty_fields() {
        let mut f = Vec::new();
        split_into(r#"1,,"a,b","say ""hi""",end"#, &mut f);
        assert_eq!(f, vec!["1", "", "a,b", r#"say "hi""#, "end"]);
        split_into("", &mut f);
        assert_eq!(f, vec![""]);
        split_into("a,", &mut f);
        assert_eq!(f, vec!["a", ""]);
        split_into(r#""open"#, &mut f);
        assert_eq!(f, vec!["open"]);
    }
}
