//! `canh hunt --input`: rules over JSON lines, on one thread or several.
//!
//! The input is cut into blocks of whole lines; each block is parsed into one batch (columns
//! of the fields the rules read) and the rules run over it; the matches are written block by
//! block in input order, so the output and what correlations see are the same whatever the
//! number of threads. With one thread all of this happens in turn on the calling thread. With
//! more, a reader thread cuts the blocks, worker threads parse and match them, and the calling
//! thread writes them back in order; at most a few blocks per worker are in flight, so memory
//! stays bounded however large the input. Block buffers and batches are reused.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::Path;

use anyhow::Context;
use canh_rules::compiled::Hit;
use canh_rules::lines::{JsonLines, LineError};
use canh_rules::{RuleSet, SetScratch, Target};
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};

use crate::Hunter;

/// Input per block, about: whole lines, cut after the last line break. A block's lines are
/// parsed and matched as one batch (~4,500 of the usual 200-byte events).
const BLOCK: usize = 1 << 20;

/// A block of the input: whole lines (the last one unterminated at the end of the input).
struct Block {
    seq: u64,
    bytes: Vec<u8>,
}

/// A block parsed and matched.
struct Done {
    seq: u64,
    /// The block's size.
    bytes: u64,
    /// Its batches with their matches, in order (a batch without a match is not kept).
    batches: Vec<(JsonLines, Vec<Hit>)>,
    /// Lines in the block, and the events taken from them.
    lines: u64,
    events: u64,
    /// Lines not taken: their number within the block (from 1), and why.
    bad: Vec<(u64, String)>,
}

/// What parsing and matching need: the rules, what a batch gathers, and batches to reuse.
struct Work<'a> {
    set: &'a RuleSet,
    fields: Vec<&'a str>,
    keywords: bool,
    spare: (Sender<JsonLines>, Receiver<JsonLines>),
}

impl Work<'_> {
    fn batch(&self) -> JsonLines {
        self.spare
            .1
            .try_recv()
            .unwrap_or_else(|_| JsonLines::new(&self.fields, self.keywords))
    }

    /// A batch back for reuse.
    fn give_back(&self, mut batch: JsonLines) {
        batch.clear();
        let _ = self.spare.0.send(batch);
    }

    /// Runs the rules over a batch: kept with its matches, or reused at once.
    fn finish(&self, batch: JsonLines, scratch: &mut SetScratch, done: &mut Done) {
        let mut hits = Vec::new();
        if !batch.is_empty() {
            self.set.matches(Target::Events, &batch, scratch, &mut hits);
        }
        if hits.is_empty() {
            self.give_back(batch);
        } else {
            done.batches.push((batch, hits));
        }
    }

    /// Parses a block's lines and runs the rules over them.
    fn block(&self, block: &Block, scratch: &mut SetScratch) -> Done {
        let mut done = Done {
            seq: block.seq,
            bytes: block.bytes.len() as u64,
            batches: Vec::new(),
            lines: 0,
            events: 0,
            bad: Vec::new(),
        };
        let mut batch = self.batch();
        let bytes = block.bytes.as_slice();
        let mut start = 0;
        let ends = memchr::memchr_iter(b'\n', bytes).chain(
            // The input's last line, without a line break.
            (bytes.last().is_some_and(|&b| b != b'\n')).then_some(bytes.len()),
        );
        for end in ends {
            let line = &bytes[start..end];
            start = end + 1;
            done.lines += 1;
            let text = match std::str::from_utf8(line) {
                Ok(t) => t.trim(),
                Err(e) => {
                    done.bad.push((done.lines, format!("not UTF-8: {e}")));
                    continue;
                }
            };
            if text.is_empty() {
                continue;
            }
            let mut pushed = batch.push(text);
            if matches!(pushed, Err(LineError::Full)) {
                let full = std::mem::replace(&mut batch, self.batch());
                self.finish(full, scratch, &mut done);
                pushed = batch.push(text);
            }
            match pushed {
                Ok(()) => done.events += 1,
                Err(e) => done.bad.push((done.lines, e.to_string())),
            }
        }
        self.finish(batch, scratch, &mut done);
        done
    }
}

/// The input, `-` for stdin.
fn open(input: &Path) -> anyhow::Result<Box<dyn Read + Send>> {
    Ok(if input.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(
            std::fs::File::open(input).with_context(|| format!("reading {}", input.display()))?,
        )
    })
}

/// Reads the next block into `bytes` (emptied first): `carry`, what followed the last line
/// break of the block before, then more of the input, up to the last line break (a line longer
/// than a block is read on until it ends); what follows that goes back into `carry`. Returns
/// whether the input has ended, in which case `bytes` holds the rest of it.
fn next_block(
    reader: &mut dyn Read,
    carry: &mut Vec<u8>,
    bytes: &mut Vec<u8>,
) -> std::io::Result<bool> {
    bytes.clear();
    bytes.append(carry);
    bytes.reserve(BLOCK);
    loop {
        let before = bytes.len();
        if (&mut *reader).take(BLOCK as u64).read_to_end(bytes)? == 0 {
            return Ok(true);
        }
        if let Some(i) = memchr::memrchr(b'\n', &bytes[before..]) {
            carry.extend_from_slice(&bytes[before + i + 1..]);
            bytes.truncate(before + i + 1);
            return Ok(false);
        }
    }
}

/// The matches of each block, in input order, through the hunter.
struct Output<'a> {
    input: &'a Path,
    events: u64,
    bad: u64,
    lines: u64,
    bar: indicatif::ProgressBar,
}

