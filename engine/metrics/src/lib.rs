//! Every metric Canh exports, defined once, named `canh_<stage>_<name>_<unit>[_total]`.
//!
//! Stages receive a [`Metrics`] (cheap to clone) rather than reaching for globals, so each crate
//! can be tested alone and two engines in one test process keep separate counts. Labels are
//! bounded: listener names, table names, statuses and reasons, never addresses or hosts.
//! Counting is per chunk or per batch (`inc_by`), not per event.

use std::sync::Arc;

use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Why a message was dropped before it reached the archive (label `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Longer than the listener's maximum message size.
    Oversize,
    /// The parser queue was full (UDP; TCP waits instead, except at shutdown past the drain
    /// deadline).
    QueueFull,
    /// Dropped by the kernel: the socket receive buffer overflowed.
    Kernel,
    /// An empty frame (blank line) that carries nothing to archive.
    Empty,
    /// A connection refused because the listener is at its connection limit.
    ConnectionLimit,
}

impl DropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Oversize => "oversize",
            DropReason::QueueFull => "queue_full",
            DropReason::Kernel => "kernel",
            DropReason::Empty => "empty",
            DropReason::ConnectionLimit => "connection_limit",
        }
    }
}

struct Inner {
    registry: Registry,
    received_messages: IntCounterVec,
    received_bytes: IntCounterVec,
    dropped_messages: IntCounterVec,
    connections: IntGaugeVec,
    parsed_events: IntCounterVec,
    clock_skew: IntCounterVec,
    unknown_senders: IntCounterVec,
    batches_written: IntCounterVec,
    rows_written: IntCounterVec,
    files_written: IntCounterVec,
    bytes_written: IntCounterVec,
    channel_depth: IntGaugeVec,
    errors: IntCounterVec,
    flow_packets: IntCounterVec,
    flows: IntCounterVec,
    flow_decode_errors: IntCounterVec,
    flows_no_template: IntCounterVec,
    flow_templates: IntGaugeVec,
    flow_sequence_gaps: IntCounterVec,
    detection_matches: IntCounterVec,
    alerts: IntCounterVec,
    detection_state: IntCounterVec,
    detection_gauges: IntGaugeVec,
    rule_reloads: IntCounterVec,
    clickhouse: IntCounterVec,
    clickhouse_gauges: IntGaugeVec,
    outbox: IntCounterVec,
    outbox_gauges: IntGaugeVec,
    forward: IntCounterVec,
    forward_gauges: IntGaugeVec,
    forward_latency: HistogramVec,
}

/// Handles to every metric, sharing one registry.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c =
        IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(|_| unreachable_metric());
    let _ = registry.register(Box::new(c.clone()));
    c
}

fn histogram(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let buckets = vec![
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
    ];
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
        .unwrap_or_else(|_| unreachable_histogram());
    let _ = registry.register(Box::new(h.clone()));
    h
}

fn unreachable_histogram() -> HistogramVec {
    HistogramVec::new(
        HistogramOpts::new("canh_invalid_seconds", "invalid metric definition"),
        &[],
    )
    .unwrap_or_else(|_| unreachable_histogram())
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).unwrap_or_else(|_| unreachable_gauge());
    let _ = registry.register(Box::new(g.clone()));
    g
}

// Metric names and label lists are constants checked by the tests below; construction cannot
// fail at run time. These fallbacks keep the code free of `unwrap` all the same.
fn unreachable_metric() -> IntCounterVec {
    IntCounterVec::new(
        Opts::new("canh_invalid_total", "invalid metric definition"),
        &[],
    )
    .unwrap_or_else(|_| unreachable_metric())
}

fn unreachable_gauge() -> IntGaugeVec {
    IntGaugeVec::new(Opts::new("canh_invalid", "invalid metric definition"), &[])
        .unwrap_or_else(|_| unreachable_gauge())
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let r = Registry::new();
        Metrics(Arc::new(Inner {
            received_messages: counter(&r, "canh_collector_received_messages_total", "Messages received, per listener.", &["listener"]),
            received_bytes: counter(&r, "canh_collector_received_bytes_total", "Message bytes received, per listener.", &["listener"]),
            dropped_messages: counter(&r, "canh_collector_dropped_messages_total", "Messages dropped before parsing, per listener and reason (oversize, queue_full, kernel, empty, connection_limit).", &["listener", "reason"]),
            connections: gauge(&r, "canh_collector_connections", "Open TCP connections, per listener.", &["listener"]),
            parsed_events: counter(&r, "canh_parser_events_total", "Events parsed, per status (ok, partial, failed).", &["status"]),
            clock_skew: counter(&r, "canh_parser_clock_skew_events_total", "Events whose device time is more than 5 minutes from the receive time, per listener and direction (ahead, behind).", &["listener", "direction"]),
            unknown_senders: counter(&r, "canh_parser_unknown_sender_events_total", "Events from senders the inventory does not list (organization.name \"unknown\"), per listener.", &["listener"]),
            batches_written: counter(&r, "canh_sink_batches_total", "Batches written, per sink and table.", &["sink", "table"]),
            rows_written: counter(&r, "canh_sink_rows_total", "Rows written, per sink and table.", &["sink", "table"]),
            files_written: counter(&r, "canh_sink_files_total", "Files completed (renamed into place), per table.", &["table"]),
            bytes_written: counter(&r, "canh_sink_written_bytes_total", "Bytes of completed files, per table.", &["table"]),
            channel_depth: gauge(&r, "canh_pipeline_channel_depth", "Items waiting in a pipeline channel.", &["channel"]),
            errors: counter(&r, "canh_pipeline_errors_total", "Errors that stopped an operation, per stage and code.", &["stage", "code"]),
            flow_packets: counter(&r, "canh_flow_packets_total", "NetFlow/IPFIX export packets decoded, per listener and version (5, 9, ipfix).", &["listener", "version"]),
            flows: counter(&r, "canh_flows_total", "Flow records decoded into rows, per listener and version.", &["listener", "version"]),
            flow_decode_errors: counter(&r, "canh_flow_decode_errors_total", "Export packets not read to their end, per listener and reason (truncated, set_length, template, template_limit, version, count, length).", &["listener", "code"]),
            flows_no_template: counter(&r, "canh_flow_records_dropped_no_template_total", "Data sets dropped because their template was unknown (not yet received, or expired), per listener.", &["listener"]),
            flow_templates: gauge(&r, "canh_flow_templates", "Templates cached, per parser worker.", &["worker"]),
            flow_sequence_gaps: counter(&r, "canh_flow_sequence_gap_total", "Export packets (v9) or records (v5, IPFIX) missing by sequence number, per exporter address.", &["exporter"]),
            detection_matches: counter(&r, "canh_detection_matches_total", "Rule matches on rows, per table (before correlation and deduplication).", &["table"]),
            alerts: counter(&r, "canh_detection_alerts_total", "Alerts raised (first of their suppression window), per level.", &["level"]),
            detection_state: counter(&r, "canh_detection_events_total", "Detection bookkeeping, per kind: suppressed (folded into an open alert), correlation_fired, correlation_too_late (older than the lateness allows), correlation_evicted_groups (dropped to stay within the memory bound), correlation_windows (windows measured against their condition, each costing the events in it), correlation_reset (window events dropped by a rule reload: the correlation or a rule it reads changed), correlation_carried_over (window events kept across a rule reload), stale_matches (matches made with a replaced rule set that arrived after the reload, of rules it changed or removed; those of unchanged rules count as the new set's).", &["kind"]),
            detection_gauges: gauge(&r, "canh_detection_state", "Detection state now: rules_loaded, rules_rejected, rules_unmapped, correlations, correlation_held_events, open_alerts.", &["kind"]),
            rule_reloads: counter(&r, "canh_detection_reloads_total", "Rule set (re)loads, per result (ok, failed).", &["result"]),
            clickhouse: counter(&r, "canh_clickhouse_rows_total", "Rows through the ClickHouse sink, per table and kind: inserted (directly), spooled (written to the outage spool), replayed (inserted from the spool), dead (rejected by ClickHouse as invalid: in the dead-letter folder), dropped (not spooled because the spool was full; still in the Parquet archive).", &["table", "kind"]),
            clickhouse_gauges: gauge(&r, "canh_clickhouse_state", "The ClickHouse sink now, per kind: spool_bytes, spool_files and spool_oldest_age_seconds (the outage spool), up (1 while inserts succeed, 0 during an outage), inserts_in_flight (INSERTs under way).", &["kind"]),
            outbox: counter(&r, "canh_outbox_records_total", "Alert records of the forwarding outbox, per kind: appended, dropped (refused because undelivered alerts filled the outbox; still in the archive), torn (a torn tail cut at start), skipped (damaged or removed records a reader passed over).", &["kind"]),
            outbox_gauges: gauge(&r, "canh_outbox_state", "The forwarding outbox now, per kind: bytes, max_bytes, segments, last_seq, full (1 while new alerts are refused: the alarm).", &["kind"]),
            forward: counter(&r, "canh_forward_alerts_total", "Alerts per destination and kind: delivered, retried (a failed attempt, retried later), dead (rejected for good: in the dead-letter file), filtered (not for this destination).", &["destination", "kind"]),
            forward_gauges: gauge(&r, "canh_forward_state", "Each destination now, per kind: pending (outbox records not yet acknowledged), up (1 after a delivery, 0 after a failure), oldest_pending_age_seconds.", &["destination", "kind"]),
            forward_latency: histogram(&r, "canh_forward_delivery_latency_seconds", "From an alert being raised to its acknowledged delivery, per destination.", &["destination"]),
            registry: r,
        }))
    }

    pub fn received(&self, listener: &str, messages: u64, bytes: u64) {
        self.0
            .received_messages
            .with_label_values(&[listener])
            .inc_by(messages);
        self.0
            .received_bytes
            .with_label_values(&[listener])
            .inc_by(bytes);
    }

    pub fn dropped(&self, listener: &str, reason: DropReason, messages: u64) {
        if messages > 0 {
            self.0
                .dropped_messages
                .with_label_values(&[listener, reason.as_str()])
                .inc_by(messages);
        }
    }

    pub fn connection_opened(&self, listener: &str) {
        self.0.connections.with_label_values(&[listener]).inc();
    }

    pub fn connection_closed(&self, listener: &str) {
        self.0.connections.with_label_values(&[listener]).dec();
    }

    pub fn parsed(&self, status: &str, events: u64) {
        if events > 0 {
            self.0
                .parsed_events
                .with_label_values(&[status])
                .inc_by(events);
        }
    }

    /// Events from senders the inventory does not list.
    pub fn unknown_senders(&self, listener: &str, events: u64) {
        if events > 0 {
            self.0
                .unknown_senders
                .with_label_values(&[listener])
                .inc_by(events);
        }
    }

    /// Events whose device clock is off by more than the skew threshold.
    pub fn clock_skewed(&self, listener: &str, direction: &str, events: u64) {
        if events > 0 {
            self.0
                .clock_skew
                .with_label_values(&[listener, direction])
                .inc_by(events);
        }
    }

    pub fn batch_written(&self, sink: &str, table: &str, rows: u64) {
        self.0
            .batches_written
            .with_label_values(&[sink, table])
            .inc();
        self.0
            .rows_written
            .with_label_values(&[sink, table])
            .inc_by(rows);
    }

    pub fn file_written(&self, table: &str, bytes: u64) {
        self.0.files_written.with_label_values(&[table]).inc();
        self.0
            .bytes_written
            .with_label_values(&[table])
            .inc_by(bytes);
    }

    pub fn set_channel_depth(&self, channel: &str, depth: usize) {
        self.0
            .channel_depth
            .with_label_values(&[channel])
            .set(depth as i64);
    }

    /// Export packets of one NetFlow version decoded (a chunk's worth at once) and their flows.
    pub fn flow_packets(&self, listener: &str, version: u16, packets: u64, flows: u64) {
        let version = match version {
            5 => "5",
            9 => "9",
            10 => "ipfix",
            _ => "other",
        };
        if packets > 0 {
            self.0
                .flow_packets
                .with_label_values(&[listener, version])
                .inc_by(packets);
        }
        if flows > 0 {
            self.0
                .flows
                .with_label_values(&[listener, version])
                .inc_by(flows);
        }
    }

    /// An export packet that did not decode whole, by problem.
    pub fn flow_decode_error(&self, listener: &str, code: &str) {
        self.0
            .flow_decode_errors
            .with_label_values(&[listener, code])
            .inc();
    }

    pub fn flows_without_template(&self, listener: &str, sets: u64) {
        if sets > 0 {
            self.0
                .flows_no_template
                .with_label_values(&[listener])
                .inc_by(sets);
        }
    }

    pub fn set_flow_templates(&self, worker: &str, templates: usize) {
        self.0
            .flow_templates
            .with_label_values(&[worker])
            .set(templates as i64);
    }

    pub fn flow_sequence_gap(&self, exporter: &str, missing: u64) {
        if missing > 0 {
            self.0
                .flow_sequence_gaps
                .with_label_values(&[exporter])
                .inc_by(missing);
        }
    }

    pub fn detection_matches(&self, table: &str, rows: u64) {
        if rows > 0 {
            self.0
                .detection_matches
                .with_label_values(&[table])
                .inc_by(rows);
        }
    }

    pub fn alert(&self, level: &str) {
        self.0.alerts.with_label_values(&[level]).inc();
    }

    /// Detection bookkeeping counters (`suppressed`, `correlation_fired`, …).
    pub fn detection(&self, kind: &str, n: u64) {
        if n > 0 {
            self.0.detection_state.with_label_values(&[kind]).inc_by(n);
        }
    }

    /// Detection gauges (`rules_loaded`, `correlation_held_events`, …).
    pub fn set_detection(&self, kind: &str, value: u64) {
        self.0
            .detection_gauges
            .with_label_values(&[kind])
            .set(i64::try_from(value).unwrap_or(i64::MAX));
    }

    pub fn rules_reloaded(&self, ok: bool) {
        self.0
            .rule_reloads
            .with_label_values(&[if ok { "ok" } else { "failed" }])
            .inc();
    }

    pub fn clickhouse(&self, table: &str, kind: &str, rows: u64) {
        self.0
            .clickhouse
            .with_label_values(&[table, kind])
            .inc_by(rows);
    }

    pub fn set_clickhouse(&self, kind: &str, value: u64) {
        self.0
            .clickhouse_gauges
            .with_label_values(&[kind])
            .set(i64::try_from(value).unwrap_or(i64::MAX));
    }

    pub fn outbox(&self, kind: &str, n: u64) {
        if n > 0 {
            self.0.outbox.with_label_values(&[kind]).inc_by(n);
        }
    }

    pub fn set_outbox(&self, kind: &str, value: u64) {
        self.0
            .outbox_gauges
            .with_label_values(&[kind])
            .set(i64::try_from(value).unwrap_or(i64::MAX));
    }

    pub fn forward(&self, destination: &str, kind: &str, n: u64) {
        if n > 0 {
            self.0
                .forward
                .with_label_values(&[destination, kind])
                .inc_by(n);
        }
    }

    pub fn set_forward(&self, destination: &str, kind: &str, value: u64) {
        self.0
            .forward_gauges
            .with_label_values(&[destination, kind])
            .set(i64::try_from(value).unwrap_or(i64::MAX));
    }

    pub fn forward_latency(&self, destination: &str, seconds: f64) {
        self.0
            .forward_latency
            .with_label_values(&[destination])
            .observe(seconds);
    }

    pub fn error(&self, stage: &str, code: &str) {
        self.0.errors.with_label_values(&[stage, code]).inc();
    }

    /// Everything in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.0.registry.gather())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_registered_and_rendered() {
        let m = Metrics::new();
        m.received("udp", 3, 30);
        m.dropped("udp", DropReason::Kernel, 2);
        m.parsed("ok", 3);
        m.batch_written("parquet", "events", 3);
        m.file_written("events", 100);
        m.set_channel_depth("parse", 1);
        m.connection_opened("tcp");
        m.error("sink", "io");
        m.flow_packets("netflow", 9, 1, 3);
        m.flow_decode_error("netflow", "truncated");
        m.flows_without_template("netflow", 1);
        m.set_flow_templates("0", 2);
        m.flow_sequence_gap("192.0.2.1", 4);
        m.detection_matches("events", 5);
        m.alert("high");
        m.detection("suppressed", 2);
        m.set_detection("rules_loaded", 21);
        m.rules_reloaded(true);
        m.clickhouse("events", "spooled", 7);
        m.set_clickhouse("spool_bytes", 1024);
        m.outbox("appended", 3);
        m.set_outbox("bytes", 99);
        m.forward("soc", "delivered", 2);
        m.set_forward("soc", "pending", 1);
        m.forward_latency("soc", 0.2);
        let text = m.render();
        for name in [
            "canh_collector_received_messages_total{listener=\"udp\"} 3",
            "canh_collector_received_bytes_total{listener=\"udp\"} 30",
            "canh_collector_dropped_messages_total{listener=\"udp\",reason=\"kernel\"} 2",
            "canh_parser_events_total{status=\"ok\"} 3",
            "canh_sink_rows_total{sink=\"parquet\",table=\"events\"} 3",
            "canh_sink_files_total{table=\"events\"} 1",
            "canh_pipeline_channel_depth{channel=\"parse\"} 1",
            "canh_collector_connections{listener=\"tcp\"} 1",
            "canh_pipeline_errors_total{code=\"io\",stage=\"sink\"} 1",
            "canh_flow_packets_total{listener=\"netflow\",version=\"9\"} 1",
            "canh_flows_total{listener=\"netflow\",version=\"9\"} 3",
            "canh_flow_decode_errors_total{code=\"truncated\",listener=\"netflow\"} 1",
            "canh_flow_records_dropped_no_template_total{listener=\"netflow\"} 1",
            "canh_flow_templates{worker=\"0\"} 2",
            "canh_flow_sequence_gap_total{exporter=\"192.0.2.1\"} 4",
            "canh_detection_matches_total{table=\"events\"} 5",
            "canh_detection_alerts_total{level=\"high\"} 1",
            "canh_detection_events_total{kind=\"suppressed\"} 2",
            "canh_detection_state{kind=\"rules_loaded\"} 21",
            "canh_detection_reloads_total{result=\"ok\"} 1",
            "canh_clickhouse_rows_total{kind=\"spooled\",table=\"events\"} 7",
            "canh_clickhouse_state{kind=\"spool_bytes\"} 1024",
            "canh_outbox_records_total{kind=\"appended\"} 3",
            "canh_outbox_state{kind=\"bytes\"} 99",
            "canh_forward_alerts_total{destination=\"soc\",kind=\"delivered\"} 2",
            "canh_forward_state{destination=\"soc\",kind=\"pending\"} 1",
            "canh_forward_delivery_latency_seconds_bucket{destination=\"soc\",le=\"0.25\"} 1",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
        assert!(!text.contains("canh_invalid"));
    }
}
