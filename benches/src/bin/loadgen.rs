//! `canh-loadgen`: sends realistic syslog (or lines from a file) over TCP or UDP, at a target
//! rate or flat out, and prints what it sent as one `key=value` line.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use canh_benches::{run, Proto, Source, Spec};
use clap::{Parser, ValueEnum};

#[derive(Parser)]
#[command(about = "Send syslog load to a collector")]
struct Args {
    /// Where to send.
    #[arg(long, default_value = "127.0.0.1:5514")]
    target: SocketAddr,
    #[arg(long, value_enum, default_value_t = ProtoArg::Tcp)]
    proto: ProtoArg,
    /// Lines in total (default: unlimited, use --duration).
    #[arg(long)]
    count: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long)]
    duration: Option<f64>,
    /// Lines per second over all connections (0 = flat out).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// TCP connections (or UDP sockets) sending in parallel.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Replay lines from this file instead of the built-in mix.
    #[arg(long)]
    file: Option<PathBuf>,
    /// Built-in mix with RFC 5424 headers instead of RFC 3164.
    #[arg(long)]
    rfc5424: bool,
    /// Append ` seq=N` (per connection) to every line.
    #[arg(long)]
    seq: bool,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum ProtoArg {
    Udp,
    Tcp,
    TcpOctet,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let source = match &a.file {
        Some(path) => {
            let text = std::fs::read(path)?;
            let lines: Vec<Vec<u8>> = text
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(<[u8]>::to_vec)
                .collect();
            anyhow::ensure!(!lines.is_empty(), "{} has no lines", path.display());
            Source::Lines(Arc::new(lines))
        }
        None => Source::Mix { rfc5424: a.rfc5424 },
    };
    anyhow::ensure!(
        a.count.is_some() || a.duration.is_some(),
        "give --count or --duration"
    );
    let spec = Spec {
        target: a.target,
        proto: match a.proto {
            ProtoArg::Udp => Proto::Udp,
            ProtoArg::Tcp => Proto::TcpNewline,
            ProtoArg::TcpOctet => Proto::TcpOctet,
        },
        count: a.count,
        duration: a.duration.map(Duration::from_secs_f64),
        rate: a.rate,
        connections: a.connections,
        seq: a.seq,
        source,
        seed: a.seed,
    };
    let r = run(&spec)?;
    writeln!(
        std::io::stdout(),
        "sent={} bytes={} elapsed_s={:.3} lines_per_s={:.0}",
        r.lines,
        r.bytes,
        r.elapsed.as_secs_f64(),
        r.rate()
    )?;
    Ok(())
}
