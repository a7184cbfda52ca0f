//! The outbox: a durable, append-only log of alerts on local disk, read by one delivery
//! thread per destination, each with its own acknowledged cursor.
//!
//! ```text
//! <dir>/segments/00000000000000000001.log   records 1 … , then the next segment by its first seq
//! <dir>/cursors/<destination>               the next seq that destination has not acknowledged
//! ```
//!
//! * A record is `len: u32 LE | crc32: u32 LE | seq: u64 LE | appended_ns: i64 LE | payload`;
//!   `len` counts what follows the CRC, and the CRC covers the same bytes. Sequence numbers
//!   start at 1 and have no gaps.
//! * **fsync policy.** With [`Fsync::Batch`] (the default) [`Outbox::append`] returns only once
//!   its records and the segment are on disk: the alerts thread appends each batch of new
//!   alerts in one call, so a crash after `append` returns loses none of them. [`Fsync::Interval`]
//!   syncs at most once per interval (a crash can lose that much), [`Fsync::Off`] leaves it to
//!   the kernel. Readers only see records whose `append` has returned.
//! * At open, the newest segment is scanned and cut after its last whole record: a torn
//!   write at a crash leaves no garbage behind. A record whose CRC does not match is counted
//!   and skipped with the rest of its segment.
//! * Cursors are written by write-to-temporary and rename, so a crash leaves the old or the new
//!   value. A cursor that lags behind only means redelivery: destinations are idempotent by the
//!   alert id.
//! * Bounded: segments every destination has acknowledged are kept for replay until they are
//!   older than the retention or the space is needed; when undelivered records alone fill
//!   `max_size`, new records are refused (counted as dropped: they are still in the archive's
//!   `alerts` table) and the `full` alarm is raised.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use canh_metrics::Metrics;
use tracing::{error, warn};

const HEADER: usize = 8;
const FIXED: usize = 16;
/// No record is larger than this (an alert carries at most a bounded sample of events).
pub const MAX_RECORD: usize = 16 << 20;

/// When appended records are forced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// Before every `append` returns (default).
    Batch,
    /// At most once per interval.
    Interval(Duration),
    /// Never forced (the kernel writes back on its own).
    Off,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OutboxConfig {
    pub dir: PathBuf,
    /// All segments together stay below this many bytes.
    pub max_size: u64,
    /// A segment is closed and a new one started past this size.
    pub segment_size: u64,
    pub fsync: Fsync,
    /// Delivered segments are kept this long for `canh forward replay`.
    pub retention: Duration,
}

impl OutboxConfig {
    pub fn new(dir: PathBuf) -> OutboxConfig {
        OutboxConfig {
            dir,
            max_size: 1 << 30,
            segment_size: 64 << 20,
            fsync: Fsync::Batch,
            retention: Duration::from_secs(7 * 86_400),
        }
    }
}

/// One record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub appended_ns: i64,
    pub payload: Vec<u8>,
}

/// What one `append` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Appended {
    /// The seq of the first record written (when any was).
    pub first: u64,
    pub written: usize,
    /// Refused because the outbox is full.
    pub dropped: usize,
}

struct Writer {
    file: Option<File>,
    /// First seq of every segment, with its size in bytes.
    segments: BTreeMap<u64, u64>,
    /// The seq the next record gets.
    next: u64,
    last_sync: Instant,
    full: bool,
    warned_fill: bool,
}

