//! `canh hunt --input`: rules over JSON lines on several threads.
//!
//! A reader thread cuts the input into blocks of whole lines; worker threads parse each block
//! into batches (columns of the fields the rules read) and run the rules over them; the calling
//! thread takes the blocks back in input order and writes the matches, so the output and what
//! correlations see are the same whatever the number of threads. At most a few blocks per
//! worker are in flight, so memory stays bounded however large the input.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use anyhow::Context;
use canh_rules::compiled::Hit;
use canh_rules::lines::{JsonLines, LineError};
use canh_rules::{RuleSet, SetScratch, Target};
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};

use crate::Hunter;

/// Lines parsed and matched together.
const BATCH: usize = 4096;
/// Input per block, about: whole lines, cut after the last line break.
const BLOCK: usize = 4 << 20;

/// A block of the input: whole lines (the last one unterminated at the end of the input).
struct Block {
    seq: u64,
    bytes: Vec<u8>,
}

/// A block parsed and matched.
struct Done {
    seq: u64,
    /// Its batches with their matches, in order (batches without a match are not kept).
    batches: Vec<(JsonLines, Vec<Hit>)>,
    /// Lines in the block, and the events taken from them.
    lines: u64,
    events: u64,
    /// Lines not taken: their number within the block (from 1), and why.
    bad: Vec<(u64, String)>,
}

/// What the workers share: the rules, and how to make an empty batch.
struct Shared<'a> {
    set: &'a RuleSet,
    fields: Vec<&'a str>,
    keywords: bool,
    /// Batches handed back after their matches were written, for reuse.
    spare: Receiver<JsonLines>,
}

impl Shared<'_> {
    fn batch(&self) -> JsonLines {
        self.spare
            .try_recv()
            .unwrap_or_else(|_| JsonLines::new(&self.fields, self.keywords))
    }

    /// Parses a block's lines and runs the rules over them.
    fn work(&self, block: Block, scratch: &mut SetScratch) -> Done {
        let mut done = Done {
            seq: block.seq,
            batches: Vec::new(),
            lines: 0,
            events: 0,
            bad: Vec::new(),
        };
        let mut batch = self.batch();
        let mut finish = |batch: &mut JsonLines, done: &mut Done| {
            let mut hits = Vec::new();
            self.set
                .matches(Target::Events, &*batch, scratch, &mut hits);
            if hits.is_empty() {
                batch.clear();
            } else {
                let full = std::mem::replace(batch, self.batch());
                done.batches.push((full, hits));
            }
        };
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
                finish(&mut batch, &mut done);
                pushed = batch.push(text);
            }
            match pushed {
                Ok(()) => {
                    done.events += 1;
                    if batch.len() == BATCH {
                        finish(&mut batch, &mut done);
                    }
                }
                Err(e) => done.bad.push((done.lines, e.to_string())),
            }
        }
        if !batch.is_empty() {
            finish(&mut batch, &mut done);
        }
        done
    }
}

/// Reads `input` (`-`: stdin) in blocks of whole lines; a block is read only when `slots`
/// gives a token (one is given back per block written), so reading stays a few blocks ahead.
fn read_blocks(
    input: &Path,
    work: Sender<Block>,
    slots: Receiver<()>,
) -> std::thread::JoinHandle<anyhow::Result<()>> {
    let input = input.to_owned();
    // Not scoped: when writing fails, the hunt ends without waiting for a slow input.
    std::thread::spawn(move || {
        let mut reader: Box<dyn Read + Send> = if input.as_os_str() == "-" {
            Box::new(std::io::stdin())
        } else {
            Box::new(
                std::fs::File::open(&input)
                    .with_context(|| format!("reading {}", input.display()))?,
            )
        };
        let mut carry = Vec::new();
        for seq in 0.. {
            if slots.recv().is_err() {
                break;
            }
            let mut bytes = std::mem::take(&mut carry);
            bytes.reserve(BLOCK);
            // On until the block holds a line break (a line may be longer than a block).
            let mut end = false;
            loop {
                let before = bytes.len();
                let read = (&mut reader)
                    .take(BLOCK as u64)
                    .read_to_end(&mut bytes)
                    .with_context(|| format!("reading {}", input.display()))?;
                if read == 0 {
                    end = true;
                    break;
                }
                if memchr::memchr(b'\n', &bytes[before..]).is_some() {
                    break;
                }
            }
            // Whole lines only: what follows the last line break starts the next block.
            if !end {
                if let Some(i) = memchr::memrchr(b'\n', &bytes) {
                    carry.extend_from_slice(&bytes[i + 1..]);
                    bytes.truncate(i + 1);
                }
            }
            if !bytes.is_empty() && work.send(Block { seq, bytes }).is_err() {
                break;
            }
            if end {
                break;
            }
        }
        Ok(())
    })
}

