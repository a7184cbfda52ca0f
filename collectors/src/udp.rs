//! UDP listeners (syslog and flow exports): blocking receive threads, one per `SO_REUSEPORT` socket, `recvmmsg`.

use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use canh_metrics::{DropReason, Metrics};
use canh_schema::raw::now_ns;
use canh_schema::{RawChunk, Transport};
use socket2::{Domain, Protocol, Socket, Type};
use tracing::{debug, warn};

use crate::{Closed, Dispatch, Shutdown};

/// Datagrams received per `recvmmsg` call and per chunk. 64 amortises the system call and the
/// channel hand-off; more only grows the per-thread buffer (64 × max message size).
const BATCH: usize = 64;

/// How long a receive waits before checking for shutdown.
const POLL: Duration = Duration::from_millis(200);

/// Datagrams gathered into one chunk at most, …
const CHUNK_DATAGRAMS: usize = 256;

/// … and for at most this long after the first one arrived (the latency it adds).
const COALESCE: Duration = Duration::from_millis(2);

/// How often the kernel's drop counter is read.
const KERNEL_DROPS_EVERY: Duration = Duration::from_secs(1);

/// A UDP syslog listener's settings.
#[derive(Debug, Clone)]
pub struct UdpConfig {
    pub name: Arc<str>,
    pub addr: SocketAddr,
    /// Sockets (and threads) bound to the address with `SO_REUSEPORT`.
    pub sockets: usize,
    /// `SO_RCVBUF` in bytes (the kernel may cap it at `net.core.rmem_max`).
    pub receive_buffer: usize,
    /// Longer datagrams are dropped and counted as `oversize`.
    pub max_message_size: usize,
    /// What the datagrams are: syslog messages ([`Transport::Udp`]) or flow exports
    /// ([`Transport::Netflow`]); the chunks carry it to the parsers.
    pub transport: Transport,
}

/// A running UDP listener.
#[derive(Debug)]
pub struct UdpListener {
    pub local_addr: SocketAddr,
    threads: Vec<JoinHandle<()>>,
}