/// The outbox of one Canh instance.
pub struct Outbox {
    config: OutboxConfig,
    writer: Mutex<Writer>,
    /// Records below this seq are complete (readers stop there); guarded for the condvar.
    committed: Mutex<u64>,
    grown: Condvar,
    /// Acknowledged cursor of every destination that runs.
    cursors: Mutex<HashMap<String, u64>>,
    metrics: Metrics,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("dir", &self.config.dir)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn segment_name(start: u64) -> String {
    format!("{start:020}.log")
}

/// Now, in ns since the epoch.
pub(crate) fn now_ns() -> i64 {
    i64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap_or(i64::MAX)
}

/// Segments in a folder, by first seq.
pub fn list_segments(dir: &Path) -> io::Result<BTreeMap<u64, u64>> {
    let mut out = BTreeMap::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for e in entries {
        let e = e?;
        let name = e.file_name();
        let Some(start) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        out.insert(start, e.metadata()?.len());
    }
    Ok(out)
}

/// Reads one record at the reader's position: `Ok(None)` at a clean end or a torn tail,
/// `Err` with `InvalidData` for a record whose checksum does not match.
fn read_record(r: &mut impl Read) -> io::Result<Option<(Record, u64)>> {
    let mut header = [0u8; HEADER];
    match read_full(r, &mut header)? {
        0 => return Ok(None),
        n if n < HEADER => return Ok(None),
        _ => {}
    }
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if !(FIXED..=MAX_RECORD + FIXED).contains(&len) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("record length {len}"),
        ));
    }
    let mut body = vec![0u8; len];
    if read_full(r, &mut body)? < len {
        return Ok(None);
    }
    if crc32fast::hash(&body) != crc {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "checksum mismatch",
        ));
    }
    let seq = u64::from_le_bytes(body[..8].try_into().unwrap_or_default());
    let appended_ns = i64::from_le_bytes(body[8..16].try_into().unwrap_or_default());
    body.drain(..FIXED);
    Ok(Some((
        Record {
            seq,
            appended_ns,
            payload: body,
        },
        (HEADER + len) as u64,
    )))
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

impl Outbox {
    /// Opens (or creates) the outbox, cutting a torn tail off the newest segment.
    pub fn open(config: OutboxConfig, metrics: Metrics) -> io::Result<Outbox> {
        let seg_dir = config.dir.join("segments");
        fs::create_dir_all(&seg_dir)?;
        fs::create_dir_all(config.dir.join("cursors"))?;
        let mut segments = list_segments(&seg_dir)?;
        let mut next = 1;
        if let Some((&start, _)) = segments.iter().next_back() {
            let path = seg_dir.join(segment_name(start));
            let (valid, last) = scan(&path, start)?;
            let len = fs::metadata(&path)?.len();
            if valid < len {
                warn!(
                    segment = %path.display(),
                    kept = valid,
                    cut = len - valid,
                    "outbox: cutting a torn or damaged tail off the newest segment"
                );
                metrics.outbox("torn", 1);
                OpenOptions::new().write(true).open(&path)?.set_len(valid)?;
            }
            segments.insert(start, valid);
            next = last.map_or(start, |s| s + 1);
        }
        // Cursors may be ahead of the segments left (all delivered and removed).
        for (_, c) in read_cursors(&config.dir)? {
            next = next.max(c);
        }
        let outbox = Outbox {
            writer: Mutex::new(Writer {
                file: None,
                segments,
                next,
                last_sync: Instant::now(),
                full: false,
                warned_fill: false,
            }),
            committed: Mutex::new(next),
            grown: Condvar::new(),
            cursors: Mutex::new(HashMap::new()),
            config,
            metrics,
        };
        outbox.publish_state(&mut lock(&outbox.writer));
        Ok(outbox)
    }

    pub fn dir(&self) -> &Path {
        &self.config.dir
    }

    fn segment_dir(&self) -> PathBuf {
        self.config.dir.join("segments")
    }

