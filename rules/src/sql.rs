//! Compiled rules as a ClickHouse `WHERE` condition, for hunting over a ClickHouse archive.
//!
//! The condition never leaves out a row that a rule matches: ClickHouse narrows the rows down
//! and Canh confirms every row it sends back with the same compiled matcher the live pipeline
//! runs, so a hunt over ClickHouse gives exactly the live pipeline's matches.
//!
//! What ClickHouse decides exactly (on text columns, lists of text, vendor fields, and
//! unsigned number columns):
//!
//! * text values with `*` wildcards, `contains`, `startswith`, `endswith`, the encodings
//!   (`base64`, `wide`, `windash`, …), caseless or `cased`: `match()` with the regular
//!   expression the plain matcher uses (RE2 reads it the same way: ASCII case folding written
//!   as character classes), or `=` / `lower() =` for whole values;
//! * numbers (`=`, `gt`, `gte`, `lt`, `lte`, `neq`) on number columns, and text patterns on
//!   their decimal text;
//! * `exists` and `null` on nullable columns; CIDRs (IPv4) on text columns;
//! * keywords, over the same text columns the pipeline searches.
//!
//! Everything else — `re` (Rust's and RE2's classes differ), `?` wildcards (one character is
//! one to four bytes), `fieldref`, time parts, IPv6 CIDRs, booleans, numbers compared with
//! text — is left to Canh: such an atom widens the condition (it counts as "may match", or as
//! "may not match" under a `not`), and Canh decides on the rows that come back.

use std::fmt::Write as _;
use std::net::IpAddr;

use rsigma_parser::Modifier;

use crate::compiled::{CDet, CItem, Compiled, Cond};
use crate::plain::{Matcher, TextPattern};

/// How a field is read in SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlField {
    /// A `String` expression (`Nullable` when `nullable`).
    Text { expr: String, nullable: bool },
    /// An `Array(Nullable(String))`: a field holding a list matches when any element does.
    TextList { expr: String },
    /// An unsigned integer expression.
    Number { expr: String, nullable: bool },
    /// Not readable in SQL (times, bytes, …): Canh decides.
    Opaque,
}

/// The condition for a set of compiled rules, and how much of it ClickHouse decides.
#[derive(Debug, Clone)]
pub struct SqlFilter {
    /// A boolean SQL expression; `1` when some rule needs every row.
    pub condition: String,
    /// Rules whose whole condition ClickHouse decides.
    pub exact: usize,
    /// Rules partly decided by Canh on the rows ClickHouse sends.
    pub widened: usize,
}

/// A ClickHouse string literal.
pub fn literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A condition with whether Canh must still decide part of it.
struct Part {
    sql: String,
    widened: bool,
}

impl Part {
    fn exact(sql: String) -> Part {
        Part {
            sql,
            widened: false,
        }
    }

    /// Unknown here: "may match" when looking for matches (`want`), else "may not".
    fn unknown(want: bool) -> Part {
        Part {
            sql: if want { "1" } else { "0" }.into(),
            widened: true,
        }
    }
}

struct Translator<'a> {
    compiled: &'a Compiled,
    fields: &'a dyn Fn(&str) -> SqlField,
    keywords: &'a [SqlField],
}

impl Compiled {
    /// A `WHERE` condition that holds for every row some rule matches (see the module
    /// documentation). `fields` says how a field name reads in SQL; `keywords` are the columns
    /// keyword detections search.
    pub fn sql_filter(
        &self,
        fields: &dyn Fn(&str) -> SqlField,
        keywords: &[SqlField],
    ) -> SqlFilter {
        let t = Translator {
            compiled: self,
            fields,
            keywords,
        };
        let mut parts = Vec::new();
        let (mut exact, mut widened) = (0, 0);
        for rule in &self.rules {
            let p = t.any(
                rule.conditions
                    .iter()
                    .map(|c| t.cond(rule, c, true))
                    .collect(),
            );
            if p.widened {
                widened += 1;
            } else {
                exact += 1;
            }
            if p.sql == "1" {
                return SqlFilter {
                    condition: "1".into(),
                    exact,
                    widened: self.rules.len() - exact,
                };
            }
            if p.sql != "0" {
                parts.push(p.sql);
            }
        }
        SqlFilter {
            condition: if parts.is_empty() {
                "0".into()
            } else {
                parts.join("\n OR ")
            },
            exact,
            widened,
        }
    }
}

