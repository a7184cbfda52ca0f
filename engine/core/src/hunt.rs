//! `canh hunt --from --to`: the compiled rules over the Parquet archive, the same way the live
//! pipeline runs them (record batches read as [`BatchEvents`], the same keyword columns), in
//! parallel over files.
//!
//! Files are chosen by their partition folder, which is the *receive* hour: from one hour
//! before `from` (device clocks a little ahead) to one day after `to` (events that arrived
//! late). Rows are then kept by their event time (`@timestamp`) in `[from, to)`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{Array, TimestampNanosecondArray, UInt32Array};
use arrow::record_batch::RecordBatch;
use canh_rules::batch::BatchEvents;
use canh_rules::compiled::Hit;
use canh_rules::correlation::EventJson;
use canh_rules::sql::{literal, SqlField};
use canh_rules::{RuleSet, SetScratch, Target};
use canh_schema::fields::{column_name, FieldType};
use canh_schema::Table;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rayon::prelude::*;
use serde_json::Value;

use crate::detect::keywords;
use crate::sink::clickhouse::{complete_rows, decode, quote, Dialect, Layout, Server};

const HOUR_NS: i64 = 3_600_000_000_000;

/// Event times kept: `[from_ns, to_ns)`.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub from_ns: i64,
    pub to_ns: i64,
}

/// One matching row, by where it is: rows stay in their batches, and JSON is made only for
/// what is printed or sampled.
#[derive(Debug, Clone, Copy)]
pub struct HuntMatch {
    /// Position of the rule in [`RuleSet::rules`].
    pub rule: u32,
    pub time_ns: i64,
    /// When Canh received it (`event.created`; 0 when unknown): ties of `time_ns` go in
    /// arrival order.
    pub created_ns: i64,
    /// Position of its batch in [`Found::batches`], and its row there.
    pub batch: u32,
    pub row: u32,
}

/// What a hunt found: the batches that hold matches, and the matches.
#[derive(Debug, Default)]
pub struct Found {
    pub batches: Vec<(Table, RecordBatch)>,
    pub matches: Vec<HuntMatch>,
}

impl Found {
    /// Adds what another part of the hunt found.
    pub fn extend(&mut self, other: Found) {
        let base = self.batches.len() as u32;
        self.batches.extend(other.batches);
        self.matches
            .extend(other.matches.into_iter().map(|m| HuntMatch {
                batch: m.batch + base,
                ..m
            }));
    }

    /// A match's row as JSON.
    fn json(&self, m: &HuntMatch) -> crate::json::RowJson<'_> {
        let (table, batch) = &self.batches[m.batch as usize];
        crate::json::RowJson {
            table: *table,
            batch,
            row: m.row as usize,
        }
    }

    /// Puts the matches in the order correlations see them: event time, then arrival, then
    /// rule, then the event itself; the same order whatever the source and however it was
    /// read.
    pub fn sort(&mut self) {
        let key = |m: &HuntMatch| (m.time_ns, m.created_ns, m.rule);
        let mut matches = std::mem::take(&mut self.matches);
        matches.sort_by_key(key);
        // Ties (a rule matching several events of one arrival with the same time) by the
        // events' JSON, made once per tied match: making it in the comparison itself, twice per
        // comparison, took most of a hunt's time.
        let mut start = 0;
        while start < matches.len() {
            let first = key(&matches[start]);
            let end = start + matches[start..].partition_point(|m| key(m) == first);
            if end - start > 1 {
                matches[start..end].sort_by_cached_key(|m| self.json(m).text());
            }
            start = end;
        }
        self.matches = matches;
    }

    /// Calls `f` with each match (in their order), its row, and its JSON (which correlation
    /// windows keep by the match's place in `matches`, not as text).
    pub fn each(
        &self,
        mut f: impl FnMut(
            &HuntMatch,
            &dyn canh_rules::plain::Row,
            &dyn canh_rules::correlation::EventJson,
        ) -> Result<(), String>,
    ) -> Result<(), String> {
        let views: Vec<BatchEvents<'_>> = self
            .batches
            .iter()
            .map(|(t, b)| BatchEvents::new(b, keywords(*t)))
            .collect();
        for (at, m) in self.matches.iter().enumerate() {
            let row = canh_rules::events::RowOf {
                events: &views[m.batch as usize],
                row: m.row as usize,
            };
            f(m, &row, &MatchJson { found: self, at })?;
        }
        Ok(())
    }
}