/// Runs the hunt's rules over JSON lines from `input` on `threads` worker threads; returns the
/// events read and the lines not taken.
pub(crate) fn hunt_json(
    h: &mut Hunter,
    input: &Path,
    threads: usize,
) -> anyhow::Result<(u64, u64)> {
    let threads = threads.max(1);
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
    let in_flight = 2 * threads + 1;
    let (work_tx, work_rx) = bounded::<Block>(threads);
    let (slot_tx, slot_rx) = bounded::<()>(in_flight);
    for _ in 0..in_flight {
        let _ = slot_tx.send(());
    }
    let reader = read_blocks(input, work_tx, slot_rx);
    let (spare_tx, spare_rx) = unbounded::<JsonLines>();
    let shared = Shared {
        set: &set,
        fields,
        keywords,
        spare: spare_rx,
    };
    let (events, bad) = std::thread::scope(|s| -> anyhow::Result<(u64, u64)> {
        // Owned here, so that an early return lets the reader and the workers end.
        let slot_tx = slot_tx;
        let (done_tx, done_rx) = unbounded::<Done>();
        for _ in 0..threads {
            let (work_rx, done_tx, shared) = (work_rx.clone(), done_tx.clone(), &shared);
            s.spawn(move || {
                let mut scratch = shared.set.scratch();
                for block in work_rx {
                    if done_tx.send(shared.work(block, &mut scratch)).is_err() {
                        return;
                    }
                }
            });
        }
        drop((work_rx, done_tx));
        // Blocks in input order; one that finishes early waits for those before it.
        let (mut events, mut bad, mut lines) = (0u64, 0u64, 0u64);
        let mut waiting = BTreeMap::new();
        let mut next = 0;
        for done in &done_rx {
            waiting.insert(done.seq, done);
            while let Some(done) = waiting.remove(&next) {
                let mut err = std::io::stderr().lock();
                for (n, why) in &done.bad {
                    writeln!(err, "{}:{}: {why}", input.display(), lines + n)?;
                }
                for (mut batch, hits) in done.batches {
                    write_hits(h, &batch, &hits)?;
                    batch.clear();
                    let _ = spare_tx.send(batch);
                }
                events += done.events;
                bad += done.bad.len() as u64;
                lines += done.lines;
                next += 1;
                let _ = slot_tx.send(());
            }
        }
        Ok((events, bad))
    })?;
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("the input reader stopped"))??;
    Ok((events, bad))
}

/// A batch's matches through the hunter.
fn write_hits(h: &mut Hunter, batch: &JsonLines, hits: &[Hit]) -> anyhow::Result<()> {
    for hit in hits {
        let row = hit.row as usize;
        let event = canh_rules::events::RowOf { events: batch, row };
        h.hit(
            hit.rule,
            &|| canh_rules::correlation::event_time_ns(&event).unwrap_or(0),
            &event,
            &batch.json(row),
            Some(batch.line(row)),
        )?;
    }
    Ok(())
}
