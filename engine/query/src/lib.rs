//! `canh query`: read-only SQL over the Parquet archive (DataFusion) or over ClickHouse, with
//! limits on the rows returned and the time taken.
//!
//! Over the archive, the tables are `events`, `flows` and `alerts`, with the archive's columns
//! (`source_ip`, `timestamp`, …) and the partition columns `date` (`YYYY-MM-DD`) and `hour`
//! (`HH`) of the receive time: a filter on them reads only the matching folders. Statements
//! that would change anything (DDL, `INSERT`, `COPY`, `SET`) are refused.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use canh_schema::Table;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::ListingOptions;
use datafusion::datasource::MemTable;
use datafusion::execution::context::{SQLOptions, SessionContext};
use futures_util::StreamExt;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// An aligned text table.
    Table,
    /// CSV with a header line.
    Csv,
    /// One JSON object per row.
    Json,
}

impl Output {
    pub fn parse(s: &str) -> Result<Output, String> {
        match s {
            "table" => Ok(Output::Table),
            "csv" => Ok(Output::Csv),
            "json" | "jsonl" => Ok(Output::Json),
            _ => Err(format!("{s:?}: use table, csv or json")),
        }
    }
}

/// What a query may cost.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Rows returned at most; the rest is not read.
    pub max_rows: usize,
    /// The query is stopped past this.
    pub timeout: Duration,
}

/// A query's result: its batches, and whether `max_rows` cut it short.
#[derive(Debug)]
pub struct Answer {
    pub batches: Vec<RecordBatch>,
    pub truncated: bool,
}

/// A DataFusion session over the archive folder (`data_dir/archive`).
pub async fn archive_session(archive: &Path) -> Result<SessionContext, String> {
    let ctx = SessionContext::new();
    for t in Table::ALL {
        let dir = archive.join(t.name());
        if dir.is_dir() {
            let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                .with_file_extension(".parquet")
                .with_table_partition_cols(vec![
                    ("date".into(), DataType::Utf8),
                    ("hour".into(), DataType::Utf8),
                ]);
            let url = format!(
                "{}/",
                dir.canonicalize().map_err(|e| e.to_string())?.display()
            );
            ctx.register_listing_table(t.name(), url, options, Some(t.schema()), None)
                .await
                .map_err(|e| format!("{}: {e}", dir.display()))?;
        } else {
            let empty = MemTable::try_new(t.schema(), vec![vec![]]).map_err(|e| e.to_string())?;
            ctx.register_table(t.name(), Arc::new(empty))
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(ctx)
}

/// Runs one read-only statement over the archive.
pub async fn archive(archive: &Path, sql: &str, limits: Limits) -> Result<Answer, String> {
    let run = async {
        let ctx = archive_session(archive).await?;
        let read_only = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let df = ctx
            .sql_with_options(sql, read_only)
            .await
            .map_err(|e| e.to_string())?;
        let mut stream = df.execute_stream().await.map_err(|e| e.to_string())?;
        let mut batches = Vec::new();
        let mut rows = 0;
        let mut truncated = false;
        while let Some(b) = stream.next().await {
            let b = b.map_err(|e| e.to_string())?;
            if rows + b.num_rows() > limits.max_rows {
                batches.push(b.slice(0, limits.max_rows - rows));
                truncated = true;
                break;
            }
            rows += b.num_rows();
            batches.push(b);
        }
        Ok(Answer { batches, truncated })
    };
    tokio::time::timeout(limits.timeout, run)
        .await
        .map_err(|_| stopped(limits))?
}

/// The error of a query stopped by its time limit.
fn stopped(limits: Limits) -> String {
    format!(
        "stopped after {}",
        humantime::format_duration(limits.timeout)
    )
}

/// Prints batches.
pub fn write(batches: &[RecordBatch], output: Output, out: &mut dyn Write) -> Result<(), String> {
    let err = |e: arrow::error::ArrowError| e.to_string();
    match output {
        Output::Table => {
            let table = arrow::util::pretty::pretty_format_batches(batches).map_err(err)?;
            writeln!(out, "{table}").map_err(|e| e.to_string())
        }
        Output::Csv => {
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(out);
            for b in batches {
                w.write(b).map_err(err)?;
            }
            Ok(())
        }
        Output::Json => {
            let mut w = arrow::json::LineDelimitedWriter::new(out);
            for b in batches {
                w.write(b).map_err(err)?;
            }
            w.finish().map_err(err)
        }
    }
}

/// Runs one statement on ClickHouse as a read-only user would (`readonly=1`), with the same
/// limits, and returns the server's text in the requested form.
pub async fn clickhouse(
    client: clickhouse::Client,
    database: &str,
    sql: &str,
    output: Output,
    limits: Limits,
) -> Result<String, String> {
    let format = match output {
        Output::Table => "PrettyCompactMonoBlock",
        Output::Csv => "CSVWithNames",
        Output::Json => "JSONEachRow",
    };
    let client = client
        .with_database(database)
        .with_setting("readonly", "1")
        .with_setting("max_result_rows", limits.max_rows.to_string())
        .with_setting("result_overflow_mode", "break")
        .with_setting(
            "max_execution_time",
            limits.timeout.as_secs().max(1).to_string(),
        );
    let run = async {
        let mut cursor = client
            .query_raw(sql)
            .fetch_bytes(format)
            .map_err(|e| e.to_string())?;
        let bytes = cursor.collect().await.map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    tokio::time::timeout(limits.timeout + Duration::from_secs(5), run)
        .await
        .map_err(|_| stopped(limits))?
}