/// A match's event as [`EventJson`]: kept by correlation windows as its place in
/// [`Found::matches`], made into JSON only when a window fires.
struct MatchJson<'a> {
    found: &'a Found,
    at: usize,
}

impl EventJson for MatchJson<'_> {
    fn text(&self) -> String {
        self.found.json(&self.found.matches[self.at]).text()
    }

    fn value(&self) -> Value {
        self.found.json(&self.found.matches[self.at]).value()
    }

    fn handle(&self) -> Option<u64> {
        Some(self.at as u64)
    }

    fn recall(&self, handle: u64) -> Option<Value> {
        let m = self.found.matches.get(usize::try_from(handle).ok()?)?;
        Some(self.found.json(m).value())
    }
}

/// The archive's files of a table whose receive hour may hold events of the window, in
/// name order (= time order).
pub fn files(archive: &Path, table: Table, w: Window) -> Result<Vec<PathBuf>, String> {
    let root = archive.join(table.name());
    if !root.is_dir() {
        return Ok(Vec::new());
    }
    let first = w.from_ns.saturating_sub(HOUR_NS);
    let last = w.to_ns.saturating_add(24 * HOUR_NS);
    let hour_start = |date: &str, hour: &str| -> Option<i64> {
        let t: jiff::Timestamp = format!("{date}T{hour}:00:00Z").parse().ok()?;
        i64::try_from(t.as_nanosecond()).ok()
    };
    let mut out = Vec::new();
    let list = |p: &Path| -> Result<Vec<PathBuf>, String> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(p)
            .map_err(|e| format!("{}: {e}", p.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        v.sort();
        Ok(v)
    };
    for day in list(&root)? {
        let Some(date) = day
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("date="))
            .map(str::to_owned)
        else {
            continue;
        };
        for hour_dir in list(&day)? {
            let Some(hour) = hour_dir
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("hour="))
            else {
                continue;
            };
            let Some(start) = hour_start(&date, hour) else {
                continue;
            };
            if start + HOUR_NS <= first || start > last {
                continue;
            }
            for f in list(&hour_dir)? {
                let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                if name.ends_with(".parquet") && !name.starts_with('.') {
                    out.push(f);
                }
            }
        }
    }
    Ok(out)
}

/// The matches of the rules of `set` in one batch of `table`, rows in the window only.
#[allow(clippy::too_many_arguments)]
fn batch_matches(
    set: &RuleSet,
    table: Table,
    target: Target,
    batch: &RecordBatch,
    w: Window,
    scratch: &mut SetScratch,
    hits: &mut Vec<Hit>,
    out: &mut Found,
) {
    hits.clear();
    set.matches(
        target,
        &BatchEvents::new(batch, keywords(table)),
        scratch,
        hits,
    );
    let times = batch
        .column_by_name("timestamp")
        .and_then(|c| c.as_any().downcast_ref::<TimestampNanosecondArray>());
    let created = batch
        .column_by_name("event_created")
        .and_then(|c| c.as_any().downcast_ref::<TimestampNanosecondArray>());
    let index = out.batches.len() as u32;
    let before = out.matches.len();
    for h in hits.iter() {
        let row = h.row as usize;
        let Some(t) = times.filter(|t| t.is_valid(row)).map(|t| t.value(row)) else {
            continue;
        };
        if t < w.from_ns || t >= w.to_ns {
            continue;
        }
        out.matches.push(HuntMatch {
            rule: h.rule,
            time_ns: t,
            created_ns: created
                .filter(|c| c.is_valid(row))
                .map_or(0, |c| c.value(row)),
            batch: index,
            row: h.row,
        });
    }
    if out.matches.len() == before {
        return;
    }
    // The hunt keeps its matching rows to the end: only those rows, unless nearly all match.
    let mut rows: Vec<u32> = out.matches[before..].iter().map(|m| m.row).collect();
    rows.sort_unstable();
    rows.dedup();
    if rows.len() * 4 < batch.num_rows() * 3 {
        let taken = arrow::compute::take_record_batch(batch, &UInt32Array::from(rows.clone()));
        if let Ok(taken) = taken {
            for m in &mut out.matches[before..] {
                m.row = rows.partition_point(|&r| r < m.row) as u32;
            }
            out.batches.push((table, taken));
            return;
        }
    }
    out.batches.push((table, batch.clone()));
}

