//! The spine of Canh: configuration, the pipeline runtime, sinks and the operator endpoint.
//!
//! [`Engine::start`] wires the stages of DESIGN.md for one [`config::Config`]:
//!
//! ```text
//! collectors ──RawChunk──▶ parser workers ──Batch──▶ archive sink ──Batch──▶ ClickHouse sink
//!  (UDP threads,          (one thread per core,      (one thread;       (optional; one thread,
//!   TCP tokio tasks)       one queue each)            Parquet files)     outage spool on disk)
//! ```
//!
//! Every queue is a bounded crossbeam channel. A full sink queue blocks the parsers; a full
//! parser queue makes TCP connections stop reading (the sender feels TCP flow control) and makes
//! UDP receivers drop and count. Shutdown ([`Engine::shutdown`]) runs in stage order: collectors
//! stop accepting and drain what senders already sent, their queues close, parsers flush their
//! last batch, the sink completes its files. Nothing in flight is dropped.
//!
//! Threads are used for CPU-bound work (parsing, encoding Parquet) and tokio only for network
//! I/O, so a slow parse never stalls an async worker.

pub mod config;
pub mod detect;
pub mod http;
pub mod hunt;
pub mod inventory;
pub mod json;
pub mod pipeline;
pub mod sink;
pub mod zone;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use canh_collectors::{Dispatch, Shutdown, ShutdownTrigger};
use canh_metrics::Metrics;
use canh_schema::{Batch, RawChunk};
use tracing::{info, warn};

