//! The outage spool: batches a database could not take, kept on local disk in arrival order
//! until it can.
//!
//! * One file per spooled chunk, `<sequence>-<table>.arrows`: a header line, then the batches as
//!   an Arrow IPC stream (LZ4-compressed buffers). The header holds the table, the row count, when the chunk was spooled
//!   and a CRC-32 of the stream, so a torn or corrupted file is recognised and set aside rather
//!   than replayed.
//! * A file is written as `.….tmp`, `fsync`ed and renamed, then the folder is `fsync`ed: after a
//!   crash a chunk is either whole in the spool or absent (and then still in the Parquet
//!   archive, which is written first). Leftover `.tmp` files are removed at open.
//! * Arrow, not the database's wire format, so a chunk spooled while the server was down (its
//!   version unknown) is encoded for whatever server takes it later.
//! * Bounded by bytes: [`Spool::push`] refuses a chunk that would pass the bound.
//! * Files the database rejects, and files that fail their checksum, move to `dead/` with a
//!   `.reason` file beside them: they are kept for an operator, never retried.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use canh_schema::Table;

const MAGIC: &str = "CANH-SPOOL 1";

/// One spooled chunk.
#[derive(Debug, Clone)]
pub struct Entry {
    pub seq: u64,
    pub table: Table,
    pub rows: u64,
    /// When it was spooled (ns since the epoch).
    pub spooled_ns: i64,
    pub bytes: u64,
    path: PathBuf,
}

/// The spool folder and what it holds, oldest first.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    entries: VecDeque<Entry>,
    bytes: u64,
    next_seq: u64,
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

impl Spool {
    /// Opens (creating) a spool folder. Files that cannot be read as spool files are moved to
    /// `dead/`; each such problem is returned to be logged.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<(Spool, Vec<String>), String> {
        std::fs::create_dir_all(dir.join("dead")).map_err(io_at(dir))?;
        let mut problems = Vec::new();
        let mut entries = Vec::new();
        for item in std::fs::read_dir(dir).map_err(io_at(dir))? {
            let item = item.map_err(io_at(dir))?;
            let path = item.path();
            let name = item.file_name().to_string_lossy().into_owned();
            if !path.is_file() {
                continue;
            }
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            match read_header(&path) {
                Ok(entry) => entries.push(entry),
                Err(reason) => {
                    problems.push(format!("{}: {reason}; moved to dead/", path.display()));
                    move_dead(dir, &path, &reason);
                }
            }
        }
        entries.sort_by_key(|e| e.seq);
        let bytes = entries.iter().map(|e| e.bytes).sum();
        let next_seq = entries.last().map_or(1, |e| e.seq + 1);
        Ok((
            Spool {
                dir: dir.to_owned(),
                max_bytes,
                entries: entries.into(),
                bytes,
                next_seq,
            },
            problems,
        ))
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The oldest chunk.
    pub fn front(&self) -> Option<&Entry> {
        self.entries.front()
    }