fn target(table: Table) -> Option<Target> {
    match table {
        Table::Events => Some(Target::Events),
        Table::Flows => Some(Target::Flows),
        Table::Alerts => None,
    }
}

/// Runs the rules of `set` for `table` over the files, in parallel; what each file holds,
/// files in the order given. `rows` counts the rows read (for progress).
pub fn run(
    set: &RuleSet,
    table: Table,
    files: &[PathBuf],
    w: Window,
    rows: &AtomicU64,
) -> Result<Vec<Found>, String> {
    let Some(target) = target(table) else {
        return Ok(Vec::new());
    };
    files
        .par_iter()
        .map_init(
            || (set.scratch(), Vec::new()),
            |(scratch, hits), path| {
                let file =
                    std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
                let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                    .and_then(|b| b.with_batch_size(8192).build())
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                let mut out = Found::default();
                for batch in reader {
                    let batch = batch.map_err(|e| format!("{}: {e}", path.display()))?;
                    rows.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                    batch_matches(set, table, target, &batch, w, scratch, hits, &mut out);
                }
                Ok(out)
            },
        )
        .collect()
}

/// How a field name reads in SQL on a ClickHouse table, as [`BatchEvents`] reads it from a
/// batch: a column by its name or ECS name, anything else a vendor field.
pub fn sql_field(table: Table, dialect: Dialect, name: &str) -> SqlField {
    let fields = table.fields();
    let by_name = |n: &str| fields.iter().find(|f| f.column() == n || f.ecs == n);
    let field = by_name(name).or_else(|| {
        (name.contains('.') || name.starts_with('@'))
            .then(|| by_name(&column_name(name)))
            .flatten()
    });
    let Some(f) = field else {
        let Some(map) = fields.iter().find(|f| f.column() == "vendor_fields") else {
            return SqlField::Opaque;
        };
        let col = map.column();
        let expr = match dialect {
            Dialect::Legacy => format!(
                "{}[indexOf({}, {})]",
                quote(&format!("{col}.value")),
                quote(&format!("{col}.key")),
                literal(name)
            ),
            Dialect::Modern => format!("{}[{}]", quote(&col), literal(name)),
        };
        return SqlField::Text {
            expr,
            nullable: true,
        };
    };
    let expr = quote(&f.column());
    match f.ty {
        FieldType::Str => SqlField::Text {
            expr,
            nullable: f.nullable,
        },
        FieldType::StrList => SqlField::TextList { expr },
        FieldType::U8 | FieldType::U16 | FieldType::U32 | FieldType::U64 => SqlField::Number {
            expr,
            nullable: f.nullable,
        },
        FieldType::Timestamp | FieldType::Bytes | FieldType::StrMap => SqlField::Opaque,
    }
}

/// The `SELECT` of a hunt over one ClickHouse table: the rows of the window that the rules'
/// SQL condition lets through, with how many rules it decides exactly and how many it widens.
pub fn clickhouse_select(
    set: &RuleSet,
    table: Table,
    layout: &Layout,
    w: Window,
) -> Option<(String, canh_rules::sql::SqlFilter)> {
    let compiled = set.compiled(target(table)?)?;
    let fields = |name: &str| sql_field(table, layout.dialect, name);
    let keyword_fields: Vec<SqlField> = keywords(table)
        .iter()
        .map(|k| sql_field(table, layout.dialect, k))
        .collect();
    let filter = compiled.sql_filter(&fields, &keyword_fields);
    let time = match layout.dialect {
        Dialect::Legacy => format!("`timestamp` >= {} AND `timestamp` < {}", w.from_ns, w.to_ns),
        Dialect::Modern => format!(
            "toUnixTimestamp64Nano(`timestamp`) >= {} AND toUnixTimestamp64Nano(`timestamp`) < {}",
            w.from_ns, w.to_ns
        ),
    };
    let sql = format!(
        "SELECT * FROM {}.{} WHERE {time} AND ({})",
        quote(&layout.database),
        quote(table.name()),
        filter.condition
    );
    Some((sql, filter))
}

