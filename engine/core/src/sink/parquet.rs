//! The Parquet archive: `<data_dir>/archive/<table>/date=YYYY-MM-DD/hour=HH/part-….parquet`.
//!
//! * Partitions follow the **receive** time of the batch, not the event time: receive time only
//!   moves forward, so at most one file per table is open, whereas a device with a wrong clock
//!   would otherwise scatter writes over hundreds of partitions. `@timestamp` is a column for
//!   queries either way.
//! * A file is written as `.part-….parquet.tmp` (hidden from Parquet readers, which skip names
//!   starting with `.`) and renamed when complete, after an `fsync`, so a reader never sees a
//!   half-written file and a crash leaves no corrupt one. Leftover `.tmp` files from a crash are
//!   removed at start.
//! * Files are completed at a size, at an age (so recent data becomes readable), at an hour
//!   boundary, and at shutdown.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use canh_metrics::Metrics;
use canh_schema::{Batch, FieldType, Table};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use tracing::{info, warn};

use crate::config::ArchiveConfig;

/// Why the archive could not write.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A file system operation failed. (The cause is part of the message, not a `source`, so
    /// logs and error chains show it once.)
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The Parquet encoder failed.
    #[error("{0}")]
    Parquet(parquet::errors::ParquetError),
}

impl From<parquet::errors::ParquetError> for ArchiveError {
    fn from(e: parquet::errors::ParquetError) -> Self {
        ArchiveError::Parquet(e)
    }
}

impl ArchiveError {
    /// Short stable code for metrics.
    pub fn code(&self) -> &'static str {
        match self {
            ArchiveError::Io { .. } => "io",
            ArchiveError::Parquet(_) => "parquet",
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ArchiveError + '_ {
    move |error| ArchiveError::Io {
        path: path.to_owned(),
        error,
    }
}

/// `(date, hour)` of a UTC nanosecond time.
fn partition_of(ns: i64) -> (String, u32) {
    let secs = ns.div_euclid(1_000_000_000);
    let (y, m, d) = canh_parsers::time::civil_from_days(secs.div_euclid(86_400));
    (
        format!("{y:04}-{m:02}-{d:02}"),
        (secs.rem_euclid(86_400) / 3600) as u32,
    )
}

struct OpenFile {
    writer: ArrowWriter<BufWriter<File>>,
    tmp: PathBuf,
    path: PathBuf,
    partition: (String, u32),
    opened: Instant,
}

/// Writes batches of every table into the archive.
pub struct ParquetArchive {
    root: PathBuf,
    config: ArchiveConfig,
    /// Writer settings per table (indexed by `Table as usize`).
    props: [WriterProperties; 3],
    open: Vec<(Table, OpenFile)>,
    /// Which of the archive's writers this is (in file names, so writers never collide).
    writer: usize,
    seq: u64,
    metrics: Metrics,
}

impl ParquetArchive {
    /// Opens (creates) the archive under `root` and removes temporary files a crash left.
    pub fn open(
        root: &Path,
        config: ArchiveConfig,
        metrics: Metrics,
    ) -> Result<ParquetArchive, ArchiveError> {
        std::fs::create_dir_all(root).map_err(io_err(root))?;
        let removed = remove_stale_temporaries(root);
        if removed > 0 {
            warn!(
                files = removed,
                "removed unfinished archive files left by an earlier crash"
            );
        }
        let [events, flows, alerts] = Table::ALL.map(|table| writer_properties(table, &config));
        let props = [events?, flows?, alerts?];
        Ok(ParquetArchive {
            root: root.to_owned(),
            config,
            props,
            open: Vec::new(),
            writer: 0,
            seq: 0,
            metrics,
        })
    }

