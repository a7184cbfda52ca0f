//! Syslog destinations: CEF messages over TLS (RFC 5425), TCP (octet counting, RFC 6587) or
//! UDP (RFC 5426, one message per datagram).
//!
//! Syslog has no acknowledgements, so a batch counts as delivered only when TCP says the peer
//! has it: after the write, Canh waits until the socket's send queue is empty (every byte
//! acknowledged by the receiver's kernel, `SIOCOUTQ`) and the peer has not closed the
//! connection. A receiver that goes away mid-batch makes the whole batch go again on a new
//! connection: at least once, with the alert id (`externalId`) to recognise repeats. UDP is
//! delivered when sent.

use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::alert::ForwardAlert;
use crate::cef;
use crate::deliver::{Adapter, Rejected, Retry};
use crate::dest::{Destination, Kind, SyslogTransport};

enum Conn {
    Tcp(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
    Udp(UdpSocket),
}

impl Conn {
    fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Conn::Tcp(s) => Some(s),
            Conn::Tls(s) => Some(&s.sock),
            Conn::Udp(_) => None,
        }
    }
}

pub struct Syslog {
    transport: SyslogTransport,
    host: String,
    port: u16,
    hostname: String,
    timeout: Duration,
    tls: Option<Arc<rustls::ClientConfig>>,
    conn: Option<Conn>,
    buf: Vec<u8>,
}

/// This machine's name, for the HOSTNAME field.
fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

impl Syslog {
    pub fn new(d: &Destination) -> Result<Syslog, String> {
        let Kind::Syslog {
            transport,
            host,
            port,
        } = &d.kind
        else {
            return Err("not a syslog destination".into());
        };
        let tls = match transport {
            SyslogTransport::Tls => Some(crate::tls::client_config(&d.tls)?),
            _ => None,
        };
        Ok(Syslog {
            transport: *transport,
            host: host.clone(),
            port: *port,
            hostname: d.hostname.clone().unwrap_or_else(local_hostname),
            timeout: d.timeout,
            tls,
            conn: None,
            buf: Vec::new(),
        })
    }

    fn connect(&self) -> io::Result<Conn> {
        let addrs: Vec<_> = (self.host.as_str(), self.port).to_socket_addrs()?.collect();
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
        for addr in addrs {
            if self.transport == SyslogTransport::Udp {
                let bind = if addr.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let s = UdpSocket::bind(bind)?;
                s.connect(addr)?;
                return Ok(Conn::Udp(s));
            }
            match TcpStream::connect_timeout(&addr, self.timeout) {
                Ok(s) => {
                    s.set_nodelay(true)?;
                    s.set_write_timeout(Some(self.timeout))?;
                    s.set_read_timeout(Some(self.timeout))?;
                    let Some(tls) = &self.tls else {
                        return Ok(Conn::Tcp(s));
                    };
                    let name = rustls::pki_types::ServerName::try_from(self.host.clone())
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                    let c = rustls::ClientConnection::new(tls.clone(), name)
                        .map_err(io::Error::other)?;
                    let mut stream = rustls::StreamOwned::new(c, s);
                    // Complete the handshake now, so that a refused certificate shows here.
                    while stream.conn.is_handshaking() {
                        stream.conn.complete_io(&mut stream.sock)?;
                    }
                    return Ok(Conn::Tls(Box::new(stream)));
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Waits until every byte written has been acknowledged by the peer and the peer is
    /// still there.
    fn confirm(s: &TcpStream, timeout: Duration) -> io::Result<()> {
        let fd = s.as_raw_fd();
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_micros(50);
        loop {
            peer_open(fd)?;
            let mut queued: libc::c_int = 0;
            // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one int for a TCP socket we own.
            let rc = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut queued) };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            if queued == 0 {
                return peer_open(fd);
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{queued} bytes not acknowledged by the receiver"),
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    fn write_batch(&mut self, alerts: &[ForwardAlert]) -> io::Result<()> {
        if self.conn.is_none() {
            self.conn = Some(self.connect()?);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(io::Error::other("no connection"));
        };
        if let Some(s) = conn.tcp() {
            // A receiver that closed since the last batch: find out before writing into a
            // dead connection.
            peer_open(s.as_raw_fd())?;
        }
        self.buf.clear();
        match conn {
            Conn::Udp(s) => {
                for a in alerts {
                    let msg = cef::syslog_message(a, &self.hostname);
                    s.send(msg.as_bytes())?;
                }
                return Ok(());
            }
            Conn::Tcp(_) | Conn::Tls(_) => {
                for a in alerts {
                    cef::frame(&mut self.buf, &cef::syslog_message(a, &self.hostname));
                }
            }
        }
        match conn {
            Conn::Tcp(s) => {
                s.write_all(&self.buf)?;
                s.flush()?;
            }
            Conn::Tls(s) => {
                s.write_all(&self.buf)?;
                s.flush()?;
            }
            Conn::Udp(_) => {}
        }
        if let Some(s) = conn.tcp() {
            Self::confirm(s, self.timeout)?;
        }
        Ok(())
    }
}

/// Fails when the peer has closed the connection (or reset it). Anything the receiver sent
/// (syslog receivers send nothing; TLS may send a closing alert) is left unread.
fn peer_open(fd: i32) -> io::Result<()> {
    let mut b = [0u8; 1];
    // SAFETY: a one-byte peek into a local buffer on a socket we own.
    let n = unsafe {
        libc::recv(
            fd,
            b.as_mut_ptr().cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    match n {
        0 => Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "the receiver closed the connection",
        )),
        n if n > 0 => Ok(()),
        _ => {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                Ok(())
            } else {
                Err(e)
            }
        }
    }
}

impl Adapter for Syslog {
    fn send(&mut self, alerts: &[ForwardAlert]) -> Result<Vec<Rejected>, Retry> {
        match self.write_batch(alerts) {
            Ok(()) => Ok(Vec::new()),
            Err(e) => {
                self.conn = None;
                Err(Retry::new(format!("{}:{}: {e}", self.host, self.port)))
            }
        }
    }
}