    /// Appends records (one alert's JSON each) as one step; see the module doc for when they
    /// are durable. An I/O error leaves the outbox as it was before the call.
    pub fn append(&self, payloads: &[Vec<u8>]) -> io::Result<Appended> {
        let mut w = lock(&self.writer);
        let mut out = Appended {
            first: w.next,
            ..Appended::default()
        };
        if payloads.is_empty() {
            return Ok(out);
        }
        let appended_ns = now_ns();
        let mut buf = Vec::new();
        let mut seq = w.next;
        let used: u64 = w.segments.values().sum();
        let mut room = self.config.max_size.saturating_sub(used);
        if room < self.config.max_size / 10 {
            drop(w);
            self.collect_garbage(true);
            w = lock(&self.writer);
            room = self
                .config
                .max_size
                .saturating_sub(w.segments.values().sum());
        }
        for p in payloads {
            let len = FIXED + p.len();
            if p.len() > MAX_RECORD || (HEADER + len) as u64 > room {
                out.dropped += 1;
                continue;
            }
            let start = buf.len();
            buf.extend_from_slice(&(len as u32).to_le_bytes());
            buf.extend_from_slice(&[0; 4]);
            buf.extend_from_slice(&seq.to_le_bytes());
            buf.extend_from_slice(&appended_ns.to_le_bytes());
            buf.extend_from_slice(p);
            let crc = crc32fast::hash(&buf[start + HEADER..]);
            buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
            room -= (HEADER + len) as u64;
            seq += 1;
            out.written += 1;
        }
        if out.dropped > 0 {
            self.metrics.outbox("dropped", out.dropped as u64);
            if !w.full {
                error!(
                    dropped = out.dropped,
                    max_size = self.config.max_size,
                    "outbox full of undelivered alerts: new alerts are not forwarded \
                     (they stay in the archive's alerts table)"
                );
            }
            w.full = true;
        } else {
            w.full = false;
        }
        if out.written == 0 {
            self.publish_state(&mut w);
            return Ok(out);
        }
        self.write_segment(&mut w, &buf)?;
        let sync = match self.config.fsync {
            Fsync::Batch => true,
            Fsync::Interval(d) => w.last_sync.elapsed() >= d,
            Fsync::Off => false,
        };
        if sync {
            if let Some(f) = &w.file {
                f.sync_data()?;
            }
            w.last_sync = Instant::now();
        }
        w.next = seq;
        self.metrics.outbox("appended", out.written as u64);
        self.publish_state(&mut w);
        drop(w);
        *lock(&self.committed) = seq;
        self.grown.notify_all();
        Ok(out)
    }

    /// Writes `buf` at the end of the current segment (starting a new one when it is full); on
    /// failure the segment is cut back to where it was.
    fn write_segment(&self, w: &mut Writer, buf: &[u8]) -> io::Result<()> {
        let current = w.segments.iter().next_back().map(|(&s, &len)| (s, len));
        let (start, len) = match current {
            Some((s, len)) if len < self.config.segment_size => (s, len),
            _ => {
                let start = w.next;
                let path = self.segment_dir().join(segment_name(start));
                let f = OpenOptions::new().create(true).append(true).open(&path)?;
                sync_dir(&self.segment_dir());
                w.file = Some(f);
                w.segments.insert(start, 0);
                (start, 0)
            }
        };
        if w.file.is_none() {
            let path = self.segment_dir().join(segment_name(start));
            w.file = Some(OpenOptions::new().append(true).open(&path)?);
        }
        let Some(f) = w.file.as_mut() else {
            return Err(io::Error::other("outbox segment not open"));
        };
        if let Err(e) = f.write_all(buf) {
            let _ = f.set_len(len);
            return Err(e);
        }
        w.segments.insert(start, len + buf.len() as u64);
        Ok(())
    }

    fn publish_state(&self, w: &mut Writer) {
        let used: u64 = w.segments.values().sum();
        self.metrics.set_outbox("bytes", used);
        self.metrics.set_outbox("max_bytes", self.config.max_size);
        self.metrics.set_outbox("segments", w.segments.len() as u64);
        self.metrics
            .set_outbox("last_seq", w.next.saturating_sub(1));
        self.metrics.set_outbox("full", u64::from(w.full));
        let fill = used.saturating_mul(100) / self.config.max_size.max(1);
        if fill >= 80 && !w.warned_fill {
            warn!("outbox is {fill}% full: a destination is not keeping up");
        }
        w.warned_fill = fill >= 80;
    }

    /// The seq below which every record is complete.
    pub fn committed(&self) -> u64 {
        *lock(&self.committed)
    }

    /// Waits until records at or after `from` exist, or the timeout passes.
    pub fn wait_for(&self, from: u64, timeout: Duration) -> u64 {
        let guard = lock(&self.committed);
        let (guard, _) = self
            .grown
            .wait_timeout_while(guard, timeout, |c| *c <= from)
            .unwrap_or_else(|p| p.into_inner());
        *guard
    }

    /// Wakes every waiting reader (at shutdown).
    pub fn wake_all(&self) {
        self.grown.notify_all();
    }