impl Output<'_> {
    fn write(&mut self, h: &mut Hunter, work: &Work<'_>, done: Done) -> anyhow::Result<()> {
        if !done.bad.is_empty() {
            self.bar.suspend(|| -> std::io::Result<()> {
                let mut err = std::io::stderr().lock();
                for (n, why) in &done.bad {
                    writeln!(err, "{}:{}: {why}", self.input.display(), self.lines + n)?;
                }
                Ok(())
            })?;
        }
        for (batch, hits) in done.batches {
            for hit in &hits {
                let row = hit.row as usize;
                let event = canh_rules::events::RowOf {
                    events: &batch,
                    row,
                };
                h.hit(
                    hit.rule,
                    &|| canh_rules::correlation::event_time_ns(&event).unwrap_or(0),
                    &event,
                    &batch.json(row),
                    Some(batch.line(row)),
                )?;
            }
            work.give_back(batch);
        }
        self.events += done.events;
        self.bad += done.bad.len() as u64;
        self.lines += done.lines;
        self.bar.inc(done.bytes);
        self.bar
            .set_message(format!("{} events, {} matches", self.events, h.matches));
        Ok(())
    }
}

/// Runs the hunt's rules over JSON lines from `input` (`-`: stdin) on `threads` threads;
/// returns the events read and the lines not taken.
pub(crate) fn hunt_json(
    h: &mut Hunter,
    input: &Path,
    threads: usize,
) -> anyhow::Result<(u64, u64)> {
    let set = std::sync::Arc::clone(&h.set);
    // The correlations' time is read too.
    let (fields, keywords) = match set.compiled(Target::Events) {
        Some(c) => {
            let mut fields = c.fields();
            fields.push("@timestamp");
            (fields, c.keywords())
        }
        None => (Vec::new(), false),
    };
    let work = Work {
        set: &set,
        fields,
        keywords,
        spare: unbounded(),
    };
    let size = (input.as_os_str() != "-")
        .then(|| std::fs::metadata(input).ok().map(|m| m.len()))
        .flatten();
    // Matches printed on the terminal would be drawn over: progress only when they go elsewhere.
    let bar = if std::io::stdout().is_terminal() {
        indicatif::ProgressBar::hidden()
    } else {
        crate::progress(
            size,
            match size {
                Some(_) => {
                    "{spinner} {bytes}/{total_bytes} read, {msg} [{elapsed}, about {eta} left]"
                }
                None => "{spinner} {bytes} read, {msg} [{elapsed}]",
            },
        )
    };
    let mut out = Output {
        input,
        events: 0,
        bad: 0,
        lines: 0,
        bar,
    };
    let mut reader = open(input)?;
    if threads <= 1 {
        let mut scratch = set.scratch();
        let (mut carry, mut bytes) = (Vec::new(), Vec::new());
        loop {
            let end = next_block(&mut *reader, &mut carry, &mut bytes)
                .with_context(|| format!("reading {}", input.display()))?;
            let block = Block { seq: 0, bytes };
            let done = work.block(&block, &mut scratch);
            out.write(h, &work, done)?;
            bytes = block.bytes;
            if end {
                out.bar.finish_and_clear();
                return Ok((out.events, out.bad));
            }
        }
    }
    // A block is read only when a token is free (one comes back per block written), so reading
    // stays a few blocks ahead of writing.
    let in_flight = 2 * threads + 1;
    let (slot_tx, slot_rx) = bounded::<()>(in_flight);
    for _ in 0..in_flight {
        let _ = slot_tx.send(());
    }
    let (work_tx, work_rx) = bounded::<Block>(threads);
    let (free_tx, free_rx) = unbounded::<Vec<u8>>();
    // Not scoped: when writing fails, the hunt ends without waiting for a slow input.
    let read = std::thread::spawn(move || -> std::io::Result<()> {
        let mut carry = Vec::new();
        for seq in 0.. {
            if slot_rx.recv().is_err() {
                break;
            }
            let mut bytes = free_rx.try_recv().unwrap_or_default();
            let end = next_block(&mut *reader, &mut carry, &mut bytes)?;
            if work_tx.send(Block { seq, bytes }).is_err() || end {
                break;
            }
        }
        Ok(())
    });
    std::thread::scope(|s| -> anyhow::Result<()> {
        // Owned here, so that an early return lets the reader and the workers end.
        let slot_tx = slot_tx;
        let (done_tx, done_rx) = unbounded::<Done>();
        for _ in 0..threads {
            let (work_rx, done_tx, free_tx, work) =
                (work_rx.clone(), done_tx.clone(), free_tx.clone(), &work);
            s.spawn(move || {
                let mut scratch = work.set.scratch();
                for block in work_rx {
                    let done = work.block(&block, &mut scratch);
                    let _ = free_tx.send(block.bytes);
                    if done_tx.send(done).is_err() {
                        return;
                    }
                }
            });
        }
        drop((work_rx, done_tx, free_tx));
        // Blocks in input order; one that finishes early waits for those before it.
        let mut waiting = BTreeMap::new();
        let mut next = 0;
        for done in &done_rx {
            waiting.insert(done.seq, done);
            while let Some(done) = waiting.remove(&next) {
                out.write(h, &work, done)?;
                next += 1;
                let _ = slot_tx.send(());
            }
        }
        Ok(())
    })?;
    out.bar.finish_and_clear();
    read.join()
        .map_err(|_| anyhow::anyhow!("the input reader stopped"))?
        .with_context(|| format!("reading {}", input.display()))?;
    Ok((out.events, out.bad))
}
