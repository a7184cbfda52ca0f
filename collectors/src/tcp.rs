//! Syslog over TCP: one tokio task per connection, RFC 6587 framing detected per connection.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use canh_metrics::{DropReason, Metrics};
use canh_schema::raw::now_ns;
use canh_schema::{RawChunk, Transport};
use socket2::{Protocol, Type};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::framing::{Discards, Framer, Framing};
use crate::udp::{bind_socket, canonical};
use crate::{Dispatch, Shutdown};

/// Bytes asked of the socket per read.
const READ_SIZE: usize = 64 * 1024;

/// A connection's chunk is handed on once it holds this many bytes, …
const CHUNK_BYTES: usize = 64 * 1024;

/// … or this long after its first read (the latency it adds).
const COALESCE: Duration = Duration::from_millis(2);

/// After shutdown, a connection is read until its sender closes it or sends nothing for this
/// long, so what was already sent before the signal reaches the archive.
pub const DRAIN_QUIET: Duration = Duration::from_millis(500);

/// The longest a connection is drained after shutdown, however busy its sender.
pub const DRAIN_MAX: Duration = Duration::from_secs(5);

/// A TCP syslog listener's settings.
#[derive(Debug, Clone)]
pub struct TcpConfig {
    pub name: Arc<str>,
    pub addr: SocketAddr,
    /// Connections beyond this are accepted and closed at once, and counted.
    pub max_connections: usize,
    /// A connection that sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// Longer messages are dropped and counted as `oversize`.
    pub max_message_size: usize,
    pub framing: Framing,
}

/// Binds the listening socket (dual-stack for `[::]`).
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = bind_socket(addr, Type::STREAM, Protocol::TCP)?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    TcpListener::from_std(socket.into())
}