    /// A destination's acknowledged cursor: the next seq it has not delivered. A destination
    /// seen for the first time starts at the end (it is sent what comes from now on;
    /// `canh forward replay` sends it older alerts).
    pub fn cursor(&self, destination: &str) -> io::Result<u64> {
        let path = cursor_path(&self.config.dir, destination);
        let c = match fs::read_to_string(&path) {
            Ok(text) => text.trim().parse::<u64>().map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let c = self.committed();
                write_cursor(&self.config.dir, destination, c)?;
                c
            }
            Err(e) => return Err(e),
        };
        lock(&self.cursors).insert(destination.to_owned(), c);
        Ok(c)
    }

    /// The lowest cursor of the running destinations.
    pub fn min_cursor(&self) -> Option<u64> {
        lock(&self.cursors).values().copied().min()
    }

    /// Records that `destination` has delivered everything below `next`.
    pub fn acknowledge(&self, destination: &str, next: u64) -> io::Result<()> {
        write_cursor(&self.config.dir, destination, next)?;
        let crossed = {
            let mut cursors = lock(&self.cursors);
            let old = cursors.insert(destination.to_owned(), next).unwrap_or(0);
            let w = lock(&self.writer);
            // A replay moves a cursor back: nothing to collect then.
            next > old && w.segments.range(old + 1..=next).next().is_some()
        };
        if crossed {
            self.collect_garbage(false);
        }
        Ok(())
    }

    /// Removes segments that every running destination has delivered and that are older than
    /// the retention (or, with `need_space`, any such segment, oldest first, until a tenth of
    /// the space is free). The newest segment always stays.
    pub fn collect_garbage(&self, need_space: bool) {
        let min_cursor = {
            let cursors = lock(&self.cursors);
            cursors.values().copied().min()
        }
        .unwrap_or_else(|| self.committed());
        let mut w = lock(&self.writer);
        let starts: Vec<u64> = w.segments.keys().copied().collect();
        let retention_edge = SystemTime::now()
            .checked_sub(self.config.retention)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        for pair in starts.windows(2) {
            let (start, next_start) = (pair[0], pair[1]);
            if next_start > min_cursor {
                break;
            }
            let path = self.segment_dir().join(segment_name(start));
            let used: u64 = w.segments.values().sum();
            let want_space = need_space && used > self.config.max_size - self.config.max_size / 10;
            let old = fs::metadata(&path)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < retention_edge);
            if !(old || want_space) {
                continue;
            }
            match fs::remove_file(&path) {
                Ok(()) => {
                    w.segments.remove(&start);
                }
                Err(e) => warn!(segment = %path.display(), error = %e, "outbox: cannot remove"),
            }
        }
        self.publish_state(&mut w);
    }

    /// A reader positioned at `from`.
    pub fn reader(&self, from: u64) -> Reader {
        Reader {
            dir: self.segment_dir(),
            file: None,
            next: from,
        }
    }

    /// The seq of the first record appended at or after `since_ns` (the end when none is).
    pub fn seq_since(&self, since_ns: i64) -> io::Result<u64> {
        let end = self.committed();
        let segments = list_segments(&self.segment_dir())?;
        let first = segments.keys().next().copied().unwrap_or(end);
        let mut r = self.reader(first);
        let mut batch = Vec::new();
        loop {
            batch.clear();
            r.read(end, 1024, &mut batch)?;
            if batch.is_empty() {
                return Ok(end);
            }
            if let Some(rec) = batch.iter().find(|rec| rec.appended_ns >= since_ns) {
                return Ok(rec.seq);
            }
        }
    }
}

fn cursor_path(dir: &Path, destination: &str) -> PathBuf {
    dir.join("cursors").join(destination)
}

fn write_cursor(dir: &Path, destination: &str, next: u64) -> io::Result<()> {
    let path = cursor_path(dir, destination);
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, format!("{next}\n"))?;
    fs::rename(&tmp, &path)
}

/// Every cursor file in an outbox folder: (destination, next seq).
pub fn read_cursors(dir: &Path) -> io::Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir.join("cursors")) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for e in entries {
        let e = e?;
        let Some(name) = e.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.ends_with(".tmp") {
            continue;
        }
        if let Some(c) = fs::read_to_string(e.path())
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            out.push((name, c));
        }
    }
    out.sort();
    Ok(out)
}