    /// Spools batches of one table. `Ok(false)`: the spool is full and nothing was written.
    pub fn push(&mut self, table: Table, batches: &[RecordBatch]) -> Result<bool, String> {
        let Some(first) = batches.first() else {
            return Ok(true);
        };
        let mut stream = Vec::new();
        {
            // LZ4 frames: a minute's outage at 150k rows/s is ~1 GB instead of ~10.
            let options = arrow::ipc::writer::IpcWriteOptions::default()
                .try_with_compression(Some(arrow::ipc::CompressionType::LZ4_FRAME))
                .map_err(|e| e.to_string())?;
            let mut w =
                StreamWriter::try_new_with_options(&mut stream, first.schema_ref(), options)
                    .map_err(|e| e.to_string())?;
            for b in batches {
                w.write(b).map_err(|e| e.to_string())?;
            }
            w.finish().map_err(|e| e.to_string())?;
        }
        let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
        let spooled_ns = canh_schema::raw::now_ns();
        let header = format!(
            "{MAGIC}\n{{\"table\":\"{}\",\"rows\":{rows},\"spooled_ns\":{spooled_ns},\"crc32\":{},\"length\":{}}}\n",
            table.name(),
            crc32fast::hash(&stream),
            stream.len()
        );
        let size = (header.len() + stream.len()) as u64;
        if self.bytes + size > self.max_bytes {
            return Ok(false);
        }
        let seq = self.next_seq;
        let name = format!("{seq:020}-{}.arrows", table.name());
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(header.as_bytes())?;
            f.write_all(&stream)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            File::open(&self.dir)?.sync_all()
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_file(&tmp);
            return Err(format!("{}: {e}", path.display()));
        }
        self.next_seq += 1;
        self.bytes += size;
        self.entries.push_back(Entry {
            seq,
            table,
            rows,
            spooled_ns,
            bytes: size,
            path,
        });
        Ok(true)
    }

    /// Writes batches straight to `dead/` (a database rejected them as invalid).
    pub fn push_dead(
        &mut self,
        table: Table,
        batches: &[RecordBatch],
        reason: &str,
    ) -> Result<(), String> {
        if self.push(table, batches)? {
            // The newest chunk: moved out of the queue, as `dead` does for the oldest.
            if let Some(e) = self.entries.pop_back() {
                self.bytes -= e.bytes;
                move_dead(&self.dir, &e.path, reason);
            }
            Ok(())
        } else {
            Err("the spool is full".into())
        }
    }

    /// The batches of the oldest chunk; `Err` when the file is damaged (see [`Spool::dead`]).
    pub fn read_front(&self) -> Option<Result<Vec<RecordBatch>, String>> {
        let e = self.entries.front()?;
        Some(read_batches(&e.path))
    }

    /// Removes the oldest chunk (delivered).
    pub fn pop(&mut self) -> Result<(), String> {
        if let Some(e) = self.entries.pop_front() {
            self.bytes -= e.bytes;
            std::fs::remove_file(&e.path).map_err(io_at(&e.path))?;
        }
        Ok(())
    }

    /// Moves the oldest chunk to `dead/` with the reason beside it.
    pub fn dead(&mut self, reason: &str) {
        if let Some(e) = self.entries.pop_front() {
            self.bytes -= e.bytes;
            move_dead(&self.dir, &e.path, reason);
        }
    }
}

fn move_dead(dir: &Path, path: &Path, reason: &str) {
    let Some(name) = path.file_name() else { return };
    let dead = dir.join("dead").join(name);
    if std::fs::rename(path, &dead).is_err() {
        let _ = std::fs::remove_file(path);
    }
    let mut why = dead.into_os_string();
    why.push(".reason");
    let _ = std::fs::write(why, format!("{reason}\n"));
}

#[derive(serde::Deserialize)]
struct Header {
    table: String,
    rows: u64,
    spooled_ns: i64,
    crc32: u32,
    length: u64,
}

/// The header's two lines, checked; the length of the header in bytes.
fn parse_header(magic: &[u8], line: &[u8]) -> Result<(Header, Table, u64), String> {
    if magic != MAGIC.as_bytes() {
        return Err("not a spool file (bad first line)".into());
    }
    let h: Header = serde_json::from_slice(line).map_err(|e| format!("bad header: {e}"))?;
    let table = Table::ALL
        .into_iter()
        .find(|t| t.name() == h.table)
        .ok_or_else(|| format!("unknown table {:?}", h.table))?;
    Ok((h, table, (magic.len() + line.len() + 2) as u64))
}

/// The entry a file describes (its header only is read).
fn read_header(path: &Path) -> Result<Entry, String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let seq: u64 = name
        .split('-')
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or("not a spool file name")?;
    let f = File::open(path).map_err(|e| e.to_string())?;
    let bytes = f.metadata().map_err(|e| e.to_string())?.len();
    let mut r = BufReader::new(f).take(64 << 10);
    let (mut magic, mut line) = (Vec::new(), Vec::new());
    r.read_until(b'\n', &mut magic).map_err(|e| e.to_string())?;
    r.read_until(b'\n', &mut line).map_err(|e| e.to_string())?;
    let (h, table, header_len) = parse_header(magic.trim_ascii_end(), line.trim_ascii_end())?;
    if bytes != header_len + h.length {
        return Err(format!(
            "truncated: {} bytes of stream where the header says {}",
            bytes.saturating_sub(header_len),
            h.length
        ));
    }
    Ok(Entry {
        seq,
        table,
        rows: h.rows,
        spooled_ns: h.spooled_ns,
        bytes,
        path: path.to_owned(),
    })
}

