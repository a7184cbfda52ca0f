//! The parse stage: worker threads that turn [`RawChunk`]s into batches of the `events` table
//! (syslog) and of the `flows` table (NetFlow/IPFIX export datagrams).
//!
//! Each worker owns one input queue (collectors pick the queue, which keeps a TCP connection's
//! messages in order) and one [`TableBuilder`]. A batch is handed to the sinks when it reaches
//! the row or byte cap, or when its oldest row has waited `batch_timeout`. Handing on blocks
//! while the sink queue is full: that is the backpressure that reaches TCP readers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use canh_metrics::Metrics;
use canh_parsers::netflow::{FlowDecoder, Limits, Packet};
use canh_parsers::{append_event, Format, Meta, Status};
use canh_schema::{Batch, RawChunk, Table, TableBuilder, Transport};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::detect::WorkerDetect;
use tracing::error;

use crate::config::PipelineConfig;
use crate::inventory::{Inventory, SenderInfo, Watched};
use crate::zone::Zone;

/// Inventory lookups of one worker, cached per sender address until the inventory changes.
struct SenderCache {
    generation: u64,
    inventory: Arc<Inventory>,
    entries: HashMap<std::net::IpAddr, SenderInfo>,
}

impl SenderCache {
    /// Most deployments have hundreds of senders; this bounds a scan of spoofed UDP sources.
    const MAX: usize = 65_536;

    fn lookup(&mut self, watched: &Watched, ip: std::net::IpAddr) -> SenderInfo {
        let generation = watched.generation();
        if generation != self.generation {
            self.generation = generation;
            self.inventory = watched.current();
            self.entries.clear();
        }
        if let Some(e) = self.entries.get(&ip) {
            return e.clone();
        }
        if self.entries.len() >= Self::MAX {
            self.entries.clear();
        }
        let e = self.inventory.sender(ip);
        self.entries.insert(ip, e.clone());
        e
    }
}

/// How a device clock further than this from the receive time is counted as skewed.
pub const CLOCK_SKEW_NS: i64 = 300 * 1_000_000_000;

/// How one listener's messages are parsed.
#[derive(Debug, Clone, Default)]
pub struct ListenerParse {
    pub format: Format,
    /// Zone of device timestamps that carry none.
    pub zone: Zone,
}

impl ListenerParse {
    pub fn new(format: Format, zone: &Zone) -> Self {
        ListenerParse {
            format,
            zone: zone.clone(),
        }
    }
}

/// The NetFlow/IPFIX side of one worker: its template cache and its `flows` batch. The
/// collectors send one exporter's datagrams to one worker, so its templates are all here.
struct Flows {
    decoder: FlowDecoder,
    builder: TableBuilder,
}

/// Export packets, flows and sequence gaps of one chunk, for its metrics.
#[derive(Default)]
struct FlowTally {
    /// By NetFlow version: (packets, flows).
    versions: Vec<(u16, (u64, u64))>,
    /// By exporter: export packets or records missing.
    gaps: Vec<(std::net::IpAddr, u64)>,
}

impl FlowTally {
    fn packet(&mut self, version: u16, flows: u64) {
        let (packets, n) = slot(&mut self.versions, version);
        *packets += 1;
        *n += flows;
    }

    fn gap(&mut self, exporter: std::net::IpAddr, missing: u64) {
        *slot(&mut self.gaps, exporter) += missing;
    }
}

/// The value for `key` in a short list of pairs, added if missing.
fn slot<K: PartialEq, V: Default>(pairs: &mut Vec<(K, V)>, key: K) -> &mut V {
    let i = match pairs.iter().position(|(k, _)| *k == key) {
        Some(i) => i,
        None => {
            pairs.push((key, V::default()));
            pairs.len() - 1
        }
    };
    &mut pairs[i].1
}

/// One parser worker.
pub struct ParserWorker {
    /// The worker's number, for metrics.
    pub index: usize,
    pub input: Receiver<RawChunk>,
    pub output: Sender<Batch>,
    /// How each listener's messages are parsed, by listener name.
    pub listeners: Arc<HashMap<Arc<str>, ListenerParse>>,
    /// The sender inventory, if one is configured.
    pub inventory: Option<Arc<Watched>>,
    pub config: PipelineConfig,
    pub metrics: Metrics,
    /// The detection rules, run over every batch before it goes to the sinks.
    pub detect: Option<std::cell::RefCell<WorkerDetect>>,
}

/// The last sender's formatted address, reused while consecutive frames share it.
struct PeerText {
    addr: Option<SocketAddr>,
    ip: String,
    ip_port: String,
}

impl PeerText {
    fn update(&mut self, peer: SocketAddr) {
        if self.addr != Some(peer) {
            self.addr = Some(peer);
            self.ip = peer.ip().to_string();
            self.ip_port = peer.to_string();
        }
    }
}