/// The last seq written to an outbox folder (0 when none), read without opening it for
/// writing: for `canh forward status` beside a running instance.
pub fn last_seq(dir: &Path) -> io::Result<u64> {
    let seg_dir = dir.join("segments");
    let segments = list_segments(&seg_dir)?;
    let Some((&start, _)) = segments.iter().next_back() else {
        return Ok(0);
    };
    let (_, last) = scan(&seg_dir.join(segment_name(start)), start)?;
    Ok(last.unwrap_or(start.saturating_sub(1)))
}

/// Scans a segment: the length of its valid prefix and the last seq in it.
fn scan(path: &Path, start: u64) -> io::Result<(u64, Option<u64>)> {
    let mut r = BufReader::new(File::open(path)?);
    let (mut valid, mut last) = (0u64, None);
    let mut expect = start;
    loop {
        match read_record(&mut r) {
            Ok(Some((rec, len))) if rec.seq == expect => {
                valid += len;
                last = Some(rec.seq);
                expect += 1;
            }
            Ok(_) | Err(_) => return Ok((valid, last)),
        }
    }
}

/// Reads records in seq order, across segments.
pub struct Reader {
    dir: PathBuf,
    /// The open segment: its first seq and the file, positioned at `next`.
    file: Option<(u64, BufReader<File>)>,
    next: u64,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl Reader {
    /// The seq of the next record this reader returns.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// Moves to `seq` (the next read starts there).
    pub fn seek(&mut self, seq: u64) {
        self.next = seq;
        self.file = None;
    }

    /// Appends up to `max` records below `end` to `out`. Also returns how many records were
    /// skipped: removed segments or damaged records (counted, then read past).
    pub fn read(
        &mut self,
        end: u64,
        max: usize,
        out: &mut Vec<Record>,
    ) -> io::Result<(usize, u64)> {
        let mut n = 0;
        let mut skipped = 0;
        while n < max && self.next < end {
            if self.file.is_none() {
                let segments = list_segments(&self.dir)?;
                let Some((&start, _)) = segments.range(..=self.next).next_back().or_else(|| {
                    // Older records were removed: go on from the oldest left.
                    segments.iter().next()
                }) else {
                    return Ok((n, skipped));
                };
                if start > self.next {
                    skipped += start - self.next;
                    self.next = start;
                }
                let path = self.dir.join(segment_name(start));
                let f = File::open(&path)?;
                self.file = Some((start, BufReader::with_capacity(256 << 10, f)));
            }
            let Some((start, r)) = self.file.as_mut() else {
                continue;
            };
            match read_record(r) {
                Ok(Some((rec, _))) if rec.seq < self.next => {}
                Ok(Some((rec, _))) => {
                    if rec.seq > self.next {
                        skipped += rec.seq - self.next;
                    }
                    self.next = rec.seq + 1;
                    out.push(rec);
                    n += 1;
                }
                Ok(None) => {
                    // The end of this segment: the next one starts at `next`, unless this
                    // one is still being written (then wait for more).
                    let segments = list_segments(&self.dir)?;
                    match segments.range(*start + 1..).next() {
                        Some((&s, _)) => {
                            if s > self.next {
                                skipped += s - self.next;
                                self.next = s;
                            }
                            self.file = None;
                        }
                        None => {
                            // Records below `end` will be there: the writer has returned.
                            // Re-open to drop what the buffer read short.
                            let pos = self.next;
                            self.seek(pos);
                            return Ok((n, skipped));
                        }
                    }
                }
                Err(e) => {
                    warn!(segment = *start, error = %e, "outbox: damaged record, skipping the rest of its segment");
                    let segments = list_segments(&self.dir)?;
                    let next = segments.range(*start + 1..).next().map(|(&s, _)| s);
                    match next {
                        Some(s) => {
                            skipped += s.saturating_sub(self.next);
                            self.next = s;
                            self.file = None;
                        }
                        None => {
                            skipped += end.saturating_sub(self.next);
                            self.next = end;
                            self.file = None;
                        }
                    }
                }
            }
        }
        Ok((n, skipped))
    }
}

/// The file of a segment (for tests that damage one).
#[cfg(test)]
fn segment_path(dir: &Path, start: u64) -> PathBuf {
    dir.join("segments").join(segment_name(start))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path, segment_size: u64, max_size: u64) -> Outbox {
        let mut c = OutboxConfig::new(dir.to_path_buf());
        c.segment_size = segment_size;
        c.max_size = max_size;
        Outbox::open(c, Metrics::new()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn payloads(from: usize, n: usize) -> Vec<Vec<u8>> {
        (from..from + n)
            .map(|i| format!("{{\"id\":\"alert-{i}\"}}").into_bytes())
            .collect()
    }

    fn read_all(o: &Outbox, from: u64) -> Vec<Record> {
        let mut r = o.reader(from);
        let mut out = Vec::new();
        loop {
            let before = out.len();
            r.read(o.committed(), 7, &mut out)
                .unwrap_or_else(|e| panic!("{e}"));
            if out.len() == before {
                return out;
            }
        }
    }

    #[test]
    fn records_come_back_in_order_across_segments_and_reopens() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let o = open(dir.path(), 200, 1 << 20);
        for i in 0..10 {
            let a = o
                .append(&payloads(i * 5, 5))
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!((a.first, a.written), (1 + i as u64 * 5, 5));
        }
        assert!(list_segments(&dir.path().join("segments")).map_or(0, |s| s.len()) > 5);
        let recs = read_all(&o, 1);
        assert_eq!(recs.len(), 50);
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(r.seq, i as u64 + 1);
            assert_eq!(r.payload, format!("{{\"id\":\"alert-{i}\"}}").into_bytes());
        }
        assert_eq!(read_all(&o, 23)[0].seq, 23);
        drop(o);
        let o = open(dir.path(), 200, 1 << 20);
        assert_eq!(o.committed(), 51);
        assert_eq!(o.append(&payloads(50, 1)).map(|a| a.first).ok(), Some(51));
        assert_eq!(read_all(&o, 1).len(), 51);
    }