    /// Opens the archive for `config.writers` writers, one per thread, each writing its own
    /// files (temporaries a crash left are removed once, before any writer starts).
    pub fn open_writers(
        root: &Path,
        config: ArchiveConfig,
        metrics: Metrics,
    ) -> Result<Vec<ParquetArchive>, ArchiveError> {
        let n = config.writers.max(1);
        let first = ParquetArchive::open(root, config, metrics)?;
        let others: Vec<ParquetArchive> = (1..n)
            .map(|writer| ParquetArchive {
                root: first.root.clone(),
                config: first.config.clone(),
                props: first.props.clone(),
                open: Vec::new(),
                writer,
                seq: 0,
                metrics: first.metrics.clone(),
            })
            .collect();
        Ok(std::iter::once(first).chain(others).collect())
    }

    /// Appends a batch to its table's open file (starting one when needed).
    pub fn write(&mut self, batch: &Batch) -> Result<(), ArchiveError> {
        let partition = partition_of(batch.received_min_ns);
        let table = batch.table;
        if let Some(i) = self
            .open
            .iter()
            .position(|(t, f)| *t == table && f.partition != partition)
        {
            let (t, f) = self.open.swap_remove(i);
            self.complete(t, f)?;
        }
        let idx = match self.open.iter().position(|(t, _)| *t == table) {
            Some(i) => i,
            None => {
                let f = self.start_file(table, partition)?;
                self.open.push((table, f));
                self.open.len() - 1
            }
        };
        let file = &mut self.open[idx].1;
        file.writer.write(&batch.records)?;
        self.metrics
            .batch_written("parquet", table.name(), batch.rows() as u64);
        if file.writer.bytes_written() + file.writer.in_progress_size() >= self.config.max_file_size
        {
            let (t, f) = self.open.swap_remove(idx);
            self.complete(t, f)?;
        }
        Ok(())
    }

    /// Completes files that have been open longer than the configured age.
    pub fn tick(&mut self) -> Result<(), ArchiveError> {
        let max_age = self.config.max_file_age;
        while let Some(i) = self
            .open
            .iter()
            .position(|(_, f)| f.opened.elapsed() >= max_age)
        {
            let (t, f) = self.open.swap_remove(i);
            self.complete(t, f)?;
        }
        Ok(())
    }

