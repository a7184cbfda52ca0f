//! `canh hunt --from --to`: the compiled rules over the Parquet archive, the same way the live
//! pipeline runs them (record batches read as [`BatchEvents`], the same keyword columns), in
//! parallel over files.
//!
//! Files are chosen by their partition folder, which is the *receive* hour: from one hour
//! before `from` (device clocks a little ahead) to one day after `to` (events that arrived
//! late). Rows are then kept by their event time (`@timestamp`) in `[from, to)`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{Array, TimestampNanosecondArray};
use canh_rules::batch::BatchEvents;
use canh_rules::{RuleSet, Target};
use canh_schema::Table;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rayon::prelude::*;
use serde_json::Value;

use crate::detect::keywords;

const HOUR_NS: i64 = 3_600_000_000_000;

/// Event times kept: `[from_ns, to_ns)`.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub from_ns: i64,
    pub to_ns: i64,
}

/// One matching row.
#[derive(Debug)]
pub struct HuntMatch {
    /// Position of the rule in [`RuleSet::rules`].
    pub rule: u32,
    pub time_ns: i64,
    /// The row, as `canh_core::json::row_to_json` gives it.
    pub event: Value,
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

/// Runs the rules of `set` for `table` over the files, in parallel; the matches of each file
/// in row order, files in the order given. `rows` counts the rows read (for progress).
pub fn run(
    set: &RuleSet,
    table: Table,
    files: &[PathBuf],
    w: Window,
    rows: &AtomicU64,
) -> Result<Vec<Vec<HuntMatch>>, String> {
    let target = match table {
        Table::Events => Target::Events,
        Table::Flows => Target::Flows,
        Table::Alerts => return Ok(Vec::new()),
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
                let mut out = Vec::new();
                for batch in reader {
                    let batch = batch.map_err(|e| format!("{}: {e}", path.display()))?;
                    rows.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                    hits.clear();
                    set.matches(
                        target,
                        &BatchEvents::new(&batch, keywords(table)),
                        scratch,
                        hits,
                    );
                    let times = batch
                        .column_by_name("timestamp")
                        .and_then(|c| c.as_any().downcast_ref::<TimestampNanosecondArray>());
                    for h in hits.iter() {
                        let row = h.row as usize;
                        let Some(t) = times.filter(|t| t.is_valid(row)).map(|t| t.value(row))
                        else {
                            continue;
                        };
                        if t < w.from_ns || t >= w.to_ns {
                            continue;
                        }
                        out.push(HuntMatch {
                            rule: h.rule,
                            time_ns: t,
                            event: Value::Object(crate::json::row_to_json(table, &batch, row)),
                        });
                    }
                }
                Ok(out)
            },
        )
        .collect()
}