/// The batches of a file, after checking its length and checksum.
fn read_batches(path: &Path) -> Result<Vec<RecordBatch>, String> {
    let data = std::fs::read(path).map_err(|e| e.to_string())?;
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let (magic, line) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let (h, _, header_len) = parse_header(magic, line)?;
    let stream = data.get(header_len as usize..).unwrap_or_default();
    if stream.len() as u64 != h.length {
        return Err("truncated".into());
    }
    if crc32fast::hash(stream) != h.crc32 {
        return Err("checksum mismatch".into());
    }
    let reader = StreamReader::try_new(stream, None).map_err(|e| e.to_string())?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use canh_schema::fields::events::Col;
    use canh_schema::TableBuilder;

    fn batch(n: usize) -> RecordBatch {
        let mut b = TableBuilder::new(Table::Events, n);
        for i in 0..n {
            b.set_ts(Col::Timestamp, i as i64);
            b.set_ts(Col::EventCreated, i as i64);
            b.set_str(Col::EventOriginal, &format!("line {i}"));
            b.set_str(Col::ParseStatus, "ok");
            b.end_row();
        }
        b.finish()
            .unwrap_or_default()
            .map(|b| b.records)
            .unwrap_or_else(|| RecordBatch::new_empty(Table::Events.schema()))
    }

    #[test]
    fn chunks_come_back_in_order_across_a_reopen_and_damage_goes_to_dead() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut s, problems) = Spool::open(dir.path(), 1 << 30).expect("open");
        assert!(problems.is_empty());
        for n in [3, 5, 7] {
            assert_eq!(s.push(Table::Events, &[batch(n)]), Ok(true));
        }
        let bytes = s.bytes();
        drop(s);
        // A leftover temporary file and a damaged chunk, as a crash or a bad disk leaves them.
        std::fs::write(
            dir.path().join(".00000000000000000009-events.arrows.tmp"),
            "x",
        )
        .expect("write");
        let third = dir.path().join("00000000000000000003-events.arrows");
        let mut data = std::fs::read(&third).expect("read");
        let last = data.len() - 10;
        data[last] ^= 0xff;
        std::fs::write(&third, data).expect("write");

        let (mut s, problems) = Spool::open(dir.path(), 1 << 30).expect("reopen");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!((s.len(), s.bytes()), (3, bytes));
        for want in [3, 5] {
            let got = s.read_front().expect("entry").expect("readable");
            assert_eq!(got.iter().map(|b| b.num_rows()).sum::<usize>(), want);
            s.pop().expect("pop");
        }
        assert_eq!(
            s.read_front().expect("entry"),
            Err("checksum mismatch".into())
        );
        s.dead("checksum mismatch");
        assert!(s.is_empty());
        assert!(dir
            .path()
            .join("dead/00000000000000000003-events.arrows.reason")
            .exists());
        // Numbering goes on after the highest sequence seen.
        assert_eq!(s.push(Table::Events, &[batch(1)]), Ok(true));
        assert_eq!(s.front().map(|e| e.seq), Some(4));
    }

    #[test]
    fn a_full_spool_refuses_chunks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut s, _) = Spool::open(dir.path(), 1 << 30).expect("open");
        assert_eq!(s.push(Table::Events, &[batch(2)]), Ok(true));
        s.max_bytes = s.bytes() * 3 / 2;
        assert_eq!(s.push(Table::Events, &[batch(2)]), Ok(false));
        assert_eq!(s.len(), 1);
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("list").count(),
            2,
            "one chunk and dead/"
        );
    }
}
