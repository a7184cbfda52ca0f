//! Collectors: network input for Canh.
//!
//! A collector receives bytes, frames them into messages ([`framing`]) and stamps them with
//! their listener, sender and receive time into [`canh_schema::RawChunk`]s, which it hands to
//! the parser workers through a [`Dispatch`]. It never looks at message content.
//!
//! * [`udp`] — one blocking thread per socket, several sockets bound with `SO_REUSEPORT` so the
//!   kernel spreads datagrams across cores, `recvmmsg` to receive up to 64 datagrams per system
//!   call, datagrams gathered into one chunk for up to 2 ms or 256 datagrams (a chunk per
//!   datagram would cost a parser wake-up each), and the kernel's per-socket drop counter
//!   exported as a metric. UDP senders cannot be slowed down: when the parsers fall behind,
//!   the receive thread waits for room in their queue and datagrams gather in the socket's
//!   receive buffer, which absorbs bursts; what overflows it the kernel drops and counts
//!   (`kernel`), without Canh spending CPU on receiving datagrams only to discard them.
//! * [`tcp`] — tokio tasks, one per connection, with RFC 6587 octet-counting or newline framing
//!   detected per connection. Every chunk of a connection goes to the same parser worker, which
//!   keeps per-connection order into the archive. When the worker's queue is full the connection
//!   stops reading, so TCP flow control pushes back on the sender instead of memory growing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use canh_schema::RawChunk;
use crossbeam_channel::{SendTimeoutError, Sender, TrySendError};

pub mod framing;
pub mod tcp;
pub mod udp;

/// The parser workers' input queues. A collector picks a queue by a key (the connection for TCP)
/// so that related messages stay in order.
#[derive(Clone, Debug)]
pub struct Dispatch {
    queues: Arc<[Sender<RawChunk>]>,
    next: Arc<AtomicUsize>,
}

/// The parser queues are gone: the engine is shutting down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

impl Dispatch {
    pub fn new(queues: Vec<Sender<RawChunk>>) -> Dispatch {
        Dispatch {
            queues: queues.into(),
            next: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A queue index for a new connection or socket, round robin.
    pub fn assign(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) % self.queues.len().max(1)
    }

    /// Queues a chunk without waiting; gives it back when the queue is full.
    pub fn try_send(&self, key: usize, chunk: RawChunk) -> Result<(), Result<RawChunk, Closed>> {
        let Some(q) = self.queues.get(key % self.queues.len().max(1)) else {
            return Err(Err(Closed));
        };
        match q.try_send(chunk) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(c)) => Err(Ok(c)),
            Err(TrySendError::Disconnected(_)) => Err(Err(Closed)),
        }
    }

    /// Queues a chunk, blocking the calling thread up to `timeout` while the queue is full:
    /// backpressure for the UDP receive threads, whose socket buffers then fill. Gives the
    /// chunk back when the time is up (`Err(Ok(chunk))`).
    pub fn send_timeout(
        &self,
        key: usize,
        chunk: RawChunk,
        timeout: Duration,
    ) -> Result<(), Result<RawChunk, Closed>> {
        let Some(q) = self.queues.get(key % self.queues.len().max(1)) else {
            return Err(Err(Closed));
        };
        match q.send_timeout(chunk, timeout) {
            Ok(()) => Ok(()),
            Err(SendTimeoutError::Timeout(c)) => Err(Ok(c)),
            Err(SendTimeoutError::Disconnected(_)) => Err(Err(Closed)),
        }
    }

    /// Queues a chunk, waiting (asynchronously) while the queue is full: backpressure. Each
    /// time the queue is found full `give_up` is asked; when it says so, the chunk comes back
    /// (`Err(Ok(chunk))`).
    pub async fn send_until(
        &self,
        key: usize,
        mut chunk: RawChunk,
        give_up: &mut (dyn FnMut() -> bool + Send),
    ) -> Result<(), Result<RawChunk, Closed>> {
        // Polling with a short sleep keeps tokio workers free while the queue is full; the delay
        // only applies when parsers are already behind, so it costs nothing in the normal case.
        let mut wait = Duration::from_micros(100);
        loop {
            match self.try_send(key, chunk) {
                Ok(()) => return Ok(()),
                Err(Err(Closed)) => return Err(Err(Closed)),
                Err(Ok(c)) if give_up() => return Err(Ok(c)),
                Err(Ok(c)) => {
                    chunk = c;
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_millis(20));
                }
            }
        }
    }
}

/// Tells collectors to stop: a watch channel readable from threads and tasks alike.
#[derive(Clone, Debug)]
pub struct Shutdown(tokio::sync::watch::Receiver<bool>);

/// The sending side of [`Shutdown`].
#[derive(Debug)]
pub struct ShutdownTrigger(tokio::sync::watch::Sender<bool>);

impl Shutdown {
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (ShutdownTrigger(tx), Shutdown(rx))
    }

    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once shutdown is triggered.
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|&v| v).await;
    }
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }
}