impl UdpListener {
    /// Waits for every receive thread to finish (after shutdown).
    pub fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Binds a socket with `SO_REUSEPORT` (dual-stack when the address is `[::]`; on a host without
/// IPv6, `[::]` falls back to `0.0.0.0`).
pub(crate) fn bind_socket(addr: SocketAddr, ty: Type, protocol: Protocol) -> io::Result<Socket> {
    let socket = match Socket::new(Domain::for_address(addr), ty, Some(protocol)) {
        Err(e)
            if addr.ip() == std::net::Ipv6Addr::UNSPECIFIED
                && e.raw_os_error() == Some(libc::EAFNOSUPPORT) =>
        {
            let v4 = SocketAddr::from(([0, 0, 0, 0], addr.port()));
            return bind_socket(v4, ty, protocol);
        }
        other => other?,
    };
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// Binds the sockets and starts one receive thread per socket.
pub fn start(
    cfg: &UdpConfig,
    dispatch: Dispatch,
    shutdown: Shutdown,
    metrics: Metrics,
) -> io::Result<UdpListener> {
    let mut local_addr = cfg.addr;
    let mut threads = Vec::new();
    for i in 0..cfg.sockets.max(1) {
        let socket = bind_socket(local_addr, Type::DGRAM, Protocol::UDP)?;
        socket.set_recv_buffer_size(cfg.receive_buffer)?;
        socket.set_read_timeout(Some(POLL))?;
        if i == 0 {
            local_addr = socket.local_addr()?.as_socket().unwrap_or(cfg.addr);
        }
        let rx = Receiver {
            socket,
            name: cfg.name.clone(),
            max: cfg.max_message_size,
            transport: cfg.transport,
            key: dispatch.assign(),
            dispatch: dispatch.clone(),
            shutdown: shutdown.clone(),
            metrics: metrics.clone(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("udp-{}-{i}", cfg.name))
            .spawn(move || rx.run())?;
        threads.push(thread);
    }
    Ok(UdpListener {
        local_addr,
        threads,
    })
}

/// Waits up to `timeout` for the socket to become readable.
fn wait_readable(fd: i32, timeout: Duration) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: one valid pollfd and a valid timespec; no signal mask change.
    let r = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
    r > 0 && pfd.revents & libc::POLLIN != 0
}

struct Receiver {
    socket: Socket,
    name: Arc<str>,
    transport: Transport,
    max: usize,
    key: usize,
    dispatch: Dispatch,
    shutdown: Shutdown,
    metrics: Metrics,
}

impl Receiver {
    /// Counts and queues a chunk, waiting while the parsers' queue is full (datagrams wait in
    /// the socket buffer meanwhile, and the kernel counts what overflows it, which is reported
    /// while the wait lasts); false when the parsers are gone.
    fn hand_on(&self, chunk: RawChunk, kernel: &mut KernelDrops) -> bool {
        if chunk.is_empty() {
            return true;
        }
        self.metrics
            .received(&self.name, chunk.len() as u64, chunk.buf.len() as u64);
        let mut chunk = chunk;
        loop {
            match self
                .dispatch
                .send_timeout(self.key, chunk, KERNEL_DROPS_EVERY)
            {
                Ok(()) => return true,
                Err(Err(Closed)) => return false,
                Err(Ok(c)) => {
                    kernel.report_now(&self.metrics, &self.name);
                    chunk = c;
                }
            }
        }
    }

    fn run(self) {
        let fd = self.socket.as_raw_fd();
        // One extra byte so a datagram of exactly `max` bytes is not mistaken for a longer one.
        let cap = self.max + 1;
        let mut bufs: Vec<Vec<u8>> = (0..BATCH).map(|_| vec![0u8; cap]).collect();
        // SAFETY: all-zero bytes are a valid (empty) sockaddr_storage.
        let mut addrs: Vec<libc::sockaddr_storage> = (0..BATCH)
            .map(|_| unsafe { MaybeUninit::zeroed().assume_init() })
            .collect();
        let mut iovecs: Vec<libc::iovec> = bufs
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: b.len(),
            })
            .collect();
        // SAFETY: all-zero bytes are a valid mmsghdr; the pointers are filled in below.
        let mut msgs: Vec<libc::mmsghdr> = (0..BATCH)
            .map(|_| unsafe { MaybeUninit::zeroed().assume_init() })
            .collect();
        for i in 0..BATCH {
            msgs[i].msg_hdr.msg_iov = &mut iovecs[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
        }
        let mut kernel = KernelDrops::new(fd);
        let mut draining = false;
        // The chunk being filled and when its first datagram arrived. Datagrams are gathered for
        // up to COALESCE or CHUNK_DATAGRAMS before the chunk is handed on: when the receiver
        // keeps up with its senders each `recvmmsg` returns one or two datagrams, and a chunk
        // (and a parser wake-up) per datagram would cost more than the parsing.
        let mut pending: Option<(RawChunk, Instant)> = None;
        loop {
            if !draining && self.shutdown.is_triggered() {
                draining = true;
            }
            let flags = match &pending {
                _ if draining => libc::MSG_DONTWAIT,
                None => libc::MSG_WAITFORONE,
                Some((chunk, started)) => {
                    let left = COALESCE.saturating_sub(started.elapsed());
                    if chunk.len() >= CHUNK_DATAGRAMS || left.is_zero() || !wait_readable(fd, left)
                    {
                        if let Some((chunk, _)) = pending.take() {
                            if !self.hand_on(chunk, &mut kernel) {
                                return;
                            }
                        }
                        kernel.report(&self.metrics, &self.name);
                        continue;
                    }
                    libc::MSG_DONTWAIT
                }
            };
            for m in msgs.iter_mut() {
                m.msg_hdr.msg_namelen =
                    std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                m.msg_hdr.msg_flags = 0;
                m.msg_len = 0;
            }
            // SAFETY: `msgs` holds BATCH headers whose iovecs and name buffers point into
            // `bufs` and `addrs`, which live (unmoved) for the whole loop.
            let n = unsafe {
                libc::recvmmsg(
                    fd,
                    msgs.as_mut_ptr(),
                    BATCH as libc::c_uint,
                    flags,
                    std::ptr::null_mut(),
                )
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                match err.kind() {
                    io::ErrorKind::WouldBlock
                    | io::ErrorKind::TimedOut
                    | io::ErrorKind::Interrupted => {}
                    _ => {
                        warn!(listener = %self.name, error = %err, "udp receive failed");
                        self.metrics.error("collector", "udp_receive");
                        std::thread::sleep(POLL);
                    }
                }
                if let Some((chunk, _)) = pending.take() {
                    if !self.hand_on(chunk, &mut kernel) {
                        return;
                    }
                }
                if draining {
                    break;
                }
                kernel.report(&self.metrics, &self.name);
                continue;
            }
            let n = n as usize;
            let (chunk, _) = pending.get_or_insert_with(|| {
                (
                    RawChunk::new(
                        self.name.clone(),
                        self.transport,
                        now_ns(),
                        CHUNK_DATAGRAMS * 512,
                    ),
                    Instant::now(),
                )
            });
            let mut oversize = 0;
            let mut empty = 0;
            for i in 0..n {
                let len = msgs[i].msg_len as usize;
                if len > self.max || msgs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                    oversize += 1;
                    continue;
                }
                // A syslog datagram may end in a newline or NULs; an export packet's bytes
                // are all data (padding included).
                let data = match self.transport {
                    Transport::Netflow => &bufs[i][..len],
                    _ => canh_schema::raw::trim_line_end(&bufs[i][..len]),
                };
                if data.is_empty() {
                    empty += 1;
                    continue;
                }
                let peer = sockaddr_to_std(&addrs[i])
                    .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), canonical);
                chunk.push(data, peer);
            }
            self.metrics
                .dropped(&self.name, DropReason::Oversize, oversize);
            self.metrics.dropped(&self.name, DropReason::Empty, empty);
        }
        if let Some((chunk, _)) = pending.take() {
            self.hand_on(chunk, &mut kernel);
        }
        kernel.report_now(&self.metrics, &self.name);
        debug!(listener = %self.name, "udp receiver stopped");
    }
}

