//! Load generation for Canh's benchmarks and end-to-end tests.
//!
//! [`Mix`] makes realistic syslog lines (FortiGate traffic in key=value, sshd and sudo auth,
//! Cisco IOS switch events, iptables kernel lines), varied by a seeded generator so runs repeat.
//! [`run`] sends them, or lines from a file, over TCP (newline or octet-counting framing, several
//! connections) or UDP, flat out or at a target rate, and reports what it sent.

pub mod flows;

/// The benchmarks measure code as the `canh` binary runs it: with the same allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::{self, BufWriter, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A small, fast, seeded generator (xorshift64*); quality is ample for picking test values.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const USERS: [&str; 6] = [
    "root",
    "admin",
    "nguyenvana",
    "tranthib",
    "oracle",
    "backup",
];
const HOSTS: [&str; 4] = [
    "fw01.sotttt.gov.vn",
    "sw-core-02",
    "srv-portal",
    "fw02.soyte.gov.vn",
];

/// Realistic syslog lines: 50% firewall, 30% auth, 20% switch (the peers' load has the same
/// proportions).
#[derive(Debug, Clone)]
pub struct Mix {
    rng: Rng,
    /// Emit RFC 5424 headers instead of RFC 3164.
    pub rfc5424: bool,
}

impl Mix {
    pub fn new(seed: u64, rfc5424: bool) -> Mix {
        Mix {
            rng: Rng::new(seed),
            rfc5424,
        }
    }

    fn ip(&mut self, private: bool) -> String {
        let r = self.rng.next_u64();
        if private {
            format!(
                "10.{}.{}.{}",
                (r >> 8) % 64,
                (r >> 16) % 256,
                1 + (r >> 24) % 254
            )
        } else {
            format!(
                "{}.{}.{}.{}",
                1 + (r >> 8) % 223,
                (r >> 16) % 256,
                (r >> 24) % 256,
                1 + (r >> 32) % 254
            )
        }
    }

    /// Appends one line (without newline) to `out`.
    pub fn line(&mut self, out: &mut Vec<u8>) {
        let kind = self.rng.below(10);
        let (pri, host, app, pid, msg) = match kind {
            0..=4 => {
                let (src, dst) = (self.ip(true), self.ip(false));
                let sport = 1024 + self.rng.below(60_000);
                let dport = [53, 80, 443, 22, 3389][self.rng.below(5) as usize];
                let action = ["accept", "deny", "close", "timeout"][self.rng.below(4) as usize];
                let msg = format!(
                    "date=2026-11-23 time=10:{:02}:{:02} devname=\"FGT-{}\" devid=\"FG100F{:07}\" logid=\"0000000013\" type=\"traffic\" subtype=\"forward\" level=\"notice\" vd=\"root\" srcip={src} srcport={sport} srcintf=\"port1\" dstip={dst} dstport={dport} dstintf=\"wan1\" sessionid={} proto=6 action=\"{action}\" policyid={} service=\"HTTPS\" sentbyte={} rcvdbyte={} sentpkt={} rcvdpkt={}",
                    self.rng.below(60), self.rng.below(60), self.rng.below(300), self.rng.below(10_000_000), self.rng.next_u64() % 100_000_000,
                    self.rng.below(200), self.rng.below(1_000_000), self.rng.below(10_000_000), self.rng.below(5000), self.rng.below(9000)
                );
                (189, HOSTS[0], "fortigate", None, msg)
            }
            5..=7 => {
                let user = USERS[self.rng.below(USERS.len() as u64) as usize];
                let private = self.rng.below(2) == 0;
                let ip = self.ip(private);
                let msg = match self.rng.below(4) {
                    0 => format!(
                        "Failed password for {user} from {ip} port {} ssh2",
                        1024 + self.rng.below(60_000)
                    ),
                    1 => format!(
                        "Accepted publickey for {user} from {ip} port {} ssh2: RSA SHA256:x{}",
                        1024 + self.rng.below(60_000),
                        self.rng.next_u64()
                    ),
                    2 => format!(
                        "Invalid user {user}{} from {ip} port {}",
                        self.rng.below(100),
                        1024 + self.rng.below(60_000)
                    ),
                    _ => format!(
                        "pam_unix(sshd:session): session opened for user {user}(uid=0) by (uid=0)"
                    ),
                };
                (
                    38,
                    HOSTS[2],
                    "sshd",
                    Some(1000 + self.rng.below(60_000)),
                    msg,
                )
            }
            8 => {
                let port = 1 + self.rng.below(48);
                let state = ["up", "down"][self.rng.below(2) as usize];
                let msg = format!(
                    "%LINK-3-UPDOWN: Interface GigabitEthernet1/0/{port}, changed state to {state}"
                );
                (187, HOSTS[1], "switch", None, msg)
            }
            _ => {
                let (src, dst) = (self.ip(false), self.ip(true));
                let (id, spt) = (self.rng.below(65_536), 1024 + self.rng.below(60_000));
                let dpt = [22, 23, 445, 3389][self.rng.below(4) as usize];
                let msg = format!(
                    "[UFW BLOCK] IN=eth0 OUT= MAC=00:16:3e:aa:bb:cc SRC={src} DST={dst} LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID={id} DF PROTO=TCP SPT={spt} DPT={dpt} WINDOW=29200 RES=0x00 SYN URGP=0"
                );
                (4, HOSTS[3], "kernel", None, msg)
            }
        };
        let (mon, day) = (MONTHS[10], 23);
        let (h, m, s) = (
            10 + self.rng.below(2),
            self.rng.below(60),
            self.rng.below(60),
        );
        let _ = if self.rfc5424 {
            let pid = pid.map_or("-".to_owned(), |p| p.to_string());
            write!(
                out,
                "<{pri}>1 2026-11-23T{h:02}:{m:02}:{s:02}.{:03}+07:00 {host} {app} {pid} - - {msg}",
                self.rng.below(1000)
            )
        } else {
            match pid {
                Some(p) => write!(
                    out,
                    "<{pri}>{mon} {day} {h:02}:{m:02}:{s:02} {host} {app}[{p}]: {msg}"
                ),
                None => write!(
                    out,
                    "<{pri}>{mon} {day} {h:02}:{m:02}:{s:02} {host} {app}: {msg}"
                ),
            }
        };
    }
}