    /// Completes every open file.
    pub fn close(&mut self) -> Result<(), ArchiveError> {
        let mut first_err = None;
        for (t, f) in std::mem::take(&mut self.open) {
            if let Err(e) = self.complete(t, f) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn start_file(
        &mut self,
        table: Table,
        partition: (String, u32),
    ) -> Result<OpenFile, ArchiveError> {
        let dir = self
            .root
            .join(table.name())
            .join(format!("date={}", partition.0))
            .join(format!("hour={:02}", partition.1));
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        self.seq += 1;
        let now = canh_schema::raw::now_ns();
        let (date, _) = partition_of(now);
        let secs = now.div_euclid(1_000_000_000).rem_euclid(86_400);
        let name = format!(
            "part-{}T{:02}{:02}{:02}.{:03}Z-{}-w{}-{:06}.parquet",
            date.replace('-', ""),
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            now.rem_euclid(1_000_000_000) / 1_000_000,
            std::process::id(),
            self.writer,
            self.seq
        );
        let path = dir.join(&name);
        let tmp = dir.join(format!(".{name}.tmp"));
        let file = File::create(&tmp).map_err(io_err(&tmp))?;
        let writer = ArrowWriter::try_new(
            BufWriter::with_capacity(1 << 20, file),
            table.schema(),
            Some(self.props[table as usize].clone()),
        )?;
        Ok(OpenFile {
            writer,
            tmp,
            path,
            partition,
            opened: Instant::now(),
        })
    }

    fn complete(&mut self, table: Table, f: OpenFile) -> Result<(), ArchiveError> {
        let buffered = f.writer.into_inner()?;
        let file = buffered.into_inner().map_err(|e| ArchiveError::Io {
            path: f.tmp.clone(),
            error: e.into_error(),
        })?;
        file.sync_all().map_err(io_err(&f.tmp))?;
        let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
        drop(file);
        std::fs::rename(&f.tmp, &f.path).map_err(io_err(&f.path))?;
        if let Some(dir) = f.path.parent() {
            // Make the rename itself durable.
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        self.metrics.file_written(table.name(), bytes);
        info!(table = table.name(), path = %f.path.display(), bytes, "archive file completed");
        Ok(())
    }
}

/// The Parquet writer settings of a table's archive files.
pub fn writer_properties(
    table: Table,
    config: &ArchiveConfig,
) -> Result<WriterProperties, ArchiveError> {
    let level = ZstdLevel::try_new(config.zstd_level)?;
    // Min/max statistics only on times and numbers. Rows arrive in receive order, so the
    // min/max of a text column over a row group or page (addresses, names, raw lines) spans
    // nearly every value and prunes nothing, while keeping it compares every value (~8% of
    // the writer's instructions, benches/RESULTS.md). Time ranges, which every hunt and
    // most queries filter on, keep their page statistics.
    let base = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_max_row_group_row_count(Some(config.row_group_rows.max(1)))
        .set_statistics_enabled(EnabledStatistics::None);
    Ok(table
        .fields()
        .iter()
        .fold(base, |mut p, f| {
            let column = f.column();
            if f.ty.is_ordered() {
                p = p.set_column_statistics_enabled(
                    ColumnPath::from(column.as_str()),
                    EnabledStatistics::Page,
                );
            }
            // Columns whose values nearly all differ skip the dictionary: it would only hash
            // and compare every value (measured: ~8% of the archive thread on syslog, ~10% on
            // flows) and then be dropped when it overflows. So do the values of the maps,
            // whose keys repeat but whose values mostly do not.
            if f.distinct && f.ty.is_ordered() {
                // Times and counters that nearly all differ: delta-encoded and bit-packed, so
                // zstd gets half the bytes (or less) to compress and the file is smaller.
                let path = ColumnPath::from(column);
                p = p
                    .set_column_dictionary_enabled(path.clone(), false)
                    .set_column_encoding(path, Encoding::DELTA_BINARY_PACKED);
            } else if f.distinct || f.per_sender {
                // A sender's own values (its address, agency, NetFlow version) repeat in runs
                // that zstd folds away; a dictionary would hash and compare every one (8-9% of
                // the flows writer's instructions, benches/RESULTS.md) for no smaller a file.
                p = p.set_column_dictionary_enabled(ColumnPath::from(column), false);
            } else if f.ty == FieldType::StrMap {
                p = p
                    .set_column_dictionary_enabled(ColumnPath::new(map_value_path(&column)), false);
            }
            p
        })
        .build())
}

/// The Parquet path of the values of a map column (`vendor_fields.entries.values`).
fn map_value_path(column: &str) -> Vec<String> {
    let (entries, _, values) = canh_schema::fields::MAP_ENTRY_NAMES;
    vec![column.to_owned(), entries.to_owned(), values.to_owned()]
}

/// Removes `.part-*.tmp` files below `root`; returns how many.
fn remove_stale_temporaries(root: &Path) -> usize {
    let mut removed = 0;
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                stack.push(path);
            } else if name.starts_with(".part-")
                && name.ends_with(".tmp")
                && std::fs::remove_file(&path).is_ok()
            {
                removed += 1;
            }
        }
    }
    removed
}

/// Runs the archive over a queue of batches until every sender is gone, then completes files.
pub fn run(
    mut archive: ParquetArchive,
    input: crossbeam_channel::Receiver<Batch>,
    then: Option<crossbeam_channel::Sender<Batch>>,
    metrics: Metrics,
) {
    let tick = Duration::from_millis(500);
    loop {
        match input.recv_timeout(tick) {
            Ok(batch) => {
                if let Err(e) = archive.write(&batch) {
                    tracing::error!(error = %e, rows = batch.rows(), "archive write failed; batch lost");
                    metrics.error("archive", e.code());
                }
                // The next sink (ClickHouse) waits behind the archive: a full queue there
                // holds the pipeline back like a slow disk would.
                if let Some(next) = &then {
                    let _ = next.send(batch);
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        }
        if let Err(e) = archive.tick() {
            tracing::error!(error = %e, "archive rotation failed");
            metrics.error("archive", e.code());
        }
    }
    if let Err(e) = archive.close() {
        tracing::error!(error = %e, "archive close failed");
        metrics.error("archive", e.code());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use canh_parsers::{append_event, Format, Meta};
    use canh_schema::TableBuilder;

    /// A batch of the lines `line(i)` for `i` in `0..rows`, received at `received_ns`.
    fn batch_of(rows: usize, received_ns: i64, line: impl Fn(usize) -> String) -> Batch {
        let mut b = TableBuilder::new(Table::Events, rows);
        let meta = Meta {
            received_ns,
            listener: "t",
            input_type: "tcp",
            peer_ip: "127.0.0.1",
            peer_addr: "127.0.0.1:1",
            tz_offset_secs: 0,
            organization: None,
            device: None,
        };
        for i in 0..rows {
            append_event(&mut b, line(i).as_bytes(), Format::Auto, &meta);
        }
        b.finish().ok().flatten().unwrap_or_else(|| unreachable!())
    }

    fn batch(rows: usize, received_ns: i64) -> Batch {
        batch_of(rows, received_ns, |i| {
            format!("<13>Nov 23 10:00:00 host app[{i}]: hello")
        })
    }

    fn files(root: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_owned()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    stack.push(e.path());
                } else {
                    out.push(e.path());
                }
            }
        }
        out.sort();
        out
    }

    fn rows_in(path: &Path) -> usize {
        let f = File::open(path).expect("open");
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
            .expect("parquet")
            .build()
            .expect("reader")
            .map(|b| b.map(|b| b.num_rows()).unwrap_or(0))
            .sum()
    }

    #[test]
    fn files_appear_only_when_complete_and_partition_by_hour() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut a = ParquetArchive::open(dir.path(), ArchiveConfig::default(), Metrics::new())
            .expect("open");
        let t0 = 1_795_428_000_000_000_000; // 2026-11-23T10:00:00Z
        a.write(&batch(10, t0)).expect("write");
        let visible: Vec<_> = files(dir.path())
            .into_iter()
            .filter(|p| {
                !p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        assert!(visible.is_empty(), "open file must be hidden: {visible:?}");
        a.write(&batch(5, t0 + 3600 * 1_000_000_000))
            .expect("next hour");
        a.close().expect("close");
        let all = files(dir.path());
        assert_eq!(all.len(), 2, "{all:?}");
        assert!(
            all[0]
                .to_string_lossy()
                .contains("events/date=2026-11-23/hour=10/part-"),
            "{all:?}"
        );
        assert!(all[1].to_string_lossy().contains("hour=11"));
        let rows: usize = all.iter().map(|p| rows_in(p)).sum();
        assert_eq!(rows, 15);
    }

    #[test]
    fn statistics_on_times_and_numbers_no_dictionary_for_map_values() {
        let fortigate = |i| {
            format!(
                "<189>date=2026-11-23 time=10:00:0{i} devname=\"FG\" logid=\"0000000013\" \
                 type=\"traffic\" subtype=\"forward\" srcip=10.0.0.{i} srcport=5123{i} \
                 dstip=192.0.2.1 dstport=443 proto=6 action=\"close\" sessionid={i}"
            )
        };
        let chunks = written_chunks(batch_of(4, 1_795_428_000_000_000_000, fortigate));
        let chunk = |path: &str| {
            chunks
                .iter()
                .find(|c| c.column_path().string() == path)
                .unwrap_or_else(|| panic!("no column {path}"))
        };
        let stats = |path: &str| chunk(path).statistics().is_some();
        let dictionary = |path: &str| chunk(path).dictionary_page_offset().is_some();
        // Times and numbers keep min/max; text does not.
        assert!(stats("timestamp"), "timestamp");
        assert!(stats("destination_port"), "destination_port");
        assert!(!stats("event_original"), "event_original");
        assert!(!stats("source_ip"), "source_ip");
        assert!(!stats("vendor_fields.entries.keys"), "map keys");
        // Map keys repeat and keep their dictionary; map values, which mostly differ, do not.
        assert!(dictionary("vendor_fields.entries.keys"), "map keys");
        assert!(!dictionary("vendor_fields.entries.values"), "map values");
        assert!(dictionary("source_ip"), "source_ip");
    }

    #[test]
    fn writers_side_by_side_write_their_own_files() {
        let dir = tempfile::tempdir().expect("tmp");
        let config = ArchiveConfig {
            writers: 3,
            ..ArchiveConfig::default()
        };
        let writers =
            ParquetArchive::open_writers(dir.path(), config, Metrics::new()).expect("open");
        assert_eq!(writers.len(), 3);
        let t0 = 1_795_428_000_000_000_000;
        // The same partition, at the same time, from every writer.
        std::thread::scope(|s| {
            for (i, mut w) in writers.into_iter().enumerate() {
                s.spawn(move || {
                    for _ in 0..=i {
                        w.write(&batch(7, t0)).expect("write");
                    }
                    w.close().expect("close");
                });
            }
        });
        let all = files(dir.path());
        assert_eq!(all.len(), 3, "one file per writer: {all:?}");
        for (i, f) in all.iter().enumerate() {
            assert!(
                f.to_string_lossy()
                    .contains("events/date=2026-11-23/hour=10/part-"),
                "{f:?}"
            );
            assert_eq!(
                all.iter()
                    .filter(|g| g.to_string_lossy().contains(&format!("-w{i}-")))
                    .count(),
                1,
                "{all:?}"
            );
        }
        let mut rows: Vec<usize> = all.iter().map(|p| rows_in(p)).collect();
        rows.sort_unstable();
        assert_eq!(rows, [7, 14, 21]);
    }

    /// The column chunks of the first row group of the file the archive writes for `batch`.
    fn written_chunks(batch: Batch) -> Vec<parquet::file::metadata::ColumnChunkMetaData> {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let dir = tempfile::tempdir().expect("tmp");
        let mut a = ParquetArchive::open(dir.path(), ArchiveConfig::default(), Metrics::new())
            .expect("open");
        a.write(&batch).expect("write");
        a.close().expect("close");
        let file = files(dir.path()).pop().expect("a file");
        let reader = SerializedFileReader::new(File::open(file).expect("open")).expect("parquet");
        reader.metadata().row_group(0).columns().to_vec()
    }

    #[test]
    fn distinct_columns_skip_the_dictionary() {
        use parquet::basic::Encoding;
        let chunks = written_chunks(batch(10, 1_795_428_000_000_000_000));
        let dictionary = |name: &str| {
            chunks
                .iter()
                .find(|c| c.column_path().string() == name)
                .map(|c| c.encodings().any(|e| e == Encoding::RLE_DICTIONARY))
        };
        assert_eq!(dictionary("event_original"), Some(false));
        assert_eq!(dictionary("event_created"), Some(false));
        assert_eq!(dictionary("host_hostname"), Some(true));
        // A sender's own values: no dictionary either.
        for name in [
            "canh_listener",
            "input_type",
            "observer_ip",
            "log_source_address",
        ] {
            assert_eq!(dictionary(name), Some(false), "{name}");
        }
        // A distinct time is delta-encoded; a distinct text plain. Both then zstd.
        let chunk = |name: &str| {
            chunks
                .iter()
                .find(|c| c.column_path().string() == name)
                .unwrap_or_else(|| panic!("no column {name}"))
        };
        let created = chunk("event_created");
        assert!(created
            .encodings()
            .any(|e| e == Encoding::DELTA_BINARY_PACKED));
        let original = chunk("event_original");
        assert!(!original
            .encodings()
            .any(|e| e == Encoding::DELTA_BINARY_PACKED));
        for c in [created, original] {
            assert!(matches!(
                c.compression(),
                parquet::basic::Compression::ZSTD(_)
            ));
        }
    }

    #[test]
    fn stale_temporaries_are_removed_on_open() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("events/date=2026-11-23/hour=10");
        std::fs::create_dir_all(&p).expect("mkdir");
        std::fs::write(p.join(".part-x.parquet.tmp"), b"half").expect("write");
        let _a = ParquetArchive::open(dir.path(), ArchiveConfig::default(), Metrics::new())
            .expect("open");
        assert!(files(dir.path()).is_empty());
    }
}
