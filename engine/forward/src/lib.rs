//! Forwarding alerts to the national SOC.
//!
//! ```text
//! alerts thread ──append (fsync)──▶ outbox (segments on disk) ──▶ delivery thread per destination
//!                                                               ├─ TAXII 2.1 (STIX 2.1 objects)
//!                                                               ├─ syslog TLS/TCP/UDP (CEF)
//!                                                               └─ HTTPS webhook (JSON)
//! ```
//!
//! Every new alert is appended to the [`outbox::Outbox`] by the alerts thread in the same step
//! that hands it to the archive. Each destination has its own cursor and thread
//! ([`deliver::Delivery`]): at least once, in order, with retries, backoff, a rate limit and
//! dead letters. The alert id is stable, so repeats are recognisable on the other side.

pub mod alert;
pub mod cef;
pub mod deliver;
pub mod dest;
pub mod http;
pub mod outbox;
pub mod stix;
pub mod syslog;
pub mod taxii;
pub mod tls;
pub mod webhook;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

pub use alert::ForwardAlert;
pub use dest::Destination;
pub use outbox::{Outbox, OutboxConfig};

use canh_metrics::Metrics;

/// The delivery threads of every destination.
#[derive(Debug)]
pub struct Forwarder {
    outbox: Arc<Outbox>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Forwarder {
    /// Starts delivery to every destination. Every destination is checked first (TLS files,
    /// names): one error per bad destination, none started.
    pub fn start(
        outbox: Arc<Outbox>,
        destinations: &[Destination],
        metrics: &Metrics,
    ) -> Result<Forwarder, Vec<String>> {
        let mut errors = Vec::new();
        let mut deliveries = Vec::new();
        for d in destinations {
            let url = describe(d);
            match deliver::Delivery::new(d.clone(), url, outbox.clone(), metrics.clone()) {
                Ok(del) => deliveries.push(del),
                Err(e) => errors.push(format!("forward {:?}: {e}", d.name)),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for mut del in deliveries {
            let stop = stop.clone();
            let metrics = metrics.clone();
            let name = format!("forward-{}", del.name());
            let spawned = std::thread::Builder::new()
                .name(name.chars().take(15).collect())
                .spawn(move || {
                    // A bug that panics must not end delivery for good: count it, wait, and
                    // go on from the acknowledged cursor.
                    while !stop.load(Ordering::Acquire) {
                        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            del.run(&stop)
                        }));
                        if run.is_ok() {
                            break;
                        }
                        tracing::error!(destination = %del.name(), "delivery failed unexpectedly; restarting it in 1 s");
                        metrics.error("forward", "panic");
                        std::thread::sleep(std::time::Duration::from_secs(1));
                    }
                });
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => errors.push(format!("cannot start a delivery thread: {e}")),
            }
        }
        let f = Forwarder {
            outbox,
            stop,
            threads,
        };
        if errors.is_empty() {
            Ok(f)
        } else {
            f.stop();
            Err(errors)
        }
    }

    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    /// Waits up to `grace` for every destination to acknowledge everything appended so far
    /// (at shutdown: a destination that is down does not hold the shutdown longer).
    pub fn drain(&self, grace: std::time::Duration) {
        let end = self.outbox.committed();
        let until = std::time::Instant::now() + grace;
        while std::time::Instant::now() < until {
            if self.outbox.min_cursor().is_none_or(|c| c >= end) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Stops every delivery thread (what is not delivered stays in the outbox).
    pub fn stop(self) {
        self.stop.store(true, Ordering::Release);
        self.outbox.wake_all();
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// A destination for messages: its protocol and address, without secrets.
pub fn describe(d: &Destination) -> String {
    match &d.kind {
        dest::Kind::Taxii {
            base,
            api_root,
            collection,
        } => format!("taxii+{base}{api_root}collections/{collection}/"),
        dest::Kind::Syslog {
            transport,
            host,
            port,
        } => {
            let t = match transport {
                dest::SyslogTransport::Tls => "tls",
                dest::SyslogTransport::Tcp => "tcp",
                dest::SyslogTransport::Udp => "udp",
            };
            if host.contains(':') {
                format!("syslog+{t}://[{host}]:{port}")
            } else {
                format!("syslog+{t}://{host}:{port}")
            }
        }
        dest::Kind::Webhook { url } => url.clone(),
    }
}

/// One destination's line of `canh forward status`.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub name: String,
    pub cursor: u64,
    /// Outbox records not yet acknowledged by it.
    pub pending: u64,
    pub state: Option<deliver::State>,
    /// A replay asked for and not yet carried out.
    pub replay_pending: bool,
}

/// The outbox's last seq and every destination's standing, read from the outbox folder (safe
/// beside a running instance).
pub fn status(dir: &Path) -> std::io::Result<(u64, Vec<Status>)> {
    let last = outbox::last_seq(dir)?;
    let mut out = Vec::new();
    for (name, cursor) in outbox::read_cursors(dir)? {
        out.push(Status {
            pending: (last + 1).saturating_sub(cursor),
            state: deliver::read_state(dir, &name),
            replay_pending: deliver::replay_path(dir, &name).exists(),
            name,
            cursor,
        });
    }
    Ok((last, out))
}
