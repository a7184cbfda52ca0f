//! Syslog over TCP: one tokio task per connection, RFC 6587 framing detected per connection.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

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

/// Bytes asked of the socket per read; one read becomes one chunk of messages.
const READ_SIZE: usize = 64 * 1024;

/// After shutdown, a connection is read until its sender closes it or sends nothing for this
/// long, so what was already sent before the signal reaches the archive.
pub const DRAIN_QUIET: Duration = Duration::from_millis(500);

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
        let mut stopping = self.shutdown.is_triggered();
        loop {
            let quiet = if stopping {
                DRAIN_QUIET
            } else {
                self.cfg.idle_timeout
            };
            buf.reserve(READ_SIZE);
            let read = tokio::select! {
                r = tokio::time::timeout(quiet, stream.read_buf(&mut buf)) => r,
                _ = self.shutdown.wait(), if !stopping => {
                    stopping = true;
                    continue;
                }
            };
            match read {
                Ok(Ok(0)) => break,
                Ok(Ok(_)) => {
                    let mut chunk =
                        RawChunk::new(name.clone(), Transport::Tcp, now_ns(), buf.len());
                    let d = framer.frames(&mut buf, |m| chunk.push(m, self.peer));
                    if self.hand_on(chunk, d).await.is_err() {
                        break;
                    }
                }
                Ok(Err(e)) => {
                    debug!(listener = %name, error = %e, "connection read failed");
                    break;
                }
                Err(_) if stopping => break,
                Err(_) => {
                    debug!(listener = %name, "idle connection closed");
                    break;
                }
            }
        }
        let mut chunk = RawChunk::new(name.clone(), Transport::Tcp, now_ns(), buf.len());
        let d = framer.finish(&mut buf, |m| chunk.push(m, self.peer));
        let _ = self.hand_on(chunk, d).await;
        self.metrics.connection_closed(&name);
    }

    async fn hand_on(&mut self, chunk: RawChunk, d: Discards) -> Result<(), crate::Closed> {
        self.metrics
            .dropped(&self.cfg.name, DropReason::Oversize, d.oversize);
        self.metrics
            .dropped(&self.cfg.name, DropReason::Empty, d.empty);
        if chunk.is_empty() {
            return Ok(());
        }
        self.metrics
            .received(&self.cfg.name, chunk.len() as u64, chunk.buf.len() as u64);
        self.dispatch.send(self.key, chunk).await
    }
}