impl Translator<'_> {
    fn join(&self, parts: Vec<Part>, op: &str, unit: &str, zero: &str) -> Part {
        let widened = parts.iter().any(|p| p.widened);
        if parts.iter().any(|p| p.sql == zero) {
            return Part {
                sql: zero.into(),
                widened,
            };
        }
        let sql: Vec<String> = parts
            .into_iter()
            .filter(|p| p.sql != unit)
            .map(|p| p.sql)
            .collect();
        Part {
            sql: match sql.len() {
                0 => unit.into(),
                1 => sql.into_iter().next().unwrap_or_default(),
                _ => format!("({})", sql.join(op)),
            },
            widened,
        }
    }

    fn all(&self, parts: Vec<Part>) -> Part {
        self.join(parts, " AND ", "1", "0")
    }

    fn any(&self, parts: Vec<Part>) -> Part {
        self.join(parts, " OR ", "0", "1")
    }

    fn not(&self, p: Part) -> Part {
        Part {
            sql: match p.sql.as_str() {
                "1" => "0".into(),
                "0" => "1".into(),
                s => format!("NOT {s}"),
            },
            widened: p.widened,
        }
    }

    /// `want`: true where every row the condition holds for must pass (a superset), false
    /// where only rows it holds for may pass (a subset: under an odd number of `not`s).
    fn cond(&self, rule: &crate::compiled::CRule, c: &Cond, want: bool) -> Part {
        match c {
            Cond::And(v) => self.all(v.iter().map(|c| self.cond(rule, c, want)).collect()),
            Cond::Or(v) => self.any(v.iter().map(|c| self.cond(rule, c, want)).collect()),
            Cond::Not(c) => self.not(self.cond(rule, c, !want)),
            Cond::Det(d) => self.det(&rule.dets[*d], want),
            Cond::AtLeast(dets, need) => {
                let parts: Vec<Part> = dets
                    .iter()
                    .map(|d| self.det(&rule.dets[*d], want))
                    .collect();
                let widened = parts.iter().any(|p| p.widened);
                let sum: Vec<String> = parts.into_iter().map(|p| p.sql).collect();
                Part {
                    sql: format!("({}) >= {need}", sum.join(" + ")),
                    widened,
                }
            }
        }
    }

    fn det(&self, d: &CDet, want: bool) -> Part {
        match d {
            CDet::AllOf(items) => self.all(items.iter().map(|i| self.item(i, want)).collect()),
            CDet::AnyOf(ds) => self.any(ds.iter().map(|d| self.det(d, want)).collect()),
            CDet::And(ds) => self.all(ds.iter().map(|d| self.det(d, want)).collect()),
        }
    }

    fn item(&self, item: &CItem, want: bool) -> Part {
        let parts = item
            .atoms
            .iter()
            .map(|a| self.atom(*a as usize, want))
            .collect();
        if item.all {
            self.all(parts)
        } else {
            self.any(parts)
        }
    }

    fn atom(&self, a: usize, want: bool) -> Part {
        let atom = &self.compiled.atoms[a];
        match &atom.field {
            None => {
                // Keywords: any of the keyword columns.
                let parts = self
                    .keywords
                    .iter()
                    .map(|f| self.on_field(f, &atom.matcher, want))
                    .collect();
                self.any(parts)
            }
            Some(name) => self.on_field(&(self.fields)(name), &atom.matcher, want),
        }
    }

    fn on_field(&self, f: &SqlField, m: &Matcher, want: bool) -> Part {
        let scalar = |expr: &str, nullable: bool, number: bool| -> Option<String> {
            let p = match (m, number) {
                (Matcher::Text(variants), false) => text(expr, variants, want)?,
                (Matcher::Text(variants), true) => {
                    text(&format!("toString({expr})"), variants, want)?
                }
                (Matcher::Number(n), true) => format!("{expr} = {}", number_literal(*n)),
                (Matcher::Compare(op, n), true) => {
                    let op = match op {
                        Modifier::Gt => ">",
                        Modifier::Gte => ">=",
                        Modifier::Lt => "<",
                        Modifier::Neq => "!=",
                        _ => "<=",
                    };
                    format!("{expr} {op} {}", number_literal(*n))
                }
                (Matcher::Cidr(IpAddr::V4(net), len), false) => cidr_v4(expr, *net, *len, want),
                (Matcher::Cidr(IpAddr::V6(net), len), false) if want => cidr_v6(expr, *net, *len),
                (Matcher::Null, _) if nullable => return Some(format!("isNull({expr})")),
                (Matcher::Exists(true), _) if nullable => {
                    return Some(format!("isNotNull({expr})"))
                }
                (Matcher::Exists(false), _) if nullable => return Some(format!("isNull({expr})")),
                _ => return None,
            };
            Some(if nullable {
                format!("ifNull({p}, 0)")
            } else {
                p
            })
        };
        let sql = match f {
            SqlField::Text { expr, nullable } => scalar(expr, *nullable, false),
            SqlField::Number { expr, nullable } => scalar(expr, *nullable, true),
            SqlField::TextList { expr } => match m {
                Matcher::Null | Matcher::Exists(_) => None,
                _ => scalar("e", true, false).map(|p| format!("arrayExists(e -> {p}, {expr})")),
            },
            SqlField::Opaque => None,
        };
        match sql {
            Some(sql) => Part::exact(sql),
            None => Part::unknown(want),
        }
    }
}