/// Accepts connections until shutdown, then waits for every connection to drain.
pub async fn serve(
    listener: TcpListener,
    cfg: TcpConfig,
    dispatch: Dispatch,
    mut shutdown: Shutdown,
    metrics: Metrics,
) {
    let cfg = Arc::new(cfg);
    let permits = Arc::new(Semaphore::new(cfg.max_connections));
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: back off rather than spin.
                        warn!(listener = %cfg.name, error = %e, "accept failed");
                        metrics.error("collector", "tcp_accept");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    metrics.dropped(&cfg.name, DropReason::ConnectionLimit, 1);
                    drop(stream);
                    continue;
                };
                let conn = Connection {
                    peer: canonical(peer),
                    cfg: cfg.clone(),
                    key: dispatch.assign(),
                    dispatch: dispatch.clone(),
                    shutdown: shutdown.clone(),
                    metrics: metrics.clone(),
                };
                conns.spawn(async move {
                    conn.run(stream).await;
                    drop(permit);
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    info!(listener = %cfg.name, open = conns.len(), "tcp listener closed, draining connections");
    while conns.join_next().await.is_some() {}
}

struct Connection {
    peer: SocketAddr,
    cfg: Arc<TcpConfig>,
    /// The parser queue every chunk of this connection goes to, which keeps its order.
    key: usize,
    dispatch: Dispatch,
    shutdown: Shutdown,
    metrics: Metrics,
}

impl Connection {
    async fn run(mut self, mut stream: TcpStream) {
        let name = self.cfg.name.clone();
        self.metrics.connection_opened(&name);
        let mut framer = Framer::new(self.cfg.framing, self.cfg.max_message_size);
        let mut buf: Vec<u8> = Vec::with_capacity(READ_SIZE);
        // Set at shutdown: the connection is read until its sender is quiet for DRAIN_QUIET,
        // but never past this deadline (a device that never pauses must not keep Canh running).
        let mut drain_until = self
            .shutdown
            .is_triggered()
            .then(|| Instant::now() + DRAIN_MAX);
        // Frames read but not yet handed on, and when the first of them was read. A sender that
        // writes message by message makes every read small; a read and a parser wake-up per
        // message cost 2.5x the CPU per message (measured at 100k msg/s with loggen). So after
        // a small read the connection waits out COALESCE and reads what gathered, and a chunk
        // is handed on at CHUNK_BYTES or COALESCE after its first read.
        let mut pending: Option<(RawChunk, Instant)> = None;
        let mut last_read_small = false;
        loop {
            let mut quiet = match drain_until {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        debug!(listener = %name, "drain deadline reached; closing a busy connection");
                        break;
                    }
                    left.min(DRAIN_QUIET)
                }
                None => self.cfg.idle_timeout,
            };
            if let Some((chunk, started)) = &pending {
                let left = COALESCE.saturating_sub(started.elapsed());
                if left.is_zero() || chunk.buf.len() >= CHUNK_BYTES {
                    if let Some((chunk, _)) = pending.take() {
                        if self.hand_on(chunk, &mut drain_until).await.is_err() {
                            break;
                        }
                    }
                    continue;
                }
                if last_read_small && drain_until.is_none() {
                    // Let the kernel gather the sender's next writes: one read of many
                    // messages instead of a read (a timer, a wake-up) per message.
                    last_read_small = false;
                    tokio::time::sleep(left).await;
                    continue;
                }
                quiet = quiet.min(left);
            }
            buf.reserve(READ_SIZE);
            let read = tokio::select! {
                r = tokio::time::timeout(quiet, stream.read_buf(&mut buf)) => r,
                _ = self.shutdown.wait(), if drain_until.is_none() => {
                    drain_until = Some(Instant::now() + DRAIN_MAX);
                    continue;
                }
            };
            match read {
                Ok(Ok(0)) => break,
                Ok(Ok(n)) => {
                    last_read_small = n < READ_SIZE / 2;
                    // Sized by what was read: a quiet connection's one message should not
                    // hold a 64 KiB buffer.
                    let (chunk, _) = pending.get_or_insert_with(|| {
                        (
                            RawChunk::new(name.clone(), Transport::Tcp, now_ns(), buf.len()),
                            Instant::now(),
                        )
                    });
                    let d = framer.frames(&mut buf, |m| chunk.push(m, self.peer));
                    self.count_discards(d);
                }
                Ok(Err(e)) => {
                    debug!(listener = %name, error = %e, "connection read failed");
                    break;
                }
                // The wait for more of a pending chunk ended: hand it on next round.
                Err(_) if pending.is_some() => {}
                Err(_) if drain_until.is_some() => break,
                Err(_) => {
                    debug!(listener = %name, "idle connection closed");
                    break;
                }
            }
        }
        let (mut chunk, _) = pending.take().unwrap_or_else(|| {
            (
                RawChunk::new(name.clone(), Transport::Tcp, now_ns(), buf.len()),
                Instant::now(),
            )
        });
        let d = framer.finish(&mut buf, |m| chunk.push(m, self.peer));
        self.count_discards(d);
        let _ = self.hand_on(chunk, &mut drain_until).await;
        self.metrics.connection_closed(&name);
    }

    fn count_discards(&self, d: Discards) {
        self.metrics
            .dropped(&self.cfg.name, DropReason::Oversize, d.oversize);
        self.metrics
            .dropped(&self.cfg.name, DropReason::Empty, d.empty);
    }

    /// Queues a chunk, waiting while the parsers are behind (backpressure); once shutdown
    /// has begun (noticed here too, and then `drain_until` is set) not past the drain
    /// deadline: a chunk that cannot be queued by then is dropped and counted (`queue_full`)
    /// rather than keep Canh from stopping.
    async fn hand_on(
        &mut self,
        chunk: RawChunk,
        drain_until: &mut Option<Instant>,
    ) -> Result<(), crate::Closed> {
        if chunk.is_empty() {
            return Ok(());
        }
        let messages = chunk.len() as u64;
        self.metrics
            .received(&self.cfg.name, messages, chunk.buf.len() as u64);
        let shutdown = &self.shutdown;
        let mut past_deadline = || {
            if drain_until.is_none() && shutdown.is_triggered() {
                *drain_until = Some(Instant::now() + DRAIN_MAX);
            }
            drain_until.is_some_and(|d| Instant::now() >= d)
        };
        match self
            .dispatch
            .send_until(self.key, chunk, &mut past_deadline)
            .await
        {
            Ok(()) => Ok(()),
            Err(Err(closed)) => Err(closed),
            Err(Ok(_)) => {
                warn!(
                    listener = %self.cfg.name,
                    messages,
                    "drain deadline reached with the parser queue full: messages dropped"
                );
                self.metrics
                    .dropped(&self.cfg.name, DropReason::QueueFull, messages);
                Err(crate::Closed)
            }
        }
    }
}