use crate::config::{ArchiveConfig, Config};

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener or the HTTP endpoint could not bind its address.
    #[error("cannot listen on {what} {addr}")]
    Bind {
        what: String,
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The archive could not be opened.
    #[error("archive")]
    Archive(#[from] sink::parquet::ArchiveError),
    /// A thread or the async runtime could not be created.
    #[error("runtime")]
    Runtime(#[source] std::io::Error),
    /// The inventory file cannot be used (every problem, with line numbers).
    #[error("inventory: {}", .0.join("; "))]
    Inventory(Vec<String>),
    /// The detection rules cannot be loaded (a missing folder, a bad mapping file).
    #[error("detection: {0}")]
    Detection(String),
    /// The outbox cannot be opened, or a destination cannot start (its TLS files).
    #[error("forwarding: {}", .0.join("; "))]
    Forward(Vec<String>),
}

/// The addresses the engine actually listens on (useful when configured with port 0).
#[derive(Debug, Clone, Default)]
pub struct Bound {
    pub udp: Vec<(Arc<str>, SocketAddr)>,
    /// NetFlow/IPFIX listeners.
    pub netflow: Vec<(Arc<str>, SocketAddr)>,
    pub tcp: Vec<(Arc<str>, SocketAddr)>,
    pub http: Option<SocketAddr>,
}

/// SIGTERM, SIGINT and SIGHUP.
type Signals = (
    tokio::signal::unix::Signal,
    tokio::signal::unix::Signal,
    tokio::signal::unix::Signal,
);

/// A running pipeline.
pub struct Engine {
    pub bound: Bound,
    pub metrics: Metrics,
    trigger: ShutdownTrigger,
    runtime: tokio::runtime::Runtime,
    udp: Vec<canh_collectors::udp::UdpListener>,
    tcp: Vec<tokio::task::JoinHandle<()>>,
    parsers: Vec<JoinHandle<()>>,
    /// The archive's writer threads.
    sinks: Vec<JoinHandle<()>>,
    /// The ClickHouse sink thread (fed by the archive's writers).
    clickhouse: Option<JoinHandle<()>>,
    /// The alerts thread, the rules and their watcher.
    alerts: Option<JoinHandle<()>>,
    rules: Option<Arc<detect::Rules>>,
    rules_watcher: Option<(Arc<std::sync::atomic::AtomicBool>, JoinHandle<()>)>,
    /// Delivery of alerts to the configured destinations.
    forwarder: Option<canh_forward::Forwarder>,
    /// The inventory watcher thread and the flag that stops it.
    inventory_watcher: Option<(Arc<std::sync::atomic::AtomicBool>, JoinHandle<()>)>,
    /// SIGTERM and SIGINT, registered at start.
    signals: std::sync::Mutex<Option<Signals>>,
    http: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("bound", &self.bound)
            .finish()
    }
}

impl Engine {
    /// Starts every stage. On error, whatever was started is stopped again.
    pub fn start(config: &Config, metrics: Metrics) -> Result<Engine, StartError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("canh-io")
            .enable_all()
            .build()
            .map_err(StartError::Runtime)?;
        // Signal handlers go in before anything listens: a SIGTERM that arrives as soon as the
        // listeners are up is then queued for `wait_for_signal`, not fatal.
        let signals = {
            let _rt = runtime.enter();
            use tokio::signal::unix::{signal, SignalKind};
            (
                signal(SignalKind::terminate()).map_err(StartError::Runtime)?,
                signal(SignalKind::interrupt()).map_err(StartError::Runtime)?,
                signal(SignalKind::hangup()).map_err(StartError::Runtime)?,
            )
        };
        let (trigger, shutdown) = Shutdown::new();

        // Sink first, so batches have somewhere to go.
        let parser_threads = config.pipeline.parser_threads.max(1);
        let archive_config = ArchiveConfig {
            writers: config.archive_writers(),
            ..config.archive.clone()
        };
        let archive = sink::parquet::ParquetArchive::open_writers(
            &config.archive_dir(),
            archive_config,
            metrics.clone(),
        )?;
        // ClickHouse takes each batch after the archive has written it.
        let mut clickhouse = None;
        let mut clickhouse_tx = None;
        if let Some(ch) = config.clickhouse.clone() {
            let (tx, rx) = crossbeam_channel::bounded::<Batch>(config.pipeline.sink_queue_batches);
            let (m, spool) = (
                metrics.clone(),
                config.data_dir.join("spool").join("clickhouse"),
            );
            clickhouse = Some(
                std::thread::Builder::new()
                    .name("canh-clickhouse".into())
                    .spawn(move || sink::clickhouse::run(ch, &spool, rx, m))
                    .map_err(StartError::Runtime)?,
            );
            clickhouse_tx = Some(tx);
        }
        // One queue per archive writer. Parser i hands its batches to writer i mod n, so the
        // rows of a connection (always on one parser) stay in order in one writer's files.
        let mut sinks = Vec::new();
        let mut batch_txs = Vec::new();
        let mut sink_depth = Vec::new();
        for (i, writer) in archive.into_iter().enumerate() {
            let (tx, rx) = crossbeam_channel::bounded::<Batch>(config.pipeline.sink_queue_batches);
            sink_depth.push(rx.clone());
            let (then, m) = (clickhouse_tx.clone(), metrics.clone());
            sinks.push(
                std::thread::Builder::new()
                    .name(format!("canh-archive-{i}"))
                    .spawn(move || sink::parquet::run(writer, rx, then, m))
                    .map_err(StartError::Runtime)?,
            );
            batch_txs.push(tx);
        }
        drop(clickhouse_tx);

        let listeners: HashMap<Arc<str>, pipeline::ListenerParse> = config
            .udp
            .iter()
            .map(|u| {
                (
                    u.socket.name.clone(),
                    pipeline::ListenerParse::new(u.format, &u.timezone),
                )
            })
            .chain(config.tcp.iter().map(|t| {
                (
                    t.socket.name.clone(),
                    pipeline::ListenerParse::new(t.format, &t.timezone),
                )
            }))
            .collect();
        let listeners = Arc::new(listeners);
        let mut inventory_watcher = None;
        let inventory = match &config.inventory {
            Some(ic) => {
                let w = inventory::Watched::open(&ic.file).map_err(StartError::Inventory)?;
                info!(file = %ic.file.display(), networks = w.current().networks(), "inventory loaded");
                let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let (w2, stop2, every) = (w.clone(), stop.clone(), ic.reload_interval);
                let handle = std::thread::Builder::new()
                    .name("canh-inventory".into())
                    .spawn(move || w2.watch(every, stop2))
                    .map_err(StartError::Runtime)?;
                inventory_watcher = Some((stop, handle));
                Some(w)
            }
            None => None,
        };
        // Detection: the rules (if any), their watcher and the alerts thread.
        let rules = detect::Rules::open(&config.detection, metrics.clone())
            .map_err(StartError::Detection)?;
        let (mut detected_tx, mut alerts, mut rules_watcher) = (None, None, None);
        let mut forwarder = None;
        if rules.is_none() && !config.forward.is_empty() {
            warn!("alert destinations are configured but detection is off: nothing to forward");
        }
        if let Some(rules) = &rules {
            // Every new alert goes to the outbox, whether or not destinations are configured
            // (`canh forward replay` can send them to one added later).
            let outbox =
                canh_forward::Outbox::open(config.outbox(), metrics.clone()).map_err(|e| {
                    StartError::Forward(vec![format!(
                        "outbox {}: {e}",
                        config.outbox().dir.display()
                    )])
                })?;
            let outbox = Arc::new(outbox);
            if !config.forward.is_empty() {
                forwarder = Some(
                    canh_forward::Forwarder::start(outbox.clone(), &config.forward, &metrics)
                        .map_err(StartError::Forward)?,
                );
            }
            let (tx, rx) = crossbeam_channel::bounded::<detect::Detected>(8);
            detected_tx = Some(tx);
            let (r, out, m) = (rules.clone(), batch_txs[0].clone(), metrics.clone());
            alerts = Some(
                std::thread::Builder::new()
                    .name("canh-alerts".into())
                    .spawn(move || detect::run_alerts(r, rx, out, Some(outbox), m))
                    .map_err(StartError::Runtime)?,
            );
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let (r, s) = (rules.clone(), stop.clone());
            let handle = std::thread::Builder::new()
                .name("canh-rules".into())
                .spawn(move || r.watch(&s))
                .map_err(StartError::Runtime)?;
            rules_watcher = Some((stop, handle));
        }
        let mut queues = Vec::new();
        let mut queue_depths = Vec::new();
        let mut parsers = Vec::new();
        for i in 0..parser_threads {
            let (tx, rx) = crossbeam_channel::bounded::<RawChunk>(config.pipeline.queue_chunks);
            queues.push(tx);
            queue_depths.push(rx.clone());
            let worker = pipeline::ParserWorker {
                index: i,
                input: rx,
                output: batch_txs[i % batch_txs.len()].clone(),
                listeners: listeners.clone(),
                inventory: inventory.clone(),
                config: config.pipeline.clone(),
                metrics: metrics.clone(),
                detect: rules.as_ref().zip(detected_tx.as_ref()).map(|(r, tx)| {
                    std::cell::RefCell::new(detect::WorkerDetect::new(
                        r.clone(),
                        tx.clone(),
                        metrics.clone(),
                    ))
                }),
            };
            let handle = std::thread::Builder::new()
                .name(format!("canh-parse-{i}"))
                .spawn(move || worker.run())
                .map_err(StartError::Runtime)?;
            parsers.push(handle);
        }
        drop(batch_txs);
        drop(detected_tx);
        let dispatch = Dispatch::new(queues);

        let mut engine = Engine {
            bound: Bound::default(),
            metrics: metrics.clone(),
            trigger,
            runtime,
            udp: Vec::new(),
            tcp: Vec::new(),
            parsers,
            inventory_watcher,
            signals: std::sync::Mutex::new(Some(signals)),
            sinks,
            clickhouse,
            alerts,
            rules,
            rules_watcher,
            forwarder,
            http: None,
        };
        if let Err(e) = engine.start_inputs(config, &dispatch, &shutdown, sink_depth, queue_depths)
        {
            drop(dispatch);
            engine.shutdown();
            return Err(e);
        }
        Ok(engine)
    }

    fn start_inputs(
        &mut self,
        config: &Config,
        dispatch: &Dispatch,
        shutdown: &Shutdown,
        sink_depth: Vec<crossbeam_channel::Receiver<Batch>>,
        queue_depths: Vec<crossbeam_channel::Receiver<RawChunk>>,
    ) -> Result<(), StartError> {
        for u in &config.udp {
            let bind_err = |source| StartError::Bind {
                what: format!("udp listener {:?}", &*u.socket.name),
                addr: u.socket.addr,
                source,
            };
            let listener = canh_collectors::udp::start(
                &u.socket,
                dispatch.clone(),
                shutdown.clone(),
                self.metrics.clone(),
            )
            .map_err(bind_err)?;
            info!(listener = %u.socket.name, addr = %listener.local_addr, "listening on udp");
            self.bound
                .udp
                .push((u.socket.name.clone(), listener.local_addr));
            self.udp.push(listener);
        }
        for n in &config.netflow {
            let bind_err = |source| StartError::Bind {
                what: format!("netflow listener {:?}", &*n.name),
                addr: n.addr,
                source,
            };
            let listener = canh_collectors::udp::start(
                n,
                dispatch.clone(),
                shutdown.clone(),
                self.metrics.clone(),
            )
            .map_err(bind_err)?;
            info!(listener = %n.name, addr = %listener.local_addr, "listening for netflow/ipfix on udp");
            self.bound
                .netflow
                .push((n.name.clone(), listener.local_addr));
            self.udp.push(listener);
        }
        for t in &config.tcp {
            let bind_err = |source| StartError::Bind {
                what: format!("tcp listener {:?}", &*t.socket.name),
                addr: t.socket.addr,
                source,
            };
            let listener = {
                let _guard = self.runtime.enter();
                canh_collectors::tcp::bind(t.socket.addr).map_err(bind_err)?
            };
            let addr = listener.local_addr().map_err(bind_err)?;
            info!(listener = %t.socket.name, %addr, "listening on tcp");
            self.bound.tcp.push((t.socket.name.clone(), addr));
            let task = canh_collectors::tcp::serve(
                listener,
                t.socket.clone(),
                dispatch.clone(),
                shutdown.clone(),
                self.metrics.clone(),
            );
            self.tcp.push(self.runtime.spawn(task));
        }
        let http_err = |source| StartError::Bind {
            what: "http endpoint".into(),
            addr: config.http_listen,
            source,
        };
        let listener = self
            .runtime
            .block_on(http::bind(config.http_listen))
            .map_err(http_err)?;
        let addr = listener.local_addr().map_err(http_err)?;
        info!(%addr, "metrics and health on http");
        self.bound.http = Some(addr);
        let m = self.metrics.clone();
        let sample: http::Sampler = Arc::new(move || {
            m.set_channel_depth("parse", queue_depths.iter().map(|q| q.len()).sum());
            m.set_channel_depth("sink", sink_depth.iter().map(|q| q.len()).sum());
        });
        self.http = Some(
            self.runtime
                .spawn(http::serve(listener, self.metrics.clone(), sample)),
        );
        Ok(())
    }

    /// Stops accepting, drains every stage in order and completes the archive files.
    pub fn shutdown(mut self) {
        info!("shutting down: draining collectors");
        self.trigger.trigger();
        for u in std::mem::take(&mut self.udp) {
            u.join();
        }
        for t in std::mem::take(&mut self.tcp) {
            let _ = self.runtime.block_on(t);
        }
        info!("collectors stopped: flushing parsers");
        for p in std::mem::take(&mut self.parsers) {
            let _ = p.join();
        }
        // The parsers are gone, so is every sender of matches: the alerts thread closes its
        // open alerts, writes them and ends.
        if let Some(a) = self.alerts.take() {
            let _ = a.join();
        }
        if let Some((stop, handle)) = self.rules_watcher.take() {
            stop.store(true, std::sync::atomic::Ordering::Release);
            let _ = handle.join();
        }
        // Destinations that are up get a moment to take the last alerts; the rest stays in
        // the outbox for the next start.
        if let Some(f) = self.forwarder.take() {
            f.drain(std::time::Duration::from_secs(5));
            f.stop();
        }
        for s in std::mem::take(&mut self.sinks) {
            let _ = s.join();
        }
        // The archive's writers have closed their side of the ClickHouse queue.
        if let Some(c) = self.clickhouse.take() {
            let _ = c.join();
        }
        if let Some(h) = self.http.take() {
            h.abort();
        }
        if let Some((stop, handle)) = self.inventory_watcher.take() {
            stop.store(true, std::sync::atomic::Ordering::Release);
            let _ = handle.join();
        }
        info!("archive closed");
    }

    /// Resolves when SIGTERM or SIGINT arrives; SIGHUP reloads the rules meanwhile.
    pub fn wait_for_signal(&self) -> std::io::Result<()> {
        let taken = match self.signals.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        let Some((mut term, mut int, mut hup)) = taken else {
            return Err(std::io::Error::other("wait_for_signal called twice"));
        };
        self.runtime.block_on(async {
            loop {
                tokio::select! {
                    _ = term.recv() => { info!("SIGTERM received"); break; }
                    _ = int.recv() => { info!("SIGINT received"); break; }
                    _ = hup.recv() => {
                        info!("SIGHUP received: reloading rules");
                        if let Some(r) = &self.rules {
                            r.request_reload();
                        }
                    }
                }
            }
            Ok(())
        })
    }
}