    #[test]
    fn a_torn_tail_is_cut_and_a_damaged_record_is_skipped() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let o = open(dir.path(), 1 << 20, 1 << 20);
        o.append(&payloads(0, 3)).unwrap_or_else(|e| panic!("{e}"));
        drop(o);
        // A crash in the middle of a write: half a record at the end.
        let path = segment_path(dir.path(), 1);
        let mut f = OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{e}"));
        f.write_all(&[40, 0, 0, 0, 1, 2, 3, 4, 5])
            .unwrap_or_else(|e| panic!("{e}"));
        drop(f);
        let o = open(dir.path(), 1 << 20, 1 << 20);
        assert_eq!(o.committed(), 4);
        o.append(&payloads(3, 1)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read_all(&o, 1).len(), 4);
        // A flipped bit in the second record.
        let mut bytes = fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
        let second = HEADER + FIXED + 16 + HEADER + FIXED + 2;
        bytes[second] ^= 0x20;
        fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{e}"));
        let mut r = o.reader(1);
        let mut out = Vec::new();
        let (n, skipped) = r
            .read(o.committed(), 10, &mut out)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((n, skipped), (1, 3));
    }

    #[test]
    fn cursors_persist_and_delivered_segments_go_when_space_is_needed() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let o = open(dir.path(), 300, 1200);
        assert_eq!(o.cursor("national").ok(), Some(1));
        let mut dropped = 0;
        for i in 0..40 {
            dropped += o.append(&payloads(i, 1)).map_or(0, |a| a.dropped);
        }
        assert!(dropped > 0, "undelivered records fill the outbox");
        let end = o.committed();
        o.acknowledge("national", end)
            .unwrap_or_else(|e| panic!("{e}"));
        let a = o
            .append(&payloads(100, 1))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (a.written, a.dropped),
            (1, 0),
            "delivered segments make room"
        );
        drop(o);
        let o = open(dir.path(), 300, 1200);
        assert_eq!(o.cursor("national").ok(), Some(end));
        let recs = read_all(&o, end);
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].seq, end);
        // A replay moves the cursor back.
        o.acknowledge("national", 1)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(o.min_cursor(), Some(1));
    }

    #[test]
    fn readers_wait_for_appends() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let o = std::sync::Arc::new(open(dir.path(), 1 << 20, 1 << 20));
        let o2 = o.clone();
        let t = std::thread::spawn(move || o2.wait_for(1, Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(50));
        o.append(&payloads(0, 2)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.join().ok(), Some(3));
    }
}