/// The address the kernel wrote into a `sockaddr_storage`.
fn sockaddr_to_std(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which it is large enough for.
            let sin: &libc::sockaddr_in = unsafe { &*(ss as *const libc::sockaddr_storage).cast() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::from((ip, u16::from_be(sin.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6: &libc::sockaddr_in6 =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast() };
            let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::from((ip, u16::from_be(sin6.sin6_port))))
        }
        _ => None,
    }
}

/// An IPv4 address seen through a dual-stack socket (`::ffff:10.1.2.3`) as plain IPv4.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// The kernel's count of datagrams dropped on one socket (receive buffer full), read from
/// `/proc/net/udp{,6}` by the socket's inode and reported as deltas.
struct KernelDrops {
    inode: u64,
    seen: u64,
    last: Instant,
}

impl KernelDrops {
    fn new(fd: i32) -> KernelDrops {
        // SAFETY: fstat writes into the zeroed struct; fd is a valid open socket.
        let inode = unsafe {
            let mut st: libc::stat = MaybeUninit::zeroed().assume_init();
            if libc::fstat(fd, &mut st) == 0 {
                st.st_ino
            } else {
                0
            }
        };
        KernelDrops {
            inode,
            seen: 0,
            last: Instant::now(),
        }
    }

    fn report(&mut self, metrics: &Metrics, listener: &str) {
        if self.last.elapsed() >= KERNEL_DROPS_EVERY {
            self.report_now(metrics, listener);
        }
    }

    fn report_now(&mut self, metrics: &Metrics, listener: &str) {
        self.last = Instant::now();
        if let Some(total) = socket_drops(self.inode) {
            metrics.dropped(
                listener,
                DropReason::Kernel,
                total.saturating_sub(self.seen),
            );
            self.seen = self.seen.max(total);
        }
    }
}

/// The `drops` column of `/proc/net/udp` or `/proc/net/udp6` for the socket with this inode.
pub fn socket_drops(inode: u64) -> Option<u64> {
    let inode = inode.to_string();
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.get(9) == Some(&inode.as_str()) {
                return cols.get(12).and_then(|d| d.parse().ok());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_drop_counter_is_read_and_reported_for_a_real_socket() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket2::SockRef::from(&rx)
            .set_recv_buffer_size(4096)
            .expect("rcvbuf");
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let to = rx.local_addr().expect("addr");
        // Nobody reads `rx`: after a few datagrams its buffer is full and the kernel drops.
        for _ in 0..500 {
            let _ = tx.send_to(&[b'x'; 1000], to);
        }
        let mut kernel = KernelDrops::new(rx.as_raw_fd());
        let drops = socket_drops(kernel.inode).expect("socket found in /proc/net/udp");
        assert!(drops > 0, "the kernel dropped datagrams");
        let metrics = Metrics::new();
        kernel.report_now(&metrics, "t");
        let text = metrics.render();
        let line = text.lines().find(|l| {
            l.starts_with("canh_collector_dropped_messages_total{listener=\"t\",reason=\"kernel\"}")
        });
        let reported: u64 = line
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert_eq!(reported, drops);
        kernel.report_now(&metrics, "t");
        assert!(
            metrics
                .render()
                .contains(&format!("reason=\"kernel\"}} {drops}")),
            "deltas, not totals, are added"
        );
    }
}