/// A number as ClickHouse reads it.
fn number_literal(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e18 {
        format!("{}", n as i64)
    } else {
        format!("{n:?}")
    }
}

/// Any of a text matcher's variants. `None` when one of them cannot be written exactly and
/// a superset would not do (`want` false).
fn text(expr: &str, variants: &[TextPattern], want: bool) -> Option<String> {
    let mut out = Vec::new();
    for v in variants {
        if let Some(lit) = &v.literal {
            out.push(if v.caseless {
                format!("lower({expr}) = {}", literal(lit))
            } else {
                format!("{expr} = {}", literal(lit))
            });
            continue;
        }
        let re = v.source.as_str();
        if v.exact {
            out.push(format!("match({expr}, {})", literal(re)));
        } else if want {
            // A `?` (`.`, one character) as one to four of whatever RE2 reads a character as:
            // a superset either way.
            out.push(format!("match({expr}, {})", literal(&widen_dots(re))));
        } else {
            return None;
        }
    }
    Some(match out.len() {
        0 => "0".into(),
        1 => out.remove(0),
        _ => format!("({})", out.join(" OR ")),
    })
}

/// `.` (not `.*`, not escaped, not in a class) as `.{1,4}`.
fn widen_dots(re: &str) -> String {
    let mut out = String::with_capacity(re.len() + 8);
    let mut chars = re.chars().peekable();
    let mut class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push(c);
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            '[' if !class => {
                class = true;
                out.push(c);
            }
            ']' if class => {
                class = false;
                out.push(c);
            }
            '.' if !class && chars.peek() != Some(&'*') => out.push_str(".{1,4}"),
            c => out.push(c),
        }
    }
    out
}

/// An IPv4 CIDR on a text column. Canh parses the text as an address (trimmed; no leading
/// zeros); RE2 checks the same shape, then the address is masked.
fn cidr_v4(expr: &str, net: std::net::Ipv4Addr, len: u8, want: bool) -> String {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    let net = u32::from(net) & mask;
    let in_net = format!("bitAnd(IPv4StringToNum({expr}), {mask}) = {net}");
    const OCTET: &str = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
    let strict = format!("^{OCTET}(\\.{OCTET}){{3}}$");
    let mut sql = String::new();
    if want {
        // Only text with a `.` parses as an IPv4 address; text with one that is not a plain
        // dotted quad (spaces around it, say) may still parse: kept.
        let _ = write!(
            sql,
            "(position({expr}, '.') > 0 AND (NOT match({expr}, {}) OR {in_net}))",
            literal("^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$")
        );
    } else {
        let _ = write!(sql, "(match({expr}, {}) AND {in_net})", literal(&strict));
    }
    sql
}