/// Hunts over one ClickHouse table: ClickHouse sends the rows the rules' SQL condition lets
/// through, and the compiled rules decide on each, as over the archive. `rows` counts the
/// rows received.
pub async fn clickhouse(
    set: &RuleSet,
    table: Table,
    server: &Server,
    layout: &Layout,
    w: Window,
    rows: &AtomicU64,
) -> Result<Found, String> {
    let (Some(target), Some((sql, _))) = (target(table), clickhouse_select(set, table, layout, w))
    else {
        return Ok(Found::default());
    };
    let mut cursor = server.row_binary(&sql).map_err(|e| e.to_string())?;
    let (mut scratch, mut hits, mut out) = (set.scratch(), Vec::new(), Found::default());
    let mut buf: Vec<u8> = Vec::new();
    let mut run = |buf: &mut Vec<u8>, last: bool| -> Result<(), String> {
        let (end, n) = complete_rows(table, layout.dialect, buf);
        if last && end != buf.len() {
            return Err(format!(
                "{}: the server's answer ends inside a row",
                table.name()
            ));
        }
        if n == 0 {
            return Ok(());
        }
        let batch = decode(table, layout.dialect, &buf[..end]).map_err(|e| e.to_string())?;
        buf.drain(..end);
        if let Some(batch) = batch {
            rows.fetch_add(batch.rows() as u64, Ordering::Relaxed);
            batch_matches(
                set,
                table,
                target,
                &batch.records,
                w,
                &mut scratch,
                &mut hits,
                &mut out,
            );
        }
        Ok(())
    };
    while let Some(chunk) = cursor.next().await.map_err(|e| e.to_string())? {
        buf.extend_from_slice(&chunk);
        if buf.len() >= 4 << 20 {
            run(&mut buf, false)?;
        }
    }
    run(&mut buf, true)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use canh_schema::fields::events::Col as EventField;
    use canh_schema::TableBuilder;

    /// A batch where some rows match keeps only those rows, and each match still points at
    /// its own event.
    #[test]
    fn only_matching_rows_are_kept_and_matches_point_at_them() {
        let dir = tempfile::tempdir().expect("tmp");
        let rule = "title: Root\nlogsource: {product: linux}\ndetection:\n  sel: {user.name: root}\n  condition: sel\n";
        std::fs::write(dir.path().join("r.yml"), rule).expect("write");
        let loaded = canh_rules::load(&[dir.path().to_owned()]);
        let (set, rejected) = RuleSet::build(
            &loaded.rules,
            &canh_rules::Mapping::identity(),
            &canh_rules::Iocs::default(),
        );
        assert!(rejected.is_empty(), "{rejected:?}");
        let mut b = TableBuilder::new(Table::Events, 16);
        for i in 0..10i64 {
            b.set_ts(EventField::Timestamp, i);
            b.set_ts(EventField::EventCreated, i);
            b.set_str(
                EventField::UserName,
                if i % 4 == 1 { "root" } else { "alice" },
            );
            b.set_str(EventField::Message, &format!("line {i}"));
            b.set_str(EventField::EventOriginal, &format!("line {i}"));
            b.set_str(EventField::ParseStatus, "ok");
            b.end_row();
        }
        let batch = b.finish().expect("batch").expect("rows").records;
        let w = Window {
            from_ns: 0,
            to_ns: 100,
        };
        let mut out = Found::default();
        let (mut scratch, mut hits) = (set.scratch(), Vec::new());
        batch_matches(
            &set,
            Table::Events,
            Target::Events,
            &batch,
            w,
            &mut scratch,
            &mut hits,
            &mut out,
        );
        assert_eq!(out.batches.len(), 1);
        assert_eq!(out.batches[0].1.num_rows(), 3);
        let messages: Vec<String> = out
            .matches
            .iter()
            .map(|m| out.json(m).value()["message"].to_string())
            .collect();
        assert_eq!(messages, ["\"line 1\"", "\"line 5\"", "\"line 9\""]);
    }
}
