//! Framed raw bytes: what a collector hands to the parsers.
//!
//! A collector frames bytes into messages and stamps them, but never looks at their content. To
//! keep per-message overhead off the hot path, many frames share one buffer and one header.

use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;

/// How the bytes arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    /// Lines read from a file or stdin (`canh parse`, replay).
    File,
    /// NetFlow v5/v9 or IPFIX export datagrams over UDP: rows of the `flows` table.
    Netflow,
}

impl Transport {
    /// The value stored in `input.type`. (TLS joins when its listener does.)
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::File => "file",
            Transport::Netflow => "netflow",
        }
    }
}

/// One message inside a [`RawChunk`].
#[derive(Debug, Clone)]
pub struct Frame {
    /// Where the message lies in [`RawChunk::buf`].
    pub range: Range<u32>,
    /// The sender (for UDP each datagram may come from a different one).
    pub peer: SocketAddr,
}

/// Framed messages from one listener, received at (nearly) one moment.
#[derive(Debug, Clone)]
pub struct RawChunk {
    /// The configured name of the listener that received the bytes.
    pub listener: Arc<str>,
    pub transport: Transport,
    /// Receive time, UTC nanoseconds since the epoch.
    pub received_ns: i64,
    /// The bytes of every frame, back to back.
    pub buf: Vec<u8>,
    pub frames: Vec<Frame>,
}

impl RawChunk {
    /// An empty chunk with room for `bytes` of messages.
    pub fn new(listener: Arc<str>, transport: Transport, received_ns: i64, bytes: usize) -> Self {
        RawChunk {
            listener,
            transport,
            received_ns,
            buf: Vec::with_capacity(bytes),
            frames: Vec::new(),
        }
    }

    /// Appends one message.
    pub fn push(&mut self, msg: &[u8], peer: SocketAddr) {
        let start = self.buf.len() as u32;
        self.buf.extend_from_slice(msg);
        self.frames.push(Frame {
            range: start..self.buf.len() as u32,
            peer,
        });
    }

    /// The bytes of one frame.
    pub fn frame_bytes(&self, frame: &Frame) -> &[u8] {
        self.buf
            .get(frame.range.start as usize..frame.range.end as usize)
            .unwrap_or(&[])
    }

    /// Iterates over `(message bytes, sender)`.
    pub fn messages(&self) -> impl Iterator<Item = (&[u8], SocketAddr)> {
        self.frames.iter().map(|f| (self.frame_bytes(f), f.peer))
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

/// A message without what framing leaves at its end: `\n`, `\r\n`, NULs.
pub fn trim_line_end(mut b: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r' | b'\0'] = b {
        b = rest;
    }
    b
}

/// The current time as UTC nanoseconds since the epoch.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}