/// An IPv6 CIDR on a text column, as a superset: text with a `:` made of hex digits and
/// colons only (which ClickHouse parses as Canh does) must start with the network's leading
/// hex digits (the prefix rounded down to whole digits); other text with a `:` may match.
fn cidr_v6(expr: &str, net: std::net::Ipv6Addr, len: u8) -> String {
    let digits = usize::from(len / 4);
    let hex: String = net
        .octets()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<String>()[..digits]
        .to_owned();
    format!(
        "(position({expr}, ':') > 0 AND (NOT match({expr}, {}) OR startsWith(hex(IPv6StringToNum({expr})), {})))",
        literal("^[0-9a-fA-F:]+$"),
        literal(&hex)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(yaml: &str) -> SqlFilter {
        let rule: rsigma_parser::SigmaRule = match rsigma_parser::parse_sigma_yaml(yaml)
            .expect("yaml")
            .rules
            .pop()
        {
            Some(r) => r,
            None => unreachable!("one rule"),
        };
        let plain = crate::plain::compile(&rule).expect("rule");
        let compiled = Compiled::new(vec![plain]);
        let fields = |name: &str| match name {
            "user.name" => SqlField::Text {
                expr: "`user_name`".into(),
                nullable: true,
            },
            "destination.port" => SqlField::Number {
                expr: "`destination_port`".into(),
                nullable: true,
            },
            "event.category" => SqlField::TextList {
                expr: "`event_category`".into(),
            },
            "source.ip" => SqlField::Text {
                expr: "`source_ip`".into(),
                nullable: true,
            },
            _ => SqlField::Opaque,
        };
        let keywords = [SqlField::Text {
            expr: "`message`".into(),
            nullable: true,
        }];
        compiled.sql_filter(&fields, &keywords)
    }

    fn rule(detection: &str) -> String {
        format!("title: t\nlogsource: {{product: linux}}\ndetection:\n{detection}")
    }

    #[test]
    fn exact_constructs_become_sql() {
        let f = filter(&rule(
            "  sel:\n    user.name: admin\n    destination.port|gte: 1024\n    event.category: auth*\n  kw:\n    - 'it''s'\n  condition: sel and not kw",
        ));
        assert_eq!((f.exact, f.widened), (1, 0));
        assert_eq!(
            f.condition,
            "((ifNull(lower(`user_name`) = 'admin', 0) AND ifNull(`destination_port` >= 1024, 0) \
             AND arrayExists(e -> ifNull(match(e, '(?s)^[aA][uU][tT][hH]'), 0), `event_category`)) \
             AND NOT ifNull(match(`message`, '(?s)[iI][tT]\\'[sS]'), 0))"
        );
    }

    #[test]
    fn what_sql_cannot_decide_widens_the_condition_the_right_way() {
        // A regular expression is left to Canh: "may match" on its own…
        let f = filter(&rule("  sel:\n    user.name|re: '^a.m'\n  condition: sel"));
        assert_eq!((f.condition.as_str(), f.widened), ("1", 1));
        // …and "may not match" under a not, so the rest still narrows the rows.
        let f = filter(&rule(
            "  sel:\n    user.name: root\n  re:\n    user.name|re: '^a.m'\n  condition: sel and not re",
        ));
        assert_eq!(f.condition, "ifNull(lower(`user_name`) = 'root', 0)");
        assert_eq!(f.widened, 1);
        // `?` is widened to one to four characters where a superset is right.
        let f = filter(&rule("  sel:\n    user.name: ad?in\n  condition: sel"));
        assert_eq!(
            f.condition,
            "ifNull(match(`user_name`, '(?s)^[aA][dD].{1,4}[iI][nN]$'), 0)"
        );
    }

    #[test]
    fn cidrs_and_counts() {
        let f = filter(&rule(
            "  a:\n    source.ip|cidr: 10.1.0.0/16\n  b:\n    user.name: x\n  condition: 1 of them and not b",
        ));
        assert_eq!((f.exact, f.widened), (1, 0));
        assert!(
            f.condition
                .contains("bitAnd(IPv4StringToNum(`source_ip`), 4294901760) = 167837696"),
            "{}",
            f.condition
        );
        let f = filter(&rule(
            "  a:\n    source.ip|cidr: '2001:db8:8000::/33'\n  condition: a",
        ));
        assert!(
            f.condition
                .contains("startsWith(hex(IPv6StringToNum(`source_ip`)), '20010DB8')"),
            "{}",
            f.condition
        );
    }
}
