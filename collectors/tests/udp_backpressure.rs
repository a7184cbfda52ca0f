//! The UDP listener when the parsers fall behind: the receive thread waits for room in their
//! queue while datagrams gather in the socket buffer, so a burst the buffer can hold is not
//! lost, and what overflows the buffer is counted while the wait lasts.

#![allow(clippy::expect_used)]

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use canh_collectors::udp::{self, UdpConfig, UdpListener};
use canh_collectors::{Dispatch, Shutdown, ShutdownTrigger};
use canh_metrics::Metrics;
use canh_schema::{RawChunk, Transport};

/// A UDP listener "u" on loopback with this `SO_RCVBUF`, feeding one parser queue of one chunk
/// that the test reads (or not).
fn listen(
    receive_buffer: usize,
) -> (
    ShutdownTrigger,
    crossbeam_channel::Receiver<RawChunk>,
    Metrics,
    UdpListener,
) {
    let (trigger, shutdown) = Shutdown::new();
    let (tx, queue) = crossbeam_channel::bounded(1);
    let metrics = Metrics::new();
    let cfg = UdpConfig {
        name: "u".into(),
        addr: "127.0.0.1:0".parse().expect("addr"),
        sockets: 1,
        receive_buffer,
        max_message_size: 1024,
        transport: Transport::Udp,
    };
    let listener =
        udp::start(&cfg, Dispatch::new(vec![tx]), shutdown, metrics.clone()).expect("listen");
    (trigger, queue, metrics, listener)
}

#[test]
fn a_burst_while_the_parsers_are_behind_waits_in_the_socket_buffer() {
    // A parser queue of one chunk, not read until the whole burst has been sent: the parsers
    // are behind for the whole burst.
    let (trigger, queue, metrics, listener) = listen(4 << 20);
    let sender = UdpSocket::bind("127.0.0.1:0").expect("bind");
    // Small enough for the smallest socket buffer a Linux host gives (net.core.rmem_max's
    // default, 208 KiB, doubled by the kernel).
    const BURST: usize = 100;
    for i in 0..BURST {
        // Paced a little, so the receiver hands on several chunks and finds the queue full.
        if i % 10 == 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
        sender
            .send_to(
                format!("<13>burst message {i}").as_bytes(),
                listener.local_addr,
            )
            .expect("send");
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < BURST && Instant::now() < deadline {
        if let Ok(chunk) = queue.recv_timeout(Duration::from_millis(100)) {
            got.extend(
                chunk
                    .messages()
                    .map(|(m, _)| String::from_utf8_lossy(m).into_owned()),
            );
        }
    }
    trigger.trigger();
    drop(queue);
    listener.join();
    let expected: Vec<String> = (0..BURST)
        .map(|i| format!("<13>burst message {i}"))
        .collect();
    assert_eq!(got, expected, "every datagram, in order");
    let dropped = metrics
        .render()
        .lines()
        .filter(|l| l.starts_with("canh_collector_dropped_messages_total"))
        .map(str::to_owned)
        .collect::<Vec<_>>();
    assert!(dropped.is_empty(), "{dropped:?}");
}

#[test]
fn what_overflows_the_socket_buffer_while_waiting_is_counted_as_it_happens() {
    // Parsers that take one chunk and then nothing more, for the whole test; the smallest
    // socket buffer the kernel allows, which overflows at once.
    let (trigger, queue, metrics, listener) = listen(1);
    let sender = UdpSocket::bind("127.0.0.1:0").expect("bind");
    for i in 0..2000 {
        if i % 100 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        sender
            .send_to(format!("<13>overflow {i}").as_bytes(), listener.local_addr)
            .expect("send");
    }
    let kernel = || {
        metrics
            .render()
            .lines()
            .find_map(|l| {
                l.strip_prefix(
                    "canh_collector_dropped_messages_total{listener=\"u\",reason=\"kernel\"}",
                )
            })
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    // The receive thread is still waiting for room in the queue; the drops show meanwhile.
    let deadline = Instant::now() + Duration::from_secs(10);
    while kernel() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let seen = kernel();
    trigger.trigger();
    drop(queue);
    listener.join();
    assert!(
        seen > 0,
        "kernel drops not reported while the receiver waited"
    );
}
