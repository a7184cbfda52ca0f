//! The TCP listener's limits, in process: connection limit, idle timeout, oversize messages,
//! and one connection's chunks all on one parser queue.

#![allow(clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use canh_collectors::framing::Framing;
use canh_collectors::tcp::{self, TcpConfig};
use canh_collectors::{Dispatch, Shutdown};
use canh_metrics::Metrics;
use canh_schema::RawChunk;

struct Rig {
    addr: SocketAddr,
    queues: Vec<crossbeam_channel::Receiver<RawChunk>>,
    metrics: Metrics,
    trigger: canh_collectors::ShutdownTrigger,
    runtime: tokio::runtime::Runtime,
    task: tokio::task::JoinHandle<()>,
}

fn rig(max_connections: usize, idle: Duration) -> Rig {
    rig_with_queues(max_connections, idle, 1024)
}

fn rig_with_queues(max_connections: usize, idle: Duration, capacity: usize) -> Rig {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (trigger, shutdown) = Shutdown::new();
    let (txs, queues): (Vec<_>, Vec<_>) =
        (0..3).map(|_| crossbeam_channel::bounded(capacity)).unzip();
    let metrics = Metrics::new();
    let listener = {
        let _g = runtime.enter();
        tcp::bind("127.0.0.1:0".parse().expect("addr")).expect("bind")
    };
    let addr = listener.local_addr().expect("addr");
    let cfg = TcpConfig {
        name: "t".into(),
        addr,
        max_connections,
        idle_timeout: idle,
        max_message_size: 100,
        framing: Framing::Auto,
    };
    let task = runtime.spawn(tcp::serve(
        listener,
        cfg,
        Dispatch::new(txs),
        shutdown,
        metrics.clone(),
    ));
    Rig {
        addr,
        queues,
        metrics,
        trigger,
        runtime,
        task,
    }
}

impl Rig {
    fn stop(self) -> Vec<Vec<RawChunk>> {
        self.trigger.trigger();
        self.runtime.block_on(self.task).expect("serve ends");
        self.queues.iter().map(|q| q.try_iter().collect()).collect()
    }
}

fn metric(m: &Metrics, sample: &str) -> u64 {
    m.render()
        .lines()
        .find_map(|l| l.strip_prefix(sample))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn connections_over_the_limit_are_closed_and_counted() {
    let r = rig(1, Duration::from_secs(60));
    let mut first = TcpStream::connect(r.addr).expect("first");
    first.write_all(b"<13>a\n").expect("write");
    std::thread::sleep(Duration::from_millis(200));
    let mut second = TcpStream::connect(r.addr).expect("tcp accepts");
    second
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = [0u8; 1];
    assert_eq!(
        second.read(&mut buf).expect("closed, not reset"),
        0,
        "closed at once"
    );
    assert_eq!(
        metric(
            &r.metrics,
            "canh_collector_dropped_messages_total{listener=\"t\",reason=\"connection_limit\"}"
        ),
        1
    );
    drop(first);
    let chunks = r.stop();
    assert_eq!(chunks.iter().flatten().map(RawChunk::len).sum::<usize>(), 1);
}

#[test]
fn idle_connections_are_closed() {
    let r = rig(10, Duration::from_secs(1));
    let mut s = TcpStream::connect(r.addr).expect("connect");
    s.write_all(b"<13>idle soon").expect("write");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let started = Instant::now();
    let mut buf = [0u8; 1];
    assert_eq!(s.read(&mut buf).expect("closed by the server"), 0);
    assert!(started.elapsed() < Duration::from_secs(9));
    let chunks = r.stop();
    let frames: Vec<Vec<u8>> = chunks
        .iter()
        .flatten()
        .flat_map(|c| c.messages().map(|(m, _)| m.to_vec()).collect::<Vec<_>>())
        .collect();
    assert_eq!(
        frames,
        vec![b"<13>idle soon".to_vec()],
        "the unterminated line is kept"
    );
}

#[test]
fn a_connection_keeps_one_queue_and_its_order() {
    let r = rig(10, Duration::from_secs(60));
    let mut s = TcpStream::connect(r.addr).expect("connect");
    for i in 0..5000 {
        s.write_all(format!("<13>line {i}\n").as_bytes())
            .expect("write");
    }
    s.write_all(&[b'x'; 500]).expect("oversize");
    s.write_all(b"\n<13>last\n").expect("write");
    drop(s);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        metric(
            &r.metrics,
            "canh_collector_dropped_messages_total{listener=\"t\",reason=\"oversize\"}"
        ),
        1
    );
    let chunks = r.stop();
    let used: Vec<usize> = chunks.iter().map(Vec::len).collect();
    assert_eq!(
        used.iter().filter(|&&n| n > 0).count(),
        1,
        "one queue per connection: {used:?}"
    );
    let frames: Vec<String> = chunks
        .iter()
        .flatten()
        .flat_map(|c| {
            c.messages()
                .map(|(m, _)| String::from_utf8_lossy(m).into_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(frames.len(), 5001);
    for (i, f) in frames.iter().take(5000).enumerate() {
        assert_eq!(f, &format!("<13>line {i}"));
    }
    assert_eq!(frames[5000], "<13>last");
}

/// A sender that never pauses, and parsers that have stopped taking chunks (queues of 2 that
/// nobody reads): shutdown still ends after the drain deadline, and what could not be queued is
/// counted as dropped.
#[test]
fn shutdown_completes_even_while_a_sender_never_pauses() {
    let r = rig_with_queues(10, Duration::from_secs(60), 2);
    let metrics = r.metrics.clone();
    let addr = r.addr;
    let sender = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).expect("connect");
        let batch = b"<13>Nov 23 10:00:00 host app: busy\n".repeat(100);
        let mut sent = 0u64;
        // Like a busy device: a burst every millisecond, never quiet for DRAIN_QUIET, until the
        // server closes the connection.
        while s.write_all(&batch).is_ok() {
            sent += 100;
            std::thread::sleep(Duration::from_millis(1));
        }
        sent
    });
    std::thread::sleep(Duration::from_millis(300));
    r.trigger.trigger();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let Rig {
        runtime,
        task,
        queues,
        ..
    } = r;
    std::thread::spawn(move || {
        let _ = runtime.block_on(task);
        let _ = done_tx.send(());
    });
    // A hang guard, far above DRAIN_MAX, not a timing assertion.
    assert!(
        done_rx.recv_timeout(Duration::from_secs(60)).is_ok(),
        "serve did not finish draining"
    );
    let sent = sender.join().expect("sender");
    let received: usize = queues
        .iter()
        .map(|q| q.try_iter().map(|c| c.len()).sum::<usize>())
        .sum();
    assert!(received > 0 && (received as u64) <= sent);
    let text = metrics.render();
    assert!(
        text.lines().any(|l| l.starts_with(
            "canh_collector_dropped_messages_total{listener=\"t\",reason=\"queue_full\"}"
        ) && !l.ends_with(" 0")),
        "{text}"
    );
}