/// Where lines come from.
#[derive(Debug, Clone)]
pub enum Source {
    Mix {
        rfc5424: bool,
    },
    /// Lines replayed round robin.
    Lines(Arc<Vec<Vec<u8>>>),
}

/// Transport and framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Udp,
    TcpNewline,
    TcpOctet,
}

/// What to send.
#[derive(Debug, Clone)]
pub struct Spec {
    pub target: SocketAddr,
    pub proto: Proto,
    /// Lines in total (split over connections); with `duration`, whichever ends first.
    pub count: Option<u64>,
    pub duration: Option<Duration>,
    /// Lines per second over all connections; 0 = as fast as possible.
    pub rate: u64,
    pub connections: usize,
    /// Append ` seq=<n>` (per connection, from 0) so a receiver can check order and loss.
    pub seq: bool,
    pub source: Source,
    pub seed: u64,
}

/// What was sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Report {
    pub lines: u64,
    pub bytes: u64,
    pub elapsed: Duration,
}

impl Report {
    pub fn rate(&self) -> f64 {
        self.lines as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Sends the load; returns when every connection has sent its share and closed.
pub fn run(spec: &Spec) -> io::Result<Report> {
    let start = Instant::now();
    let conns = spec.connections.max(1);
    let threads: Vec<_> = (0..conns)
        .map(|i| {
            let spec = spec.clone();
            let share = spec
                .count
                .map(|c| c / conns as u64 + u64::from((i as u64) < c % conns as u64));
            std::thread::spawn(move || send_one(&spec, i, share))
        })
        .collect();
    let mut total = Report::default();
    for t in threads {
        let r = t
            .join()
            .map_err(|_| io::Error::other("sender thread panicked"))??;
        total.lines += r.lines;
        total.bytes += r.bytes;
    }
    total.elapsed = start.elapsed();
    Ok(total)
}

enum Sink {
    Tcp(BufWriter<TcpStream>),
    Udp(UdpSocket),
}

fn send_one(spec: &Spec, conn: usize, share: Option<u64>) -> io::Result<Report> {
    let mut sink = match spec.proto {
        Proto::Udp => {
            let bind: SocketAddr = if spec.target.is_ipv6() {
                "[::1]:0"
            } else {
                "127.0.0.1:0"
            }
            .parse()
            .map_err(io::Error::other)?;
            let s = UdpSocket::bind(bind)?;
            s.connect(spec.target)?;
            Sink::Udp(s)
        }
        _ => Sink::Tcp(BufWriter::with_capacity(
            256 * 1024,
            TcpStream::connect(spec.target)?,
        )),
    };
    let mut mix = Mix::new(
        spec.seed.wrapping_add(conn as u64),
        matches!(spec.source, Source::Mix { rfc5424: true }),
    );
    let per_conn_rate = spec.rate as f64 / spec.connections.max(1) as f64;
    let start = Instant::now();
    let mut report = Report::default();
    let mut line = Vec::with_capacity(1024);
    let mut frame = Vec::with_capacity(1040);
    loop {
        if share.is_some_and(|s| report.lines >= s)
            || spec.duration.is_some_and(|d| start.elapsed() >= d)
        {
            break;
        }
        if per_conn_rate > 0.0 && report.lines % 256 == 0 {
            let due = Duration::from_secs_f64(report.lines as f64 / per_conn_rate);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        line.clear();
        match &spec.source {
            Source::Mix { .. } => mix.line(&mut line),
            Source::Lines(lines) => {
                line.extend_from_slice(&lines[(report.lines as usize + conn) % lines.len().max(1)])
            }
        }
        if spec.seq {
            let _ = write!(line, " seq={}", report.lines);
        }
        frame.clear();
        match spec.proto {
            Proto::TcpOctet => {
                let _ = write!(frame, "{} ", line.len());
                frame.extend_from_slice(&line);
            }
            Proto::TcpNewline => {
                frame.extend_from_slice(&line);
                frame.push(b'\n');
            }
            Proto::Udp => frame.extend_from_slice(&line),
        }
        match &mut sink {
            Sink::Tcp(w) => w.write_all(&frame)?,
            Sink::Udp(s) => {
                // A full socket buffer on loopback: retry rather than lose the line here.
                while let Err(e) = s.send(&frame) {
                    if e.kind() != io::ErrorKind::WouldBlock && e.raw_os_error() != Some(105) {
                        return Err(e);
                    }
                    std::thread::yield_now();
                }
            }
        }
        report.lines += 1;
        report.bytes += frame.len() as u64;
    }
    if let Sink::Tcp(w) = &mut sink {
        w.flush()?;
        w.get_ref().shutdown(std::net::Shutdown::Write)?;
    }
    report.elapsed = start.elapsed();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_is_repeatable_and_well_formed() {
        let (mut a, mut b) = (Mix::new(7, false), Mix::new(7, false));
        for _ in 0..1000 {
            let (mut x, mut y) = (Vec::new(), Vec::new());
            a.line(&mut x);
            b.line(&mut y);
            assert_eq!(x, y);
            assert!(x.starts_with(b"<") && !x.contains(&b'\n'));
        }
    }
}