impl ParserWorker {
    /// Runs until every collector has dropped its end of the input queue, then flushes.
    pub fn run(self) {
        let mut builder = TableBuilder::new(Table::Events, self.config.batch_rows.min(65_536));
        let mut oldest: Option<Instant> = None;
        let mut counts = [0u64; 3];
        let mut peer = PeerText {
            addr: None,
            ip: String::new(),
            ip_port: String::new(),
        };
        let default = ListenerParse::default();
        let mut flows = Flows {
            decoder: FlowDecoder::new(Limits::default()),
            builder: TableBuilder::new(Table::Flows, self.config.batch_rows.min(65_536)),
        };
        let mut senders = SenderCache {
            generation: 0,
            inventory: Arc::new(Inventory::default()),
            entries: HashMap::new(),
        };
        loop {
            let wait = oldest.map_or(Duration::from_secs(3600), |t| {
                self.config.batch_timeout.saturating_sub(t.elapsed())
            });
            match self.input.recv_timeout(wait) {
                Ok(chunk) if chunk.transport == Transport::Netflow => {
                    self.decode_flows(&chunk, &mut flows, &mut senders);
                    oldest.get_or_insert_with(Instant::now);
                }
                Ok(chunk) => {
                    let listener = self.listeners.get(&chunk.listener).unwrap_or(&default);
                    // The sender's settings, worked out again only when the sender changes
                    // (a TCP chunk has one sender; a UDP chunk mostly runs of one).
                    let mut sender = SenderInfo::NoInventory;
                    let mut settings: Option<(SocketAddr, Format, i64)> = None;
                    let (mut ahead, mut behind, mut unknown) = (0, 0, 0);
                    for (bytes, from) in chunk.messages() {
                        let (format, tz_offset_secs) = match settings {
                            Some((addr, format, offset)) if addr == from => (format, offset),
                            _ => {
                                peer.update(from);
                                if let Some(w) = &self.inventory {
                                    sender = senders.lookup(w, from.ip());
                                }
                                let format = sender.format(listener.format);
                                let offset =
                                    sender.zone(&listener.zone).offset_at(chunk.received_ns);
                                settings = Some((from, format, offset));
                                (format, offset)
                            }
                        };
                        unknown += u64::from(sender.is_unknown());
                        let meta = Meta {
                            received_ns: chunk.received_ns,
                            listener: &chunk.listener,
                            input_type: chunk.transport.as_str(),
                            peer_ip: &peer.ip,
                            peer_addr: &peer.ip_port,
                            tz_offset_secs,
                            organization: sender.organization(),
                            device: sender.device(),
                        };
                        let row = append_event(&mut builder, bytes, format, &meta);
                        counts[row.status as usize] += 1;
                        if let Some(ns) = row.event_ns {
                            let d = ns.saturating_sub(chunk.received_ns);
                            ahead += u64::from(d > CLOCK_SKEW_NS);
                            behind += u64::from(d < -CLOCK_SKEW_NS);
                        }
                        oldest.get_or_insert_with(Instant::now);
                        if builder.rows() >= self.config.batch_rows
                            || builder.bytes() >= self.config.batch_bytes
                        {
                            self.flush(&mut builder, &mut counts);
                            oldest = None;
                        }
                    }
                    self.metrics.unknown_senders(&chunk.listener, unknown);
                    self.metrics.clock_skewed(&chunk.listener, "ahead", ahead);
                    self.metrics.clock_skewed(&chunk.listener, "behind", behind);
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.flush(&mut builder, &mut counts);
                    self.send(&mut flows.builder);
                    oldest = None;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.flush(&mut builder, &mut counts);
                    self.send(&mut flows.builder);
                    return;
                }
            }
        }
    }

    /// Decodes every datagram of a flow-export chunk into the flows batch.
    fn decode_flows(&self, chunk: &RawChunk, flows: &mut Flows, senders: &mut SenderCache) {
        let mut no_template = 0;
        // Counted per chunk, not per packet: each metric update hashes its labels.
        let mut tally = FlowTally::default();
        for (payload, from) in chunk.messages() {
            let sender = match &self.inventory {
                Some(w) => senders.lookup(w, from.ip()),
                None => SenderInfo::NoInventory,
            };
            let packet = Packet {
                exporter: from,
                received_ns: chunk.received_ns,
                payload,
                organization: sender.organization(),
            };
            let s = flows.decoder.decode(&packet, &mut flows.builder);
            tally.packet(s.version, s.flows as u64);
            if let Some(e) = &s.error {
                self.metrics.flow_decode_error(&chunk.listener, e.code);
            }
            if s.sequence_gap > 0 {
                tally.gap(from.ip(), s.sequence_gap);
            }
            no_template += s.no_template as u64;
            if flows.builder.rows() >= self.config.batch_rows
                || flows.builder.bytes() >= self.config.batch_bytes
            {
                self.send(&mut flows.builder);
            }
        }
        for (version, (packets, n)) in tally.versions {
            self.metrics
                .flow_packets(&chunk.listener, version, packets, n);
        }
        for (exporter, missing) in tally.gaps {
            self.metrics
                .flow_sequence_gap(&exporter.to_string(), missing);
        }
        self.metrics
            .flows_without_template(&chunk.listener, no_template);
        self.metrics
            .set_flow_templates(&self.index.to_string(), flows.decoder.templates());
    }

    fn flush(&self, builder: &mut TableBuilder, counts: &mut [u64; 3]) {
        for s in Status::ALL {
            self.metrics.parsed(s.as_str(), counts[s as usize]);
        }
        *counts = [0; 3];
        self.send(builder);
    }

    /// Hands the builder's rows to the sinks as a batch.
    fn send(&self, builder: &mut TableBuilder) {
        match builder.finish() {
            Ok(Some(batch)) => {
                if let Some(d) = &self.detect {
                    d.borrow_mut().run(&batch);
                }
                // Blocks while the sink is behind: backpressure.
                if self.output.send(batch).is_err() {
                    error!("sink stopped before the parsers; batch lost");
                    self.metrics.error("parser", "sink_gone");
                }
            }
            Ok(None) => {}
            Err(e) => {
                // A builder that cannot finish is a bug in a parser (a required column left
                // empty); say so loudly rather than panic.
                error!(error = %e, "could not build a batch");
                self.metrics.error("parser", "batch_build");
            }
        }
    }
}
