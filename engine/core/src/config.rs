//! Configuration: one TOML file, read in two steps.
//!
//! 1. The TOML text is walked by a [`Reader`] that knows every key, its type and its default, and
//!    collects *every* problem (unknown keys, wrong types, out-of-range values, conflicts) with
//!    its key path (`syslog.tcp[1].max_connections: …`), instead of stopping at the first.
//! 2. What it produces is the validated [`Config`] of domain types (`Duration`, `SocketAddr`,
//!    enums), so nothing downstream re-checks.
//!
//! Serde's derive stops at the first error, which is why the walk is written out here.
//! The documented example is `deploy/canh.toml`; every key is described there.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use canh_collectors::framing::Framing;
use canh_collectors::tcp::TcpConfig;
use canh_collectors::udp::UdpConfig;
use canh_parsers::Format;
use canh_schema::Transport;

use crate::zone::Zone;
use canh_forward::dest::Tlp;
use canh_forward::outbox::{Fsync, OutboxConfig};
use canh_forward::Destination;
use toml::Value;

/// Default syslog port for UDP and TCP (unprivileged, so Canh need not run as root).
pub const DEFAULT_SYSLOG_PORT: u16 = 5514;
/// The NetFlow port exporters default to.
pub const DEFAULT_NETFLOW_PORT: u16 = 2055;
/// The IPFIX port (RFC 7011).
pub const DEFAULT_IPFIX_PORT: u16 = 4739;

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Root of everything Canh stores (`archive/` lives below it).
    pub data_dir: PathBuf,
    /// Address of the metrics and health endpoint.
    pub http_listen: SocketAddr,
    pub udp: Vec<UdpListener>,
    pub tcp: Vec<TcpListener>,
    /// NetFlow v5/v9 and IPFIX listeners (each accepts every version).
    pub netflow: Vec<UdpConfig>,
    pub pipeline: PipelineConfig,
    pub archive: ArchiveConfig,
    /// The sender inventory (CIDR → agency, device, per-sender format and zone), if any.
    pub inventory: Option<InventoryConfig>,
    pub detection: DetectionConfig,
    /// ClickHouse, besides the archive (`[clickhouse]` or `canh serve --clickhouse-url`).
    pub clickhouse: Option<ClickHouseConfig>,
    /// The alert outbox (`[outbox]`); its folder defaults to `data_dir/outbox`.
    pub outbox: OutboxSettings,
    /// Where alerts are forwarded (`[[forward]]` or `canh serve --forward URL`).
    pub forward: Vec<Destination>,
}

/// The alert outbox, before `data_dir` is known.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxSettings {
    /// `None`: `data_dir/outbox`.
    pub dir: Option<PathBuf>,
    pub max_size: u64,
    pub segment_size: u64,
    pub fsync: Fsync,
    pub retention: Duration,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        let d = OutboxConfig::new(PathBuf::new());
        OutboxSettings {
            dir: None,
            max_size: d.max_size,
            segment_size: d.segment_size,
            fsync: d.fsync,
            retention: d.retention,
        }
    }
}

/// The ClickHouse sink.
#[derive(Debug, Clone, PartialEq)]
pub struct ClickHouseConfig {
    /// The server's HTTP interface (`http://127.0.0.1:8123`).
    pub url: String,
    /// The database the tables are created in.
    pub database: String,
    /// Rows per `INSERT` (per table) …
    pub batch_rows: usize,
    /// … or whatever has come when this much time has passed since the first row.
    pub flush_interval: Duration,
    /// Per request to the server.
    pub timeout: Duration,
    /// `INSERT`s under way at once (the server takes each on a thread of its own).
    pub parallel_inserts: usize,
    /// The outage spool (under `data_dir/spool/clickhouse`) holds at most this much.
    pub spool_max_size: u64,
    /// Rows older than this many days are dropped (TTL, or partitions dropped on servers
    /// without TTL); `None`: kept.
    pub retention_days: Option<u32>,
    /// A cluster from the servers' `remote_servers`: rows go into Distributed tables over
    /// per-shard `<table>_local` tables, which are created on every server of `shards`.
    pub cluster: Option<String>,
    /// The HTTP URL of every shard server (with `cluster`).
    pub shards: Vec<String>,
    /// Log in as this user (else `default`), with this password.
    pub user: Option<String>,
    pub password: Option<String>,
    /// For https: a CA (PEM) trusted besides the system's roots; a client certificate and
    /// key (PEM) for servers that verify clients.
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

impl ClickHouseConfig {
    /// The defaults for a server at `url`.
    pub fn new(url: &str) -> ClickHouseConfig {
        ClickHouseConfig {
            url: url.trim_end_matches('/').to_owned(),
            database: "canh".into(),
            batch_rows: 200_000,
            flush_interval: Duration::from_secs(1),
            timeout: Duration::from_secs(30),
            parallel_inserts: 2,
            spool_max_size: 10 << 30,
            retention_days: None,
            cluster: None,
            shards: Vec::new(),
            user: None,
            password: None,
            ca_file: None,
            client_cert: None,
            client_key: None,
        }
    }

    /// How to reach the server of `url`.
    pub fn endpoint(&self) -> crate::sink::clickhouse_client::Endpoint {
        let from_url = crate::sink::clickhouse_client::Endpoint::new(&self.url);
        crate::sink::clickhouse_client::Endpoint {
            user: self.user.clone().or(from_url.user),
            password: self.password.clone().or(from_url.password),
            url: from_url.url,
            ca_file: self.ca_file.clone(),
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
        }
    }

    /// What is wrong with a server URL, if anything.
    pub fn check_url(url: &str) -> Result<(), String> {
        match url.split_once("://") {
            Some(("http" | "https", rest)) if !rest.is_empty() => Ok(()),
            _ => Err(format!("{url:?} is not an http:// or https:// URL")),
        }
    }
}

/// Detection (`[detection]`): which rules run and how alerts are made.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectionConfig {
    /// Rule files or folders (every `*.yml` below). A missing default folder or an empty list
    /// turns detection off; a missing folder that was asked for is an error at start.
    pub rules: Vec<PathBuf>,
    /// Whether `rules` is the default (`./rules`) rather than configured.
    pub rules_default: bool,
    /// A field mapping file (default: the built-in mapping).
    pub mapping: Option<PathBuf>,
    /// IOC lists for placeholders (default: `iocs` inside the first rules folder).
    pub iocs: Option<PathBuf>,
    /// How often rule, mapping and IOC files are checked for changes (SIGHUP reloads at once).
    pub reload_interval: Duration,
    /// Repeats of an alert (same rule and key) within this time fold into it.
    pub suppress: Duration,
    /// The same per rule (by id, or title for a rule without one), where it differs.
    pub suppress_rules: BTreeMap<String, Duration>,
    /// How late (event time) events may arrive and still count in correlations.
    pub lateness: Duration,
    /// Events held by correlations, across all groups.
    pub max_correlation_events: usize,
    /// Sample events kept per alert.
    pub samples: usize,
}

impl Default for DetectionConfig {
    fn default() -> Self {
        DetectionConfig {
            rules: vec![PathBuf::from("rules")],
            rules_default: true,
            mapping: None,
            iocs: None,
            reload_interval: Duration::from_secs(2),
            suppress: Duration::from_secs(600),
            suppress_rules: BTreeMap::new(),
            lateness: Duration::from_secs(60),
            max_correlation_events: 1_000_000,
            samples: 5,
        }
    }
}

/// Where the sender inventory lives and how often it is checked for changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryConfig {
    pub file: PathBuf,
    pub reload_interval: Duration,
}

/// A UDP syslog listener and how its messages are parsed.
#[derive(Debug, Clone)]
pub struct UdpListener {
    pub socket: UdpConfig,
    pub format: Format,
    /// Zone of device timestamps that carry none.
    pub timezone: Zone,
}

/// A TCP syslog listener and how its messages are parsed.
#[derive(Debug, Clone)]
pub struct TcpListener {
    pub socket: TcpConfig,
    pub format: Format,
    /// Zone of device timestamps that carry none.
    pub timezone: Zone,
}

/// The parse stage and the batches it produces.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Parser worker threads (default: one per core).
    pub parser_threads: usize,
    /// Chunks each parser worker's queue holds before TCP readers wait and UDP drops.
    pub queue_chunks: usize,
    /// A batch is handed on at this many rows, …
    pub batch_rows: usize,
    /// … or this many bytes, …
    pub batch_bytes: usize,
    /// … or when its oldest row is this old, whichever comes first.
    pub batch_timeout: Duration,
    /// Batches waiting for the sink before parsers wait.
    pub sink_queue_batches: usize,
}

/// The Parquet archive.
#[derive(Debug, Clone)]
pub struct ArchiveConfig {
    /// A file is completed and a new one started past this size, …
    pub max_file_size: usize,
    /// … or when it has been open this long (so recent data becomes readable).
    pub max_file_age: Duration,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// zstd compression level (1–22).
    pub zstd_level: i32,
    /// Writer threads, each with its own files: encoding Parquet costs more per row than
    /// parsing, so one writer bounds a many-core machine's throughput. The engine runs no more
    /// of them than parser threads, which are what feed them.
    pub writers: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            parser_threads: default_threads(),
            queue_chunks: 64,
            // 8,192 rows: large enough that per-batch costs (channel hand-off, Parquet column
            // chunk headers) vanish, small enough that a batch of 1 KB lines stays ~8 MB.
            batch_rows: 8192,
            batch_bytes: 16 << 20,
            batch_timeout: Duration::from_millis(50),
            sink_queue_batches: 16,
        }
    }
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        ArchiveConfig {
            max_file_size: 128 << 20,
            max_file_age: Duration::from_secs(60),
            row_group_rows: 64 * 1024,
            // Level 1 ("fast" strategy) encodes about twice as fast as 3 ("double fast") on
            // syslog text, for files ~10% larger (benches/RESULTS.md); the archive writer is
            // the busiest thread, so speed wins by default.
            zstd_level: 1,
            writers: default_writers(),
        }
    }
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Half the cores, 1 to 8. Writing a row costs about twice parsing it (benches/RESULTS.md,
/// "The archive writer alone"), so past two cores a single writer would bound the throughput;
/// each writer keeps its own open files and row groups in memory.
fn default_writers() -> usize {
    (default_threads() / 2).clamp(1, 8)
}

impl Config {
    /// The archive writer threads the engine runs: `[archive] writers`, but no more than the
    /// parser threads, which are all that feed them (a writer beyond them would never see a
    /// batch).
    pub fn archive_writers(&self) -> usize {
        self.archive
            .writers
            .min(self.pipeline.parser_threads)
            .max(1)
    }
}

impl Default for Config {
    /// The embedded default: syslog on UDP and TCP 5514, NetFlow on UDP 2055 and IPFIX on UDP
    /// 4739, all interfaces; archive in `./data`; metrics on 127.0.0.1:9300.
    fn default() -> Self {
        let any = SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, DEFAULT_SYSLOG_PORT));
        Config {
            data_dir: PathBuf::from("data"),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 9300)),
            udp: vec![UdpListener {
                socket: default_udp("syslog-udp".into(), any),
                format: Format::Auto,
                timezone: Zone::default(),
            }],
            tcp: vec![TcpListener {
                socket: default_tcp("syslog-tcp".into(), any),
                format: Format::Auto,
                timezone: Zone::default(),
            }],
            netflow: vec![
                default_netflow("netflow".into(), DEFAULT_NETFLOW_PORT),
                default_netflow("ipfix".into(), DEFAULT_IPFIX_PORT),
            ],
            pipeline: PipelineConfig::default(),
            archive: ArchiveConfig::default(),
            inventory: None,
            detection: DetectionConfig::default(),
            clickhouse: None,
            outbox: OutboxSettings::default(),
            forward: Vec::new(),
        }
    }
}

fn default_udp(name: Arc<str>, addr: SocketAddr) -> UdpConfig {
    UdpConfig {
        name,
        addr,
        sockets: default_threads(),
        receive_buffer: 8 << 20,
        max_message_size: 64 * 1024,
        transport: Transport::Udp,
    }
}

fn default_netflow(name: Arc<str>, port: u16) -> UdpConfig {
    UdpConfig {
        transport: Transport::Netflow,
        ..default_udp(
            name,
            SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port)),
        )
    }
}

fn default_tcp(name: Arc<str>, addr: SocketAddr) -> TcpConfig {
    TcpConfig {
        name,
        addr,
        max_connections: 4096,
        idle_timeout: Duration::from_secs(600),
        max_message_size: 64 * 1024,
        framing: Framing::Auto,
    }
}

/// Every problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct ConfigErrors(pub Vec<String>);

impl Config {
    /// Reads and validates a TOML configuration.
    pub fn from_toml(text: &str) -> Result<Config, ConfigErrors> {
        let root: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let at = e
                .span()
                .map(|s| line_col(text, s.start))
                .unwrap_or_default();
            ConfigErrors(vec![format!("{at}{}", e.message())])
        })?;
        let mut r = Reader::default();
        let config = r.config(&root);
        if r.errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(r.errors))
        }
    }

    /// Reads a configuration file.
    pub fn from_file(path: &std::path::Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigErrors(vec![format!("{}: {e}", path.display())]))?;
        Config::from_toml(&text)
    }

    /// The archive folder.
    pub fn archive_dir(&self) -> PathBuf {
        self.data_dir.join("archive")
    }

    /// The outbox, with its folder.
    pub fn outbox(&self) -> OutboxConfig {
        let o = &self.outbox;
        OutboxConfig {
            dir: o
                .dir
                .clone()
                .unwrap_or_else(|| self.data_dir.join("outbox")),
            max_size: o.max_size,
            segment_size: o.segment_size,
            fsync: o.fsync,
            retention: o.retention,
        }
    }

    /// Adds a destination given by its URL alone (`canh serve --forward URL`); its name is
    /// made from the scheme, host and port, numbered when that name is taken.
    pub fn add_forward(&mut self, url: &str) -> Result<(), String> {
        let mut d = Destination::from_url(url)?;
        let base = d.name.clone();
        let mut n = 1;
        while self.forward.iter().any(|f| f.name == d.name) {
            n += 1;
            d.name = format!("{base}-{n}");
        }
        self.forward.push(d);
        Ok(())
    }
}

fn line_col(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |p| p + 1) + 1;
    format!("line {line}, column {col}: ")
}

/// A TOML table being read: remembers which keys were asked for, to report the rest.
struct Section<'a> {
    path: String,
    table: &'a toml::Table,
    used: BTreeSet<&'static str>,
}

impl<'a> Section<'a> {
    fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn get(&mut self, key: &'static str) -> Option<(&'a Value, String)> {
        self.used.insert(key);
        self.table.get(key).map(|v| (v, self.key_path(key)))
    }
}

#[derive(Default)]
struct Reader {
    errors: Vec<String>,
}

impl Reader {
    fn error(&mut self, path: &str, msg: impl std::fmt::Display) {
        self.errors.push(format!("{path}: {msg}"));
    }

    fn section<'a>(&mut self, path: &str, v: &'a Value) -> Option<Section<'a>> {
        match v {
            Value::Table(table) => Some(Section {
                path: path.to_owned(),
                table,
                used: BTreeSet::new(),
            }),
            other => {
                self.error(
                    path,
                    format!("expected a table, found {}", other.type_str()),
                );
                None
            }
        }
    }

    /// Reports the keys of `s` nobody asked for.
    fn done(&mut self, s: Section<'_>) {
        for key in s.table.keys() {
            if !s.used.contains(key.as_str()) {
                let known: Vec<&str> = s.used.iter().copied().collect();
                self.error(
                    &s.key_path(key),
                    format!("unknown key (known keys here: {})", known.join(", ")),
                );
            }
        }
    }

    fn string(&mut self, s: &mut Section<'_>, key: &'static str) -> Option<String> {
        let (v, path) = s.get(key)?;
        match v.as_str() {
            Some(text) => Some(text.to_owned()),
            None => {
                self.error(&path, format!("expected a string, found {}", v.type_str()));
                None
            }
        }
    }

    fn strings(&mut self, s: &mut Section<'_>, key: &'static str) -> Option<Vec<String>> {
        let (v, path) = s.get(key)?;
        let strings: Option<Vec<String>> = v.as_array().and_then(|items| {
            items
                .iter()
                .map(|i| i.as_str().map(str::to_owned))
                .collect()
        });
        if strings.is_none() {
            self.error(&path, "expected a list of strings");
        }
        strings
    }

    fn integer(
        &mut self,
        s: &mut Section<'_>,
        key: &'static str,
        min: i64,
        max: i64,
    ) -> Option<i64> {
        let (v, path) = s.get(key)?;
        match v.as_integer() {
            Some(n) if (min..=max).contains(&n) => Some(n),
            Some(n) => {
                self.error(&path, format!("{n} is out of range ({min}..={max})"));
                None
            }
            None => {
                self.error(
                    &path,
                    format!("expected an integer, found {}", v.type_str()),
                );
                None
            }
        }
    }

    /// A byte size: an integer or a string like `"64 KiB"`, `"8MiB"`, `"1G"`.
    fn size(
        &mut self,
        s: &mut Section<'_>,
        key: &'static str,
        min: usize,
        max: usize,
    ) -> Option<usize> {
        let (v, path) = s.get(key)?;
        let n = match v {
            Value::Integer(n) => usize::try_from(*n).ok(),
            Value::String(text) => parse_size(text),
            _ => None,
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Some(n),
            Some(n) => {
                self.error(&path, format!("{n} bytes is out of range ({min}..={max})"));
                None
            }
            None => {
                self.error(
                    &path,
                    "expected a size in bytes: an integer or a string such as \"64 KiB\"",
                );
                None
            }
        }
    }

    fn duration(
        &mut self,
        s: &mut Section<'_>,
        key: &'static str,
        min: Duration,
    ) -> Option<Duration> {
        let text = self.string(s, key)?;
        let path = s.key_path(key);
        match humantime::parse_duration(&text) {
            Ok(d) if d >= min => Some(d),
            Ok(_) => {
                self.error(
                    &path,
                    format!("must be at least {}", humantime::format_duration(min)),
                );
                None
            }
            Err(e) => {
                self.error(
                    &path,
                    format!("{e} (expected a duration such as \"50ms\", \"10m\")"),
                );
                None
            }
        }
    }

    fn addr(&mut self, s: &mut Section<'_>, key: &'static str) -> Option<SocketAddr> {
        let text = self.string(s, key)?;
        match text.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                self.error(
                    &s.key_path(key),
                    format!("{text:?} is not an address such as \"0.0.0.0:5514\" or \"[::]:5514\""),
                );
                None
            }
        }
    }

    fn timezone(&mut self, s: &mut Section<'_>) -> Zone {
        let Some(text) = self.string(s, "timezone") else {
            return Zone::default();
        };
        Zone::parse(&text).unwrap_or_else(|e| {
            self.error(&s.key_path("timezone"), e);
            Zone::default()
        })
    }

    fn format(&mut self, s: &mut Section<'_>) -> Format {
        let Some(text) = self.string(s, "format") else {
            return Format::Auto;
        };
        Format::parse(&text).unwrap_or_else(|e| {
            self.error(&s.key_path("format"), e);
            Format::Auto
        })
    }

    fn detection(&mut self, s: &mut Section<'_>, d: &mut DetectionConfig) {
        if let Some((v, path)) = s.get("rules") {
            let paths: Option<Vec<PathBuf>> = match v {
                Value::String(p) => Some(vec![PathBuf::from(p)]),
                Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map(PathBuf::from))
                    .collect(),
                _ => None,
            };
            match paths {
                // An empty list turns detection off.
                Some(p) => {
                    d.rules = p;
                    d.rules_default = false;
                }
                None => self.error(&path, "expected a path or a list of paths"),
            }
        }
        if let Some(m) = self.string(s, "mapping") {
            d.mapping = Some(PathBuf::from(m));
        }
        if let Some(i) = self.string(s, "iocs") {
            d.iocs = Some(PathBuf::from(i));
        }
        if let Some(t) = self.duration(s, "reload_interval", Duration::from_millis(100)) {
            d.reload_interval = t;
        }
        if let Some(t) = self.duration(s, "suppress", Duration::ZERO) {
            d.suppress = t;
        }
        if let Some((v, path)) = s.get("suppress_rules") {
            match v.as_table() {
                Some(rules) => {
                    for (rule, v) in rules {
                        let at = format!("{path}.{rule}");
                        match v.as_str().map(humantime::parse_duration) {
                            Some(Ok(t)) => {
                                d.suppress_rules.insert(rule.clone(), t);
                            }
                            Some(Err(e)) => self.error(&at, format!("not a duration: {e}")),
                            None => self.error(
                                &at,
                                format!(
                                    "expected a duration such as \"1h\", found {}",
                                    v.type_str()
                                ),
                            ),
                        }
                    }
                }
                None => self.error(
                    &path,
                    format!(
                        "expected a table of rule ids and durations, found {}",
                        v.type_str()
                    ),
                ),
            }
        }
        if let Some(t) = self.duration(s, "lateness", Duration::ZERO) {
            d.lateness = t;
        }
        if let Some(n) = self.integer(s, "max_correlation_events", 1_000, 1 << 34) {
            d.max_correlation_events = n as usize;
        }
        if let Some(n) = self.integer(s, "samples", 0, 100) {
            d.samples = n as usize;
        }
    }

    fn config(&mut self, root: &toml::Table) -> Config {
        let mut c = Config::default();
        let mut top = Section {
            path: String::new(),
            table: root,
            used: BTreeSet::new(),
        };
        if let Some(dir) = self.string(&mut top, "data_dir") {
            c.data_dir = PathBuf::from(dir);
        }
        if let Some((v, path)) = top.get("http") {
            if let Some(mut s) = self.section(&path, v) {
                c.http_listen = self.addr(&mut s, "listen").unwrap_or(c.http_listen);
                self.done(s);
            }
        }
        if let Some((v, path)) = top.get("syslog") {
            if let Some(mut s) = self.section(&path, v) {
                c.udp = self.listeners(&mut s, "syslog", "udp", |r, l, name| r.udp(l, name));
                c.tcp = self.listeners(&mut s, "syslog", "tcp", |r, l, name| r.tcp(l, name));
                self.done(s);
            }
        }
        if let Some((v, path)) = top.get("netflow") {
            if let Some(mut s) = self.section(&path, v) {
                c.netflow =
                    self.listeners(&mut s, "netflow", "udp", |r, l, name| r.netflow(l, name));
                self.done(s);
            }
        }
        if let Some((v, path)) = top.get("pipeline") {
            if let Some(mut s) = self.section(&path, v) {
                self.pipeline(&mut s, &mut c.pipeline);
                self.done(s);
            }
        }
        if let Some((v, path)) = top.get("inventory") {
            if let Some(mut s) = self.section(&path, v) {
                let file = self.string(&mut s, "file");
                let reload_interval = self
                    .duration(&mut s, "reload_interval", Duration::from_millis(100))
                    .unwrap_or(Duration::from_secs(5));
                match file {
                    Some(f) => {
                        c.inventory = Some(InventoryConfig {
                            file: PathBuf::from(f),
                            reload_interval,
                        })
                    }
                    None => self.error(&s.key_path("file"), "is required".to_string()),
                }
                self.done(s);
            }
        }
        if let Some((v, path)) = top.get("detection") {
            if let Some(mut s) = self.section(&path, v) {
                self.detection(&mut s, &mut c.detection);
                self.done(s);
            }
        }
        if let Some((v, path)) = top.get("clickhouse") {
            if let Some(mut s) = self.section(&path, v) {
                c.clickhouse = self.clickhouse(&mut s);
                self.done(s);
            }
        }
        if let Some((v, path)) = top.get("outbox") {
            if let Some(mut s) = self.section(&path, v) {
                self.outbox(&mut s, &mut c.outbox);
                self.done(s);
            }
        }
        if let Some((v, path)) = top.get("forward") {
            let mut names = BTreeSet::new();
            match v.as_array() {
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if let Some(mut s) = self.section(&format!("forward[{i}]"), item) {
                            if let Some(d) = self.destination(&mut s) {
                                if !names.insert(d.name.clone()) {
                                    self.error(
                                        &s.key_path("name"),
                                        format!("{:?} is used by another destination", d.name),
                                    );
                                }
                                c.forward.push(d);
                            }
                            self.done(s);
                        }
                    }
                }
                None => self.error(
                    &path,
                    format!(
                        "expected an array of tables ([[forward]]), found {}",
                        v.type_str()
                    ),
                ),
            }
        }
        if let Some((v, path)) = top.get("archive") {
            if let Some(mut s) = self.section(&path, v) {
                self.archive(&mut s, &mut c.archive);
                self.done(s);
            }
        }
        self.done(top);
        self.check_names(&c);
        c
    }

    fn listeners<T>(
        &mut self,
        s: &mut Section<'_>,
        prefix: &str,
        key: &'static str,
        read: impl Fn(&mut Reader, &mut Section<'_>, Arc<str>) -> T,
    ) -> Vec<T> {
        let Some((v, path)) = s.get(key) else {
            return Vec::new();
        };
        let Some(items) = v.as_array() else {
            self.error(
                &path,
                format!(
                    "expected an array of tables ([[{path}]]), found {}",
                    v.type_str()
                ),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            if let Some(mut l) = self.section(&item_path, item) {
                let name: Arc<str> = self
                    .string(&mut l, "name")
                    .unwrap_or_else(|| format!("{prefix}-{key}-{i}"))
                    .into();
                out.push(read(self, &mut l, name));
                self.done(l);
            }
        }
        out
    }

    fn udp(&mut self, l: &mut Section<'_>, name: Arc<str>) -> UdpListener {
        let u = default_udp(
            name,
            SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, DEFAULT_SYSLOG_PORT)),
        );
        UdpListener {
            socket: self.udp_socket(l, u),
            format: self.format(l),
            timezone: self.timezone(l),
        }
    }

    /// A `[[netflow.udp]]` listener: the socket settings of a syslog UDP listener.
    fn netflow(&mut self, l: &mut Section<'_>, name: Arc<str>) -> UdpConfig {
        let u = default_netflow(name, DEFAULT_NETFLOW_PORT);
        self.udp_socket(l, u)
    }

    /// The socket settings every UDP listener has, over `u`'s defaults.
    fn udp_socket(&mut self, l: &mut Section<'_>, mut u: UdpConfig) -> UdpConfig {
        u.addr = self.addr(l, "listen").unwrap_or(u.addr);
        u.sockets = self
            .integer(l, "sockets", 1, 256)
            .map_or(u.sockets, |n| n as usize);
        u.receive_buffer = self
            .size(l, "receive_buffer", 4096, 1 << 30)
            .unwrap_or(u.receive_buffer);
        u.max_message_size = self
            .size(l, "max_message_size", 64, 65_536)
            .unwrap_or(u.max_message_size);
        u
    }

    fn tcp(&mut self, l: &mut Section<'_>, name: Arc<str>) -> TcpListener {
        let mut t = default_tcp(
            name,
            SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, DEFAULT_SYSLOG_PORT)),
        );
        t.addr = self.addr(l, "listen").unwrap_or(t.addr);
        t.max_connections = self
            .integer(l, "max_connections", 1, 1_000_000)
            .map_or(t.max_connections, |n| n as usize);
        t.idle_timeout = self
            .duration(l, "idle_timeout", Duration::from_secs(1))
            .unwrap_or(t.idle_timeout);
        t.max_message_size = self
            .size(l, "max_message_size", 64, 16 << 20)
            .unwrap_or(t.max_message_size);
        if let Some(text) = self.string(l, "framing") {
            t.framing = match text.as_str() {
                "auto" => Framing::Auto,
                "octet-counting" => Framing::OctetCounting,
                "newline" => Framing::NonTransparent,
                other => {
                    self.error(
                        &l.key_path("framing"),
                        format!("unknown framing {other:?} (one of auto, octet-counting, newline)"),
                    );
                    Framing::Auto
                }
            };
        }
        TcpListener {
            socket: t,
            format: self.format(l),
            timezone: self.timezone(l),
        }
    }

    fn pipeline(&mut self, s: &mut Section<'_>, p: &mut PipelineConfig) {
        if let Some(n) = self.integer(s, "parser_threads", 0, 1024) {
            p.parser_threads = if n == 0 {
                default_threads()
            } else {
                n as usize
            };
        }
        p.queue_chunks = self
            .integer(s, "queue_chunks", 1, 1 << 20)
            .map_or(p.queue_chunks, |n| n as usize);
        p.batch_rows = self
            .integer(s, "batch_rows", 1, 1 << 20)
            .map_or(p.batch_rows, |n| n as usize);
        p.batch_bytes = self
            .size(s, "batch_bytes", 1024, 1 << 30)
            .unwrap_or(p.batch_bytes);
        p.batch_timeout = self
            .duration(s, "batch_timeout", Duration::from_millis(1))
            .unwrap_or(p.batch_timeout);
        p.sink_queue_batches = self
            .integer(s, "sink_queue_batches", 1, 4096)
            .map_or(p.sink_queue_batches, |n| n as usize);
    }

    fn clickhouse(&mut self, s: &mut Section<'_>) -> Option<ClickHouseConfig> {
        let url = self.string(s, "url");
        let mut c = ClickHouseConfig::new(url.as_deref().unwrap_or_default());
        match &url {
            None => self.error(&s.key_path("url"), "is required"),
            Some(u) => {
                if let Err(e) = ClickHouseConfig::check_url(u) {
                    self.error(&s.key_path("url"), e);
                }
            }
        }
        if let Some(db) = self.string(s, "database") {
            if db.is_empty() || !db.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                self.error(
                    &s.key_path("database"),
                    format!("{db:?}: use letters, digits and _"),
                );
            }
            c.database = db;
        }
        c.batch_rows = self
            .integer(s, "batch_rows", 1, 10_000_000)
            .map_or(c.batch_rows, |n| n as usize);
        c.flush_interval = self
            .duration(s, "flush_interval", Duration::from_millis(10))
            .unwrap_or(c.flush_interval);
        c.timeout = self
            .duration(s, "timeout", Duration::from_millis(100))
            .unwrap_or(c.timeout);
        c.parallel_inserts = self
            .integer(s, "parallel_inserts", 1, 16)
            .map_or(c.parallel_inserts, |n| n as usize);
        c.spool_max_size = self
            .size(s, "spool_max_size", 1 << 20, usize::MAX)
            .map_or(c.spool_max_size, |n| n as u64);
        c.retention_days = self
            .integer(s, "retention_days", 1, 36_500)
            .map(|n| n as u32);
        c.user = self.string(s, "user");
        c.password = self.string(s, "password");
        for (key, slot) in [
            ("ca_file", &mut c.ca_file),
            ("client_cert", &mut c.client_cert),
            ("client_key", &mut c.client_key),
        ] {
            *slot = self.string(s, key).map(PathBuf::from);
        }
        if c.client_cert.is_some() != c.client_key.is_some() {
            self.error(
                &s.key_path("client_cert"),
                "client_cert and client_key go together",
            );
        }
        c.cluster = self.string(s, "cluster");
        if let Some(shards) = self.strings(s, "shards") {
            for (i, u) in shards.iter().enumerate() {
                if let Err(e) = ClickHouseConfig::check_url(u) {
                    self.error(&format!("{}[{i}]", s.key_path("shards")), e);
                }
            }
            c.shards = shards
                .iter()
                .map(|u| u.trim_end_matches('/').to_owned())
                .collect();
        }
        match (&c.cluster, c.shards.is_empty()) {
            (Some(name), _)
                if name.is_empty()
                    || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
            {
                self.error(
                    &s.key_path("cluster"),
                    format!("{name:?}: use letters, digits and _"),
                );
            }
            (Some(_), true) => self.error(
                &s.key_path("shards"),
                "a cluster needs the HTTP URL of every shard server: the per-shard tables are \
                 created on each (ON CLUSTER would need ZooKeeper)",
            ),
            (None, false) => self.error(&s.key_path("shards"), "given without a cluster name"),
            _ => {}
        }
        Some(c)
    }

    fn outbox(&mut self, s: &mut Section<'_>, o: &mut OutboxSettings) {
        if let Some(d) = self.string(s, "dir") {
            o.dir = Some(PathBuf::from(d));
        }
        o.max_size = self
            .size(s, "max_size", 1 << 20, usize::MAX)
            .map_or(o.max_size, |n| n as u64);
        o.segment_size = self
            .size(s, "segment_size", 64 << 10, 1 << 30)
            .map_or(o.segment_size, |n| n as u64);
        if o.segment_size > o.max_size / 4 {
            self.error(
                &s.key_path("segment_size"),
                "must be at most a quarter of max_size (space is freed a segment at a time)",
            );
        }
        let interval = self.duration(s, "fsync_interval", Duration::from_millis(1));
        if let Some(f) = self.string(s, "fsync") {
            o.fsync = match f.as_str() {
                "batch" => Fsync::Batch,
                "interval" => Fsync::Interval(interval.unwrap_or(Duration::from_secs(1))),
                "off" => Fsync::Off,
                other => {
                    self.error(
                        &s.key_path("fsync"),
                        format!("{other:?}: expected \"batch\", \"interval\" or \"off\""),
                    );
                    o.fsync
                }
            };
        }
        if interval.is_some() && !matches!(o.fsync, Fsync::Interval(_)) {
            self.error(
                &s.key_path("fsync_interval"),
                "only with fsync = \"interval\"",
            );
        }
        o.retention = self
            .duration(s, "retention", Duration::ZERO)
            .unwrap_or(o.retention);
    }

    fn destination(&mut self, s: &mut Section<'_>) -> Option<Destination> {
        let Some(url) = self.string(s, "url") else {
            self.error(&s.key_path("url"), "is required");
            return None;
        };
        let mut d = match Destination::from_url(&url) {
            Ok(d) => d,
            Err(e) => {
                self.error(&s.key_path("url"), e);
                return None;
            }
        };
        if let Some(name) = self.string(s, "name") {
            if !canh_forward::dest::valid_name(&name) {
                self.error(
                    &s.key_path("name"),
                    format!("{name:?}: use letters, digits, '.', '-' and '_' (it names files)"),
                );
            }
            d.name = name;
        }
        if let Some(u) = self.string(s, "user") {
            d.user = Some(u);
        }
        if let Some(p) = self.string(s, "password") {
            d.password = Some(p);
        }
        d.token = self.string(s, "token");
        if d.token.is_some() && d.user.is_some() {
            self.error(
                &s.key_path("token"),
                "give a token or a user and password, not both",
            );
        }
        for (key, slot) in [
            ("ca_file", &mut d.tls.ca_file),
            ("client_cert", &mut d.tls.client_cert),
            ("client_key", &mut d.tls.client_key),
        ] {
            *slot = self.string(s, key).map(PathBuf::from);
        }
        if d.tls.client_cert.is_some() != d.tls.client_key.is_some() {
            self.error(
                &s.key_path("client_cert"),
                "client_cert and client_key go together",
            );
        }
        if let Some(level) = self.string(s, "min_level") {
            if !["informational", "low", "medium", "high", "critical"].contains(&level.as_str()) {
                self.error(
                    &s.key_path("min_level"),
                    format!("{level:?}: one of informational, low, medium, high, critical"),
                );
            }
            d.filter.min_level = Some(level);
        }
        d.filter.tags = self.strings(s, "tags").unwrap_or_default();
        d.filter.organizations = self.strings(s, "organizations").unwrap_or_default();
        d.redact.0 = self.strings(s, "redact").unwrap_or_default();
        if let Some((v, path)) = s.get("rate") {
            match v.as_float().or_else(|| v.as_integer().map(|n| n as f64)) {
                Some(r) if r > 0.0 && r.is_finite() => d.rate = Some(r),
                _ => self.error(&path, "expected a positive number of alerts per second"),
            }
        }
        d.batch = self
            .integer(s, "batch", 1, 10_000)
            .map_or(d.batch, |n| n as usize);
        d.min_backoff = self
            .duration(s, "min_backoff", Duration::from_millis(1))
            .unwrap_or(d.min_backoff);
        d.max_backoff = self
            .duration(s, "max_backoff", Duration::from_millis(1))
            .unwrap_or(d.max_backoff);
        if d.max_backoff < d.min_backoff {
            self.error(&s.key_path("max_backoff"), "is shorter than min_backoff");
        }
        d.timeout = self
            .duration(s, "timeout", Duration::from_millis(100))
            .unwrap_or(d.timeout);
        let kind = match &d.kind {
            canh_forward::dest::Kind::Taxii { .. } => "taxii",
            canh_forward::dest::Kind::Syslog { .. } => "syslog",
            canh_forward::dest::Kind::Webhook { .. } => "webhook",
        };
        let prefix = s.path.clone();
        let only = |r: &mut Reader, key: &str, want: &str| {
            if kind != want {
                r.error(
                    &format!("{prefix}.{key}"),
                    format!("applies to {want} destinations only"),
                );
            }
        };
        if let Some(i) = self.string(s, "identity") {
            only(self, "identity", "taxii");
            d.identity = i;
        }
        if let Some(t) = self.string(s, "tlp") {
            only(self, "tlp", "taxii");
            match Tlp::parse(&t) {
                Some(t) => d.tlp = t,
                None => self.error(
                    &s.key_path("tlp"),
                    format!("{t:?}: white, green, amber or red"),
                ),
            }
        }
        if let Some(h) = self.string(s, "hostname") {
            only(self, "hostname", "syslog");
            d.hostname = Some(h);
        }
        if let Some(k) = self.string(s, "signing_key") {
            only(self, "signing_key", "webhook");
            d.signing_key = Some(k);
        }
        Some(d)
    }

    fn archive(&mut self, s: &mut Section<'_>, a: &mut ArchiveConfig) {
        a.max_file_size = self
            .size(s, "max_file_size", 1 << 20, 64 << 30)
            .unwrap_or(a.max_file_size);
        a.max_file_age = self
            .duration(s, "max_file_age", Duration::from_secs(1))
            .unwrap_or(a.max_file_age);
        a.row_group_rows = self
            .integer(s, "row_group_rows", 1024, 1 << 24)
            .map_or(a.row_group_rows, |n| n as usize);
        a.zstd_level = self
            .integer(s, "zstd_level", 1, 22)
            .map_or(a.zstd_level, |n| n as i32);
        if let Some(n) = self.integer(s, "writers", 0, 64) {
            a.writers = if n == 0 {
                default_writers()
            } else {
                n as usize
            };
        }
    }

    /// Listener names label metrics and rows, so they must be unique; two listeners of one
    /// protocol cannot share an address.
    fn check_names(&mut self, c: &Config) {
        let mut names = BTreeSet::new();
        let all = c
            .udp
            .iter()
            .map(|u| (&u.socket.name, "syslog.udp"))
            .chain(c.tcp.iter().map(|t| (&t.socket.name, "syslog.tcp")))
            .chain(c.netflow.iter().map(|n| (&n.name, "netflow.udp")));
        for (name, proto) in all {
            if !names.insert(name.to_string()) {
                self.error(proto, format!("listener name {name:?} is used twice"));
            }
        }
        // Syslog and NetFlow listeners share the UDP port space.
        let udp = c
            .udp
            .iter()
            .enumerate()
            .map(|(i, u)| (format!("syslog.udp[{i}]"), u.socket.addr))
            .chain(
                c.netflow
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (format!("netflow.udp[{i}]"), n.addr)),
            )
            .collect::<Vec<_>>();
        let tcp = c
            .tcp
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("syslog.tcp[{i}]"), t.socket.addr))
            .collect::<Vec<_>>();
        for (proto, addrs) in [("udp", udp), ("tcp", tcp)] {
            for (i, (path, a)) in addrs.iter().enumerate() {
                if a.port() != 0 && addrs[..i].iter().any(|(_, b)| b == a) {
                    self.error(
                        &format!("{path}.listen"),
                        format!("{a} is already used by another {proto} listener"),
                    );
                }
            }
        }
    }
}

/// `"64 KiB"`, `"8MiB"`, `"1G"`, `"512"` → bytes (binary multiples).
pub fn parse_size(text: &str) -> Option<usize> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num.parse().ok()?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_writers_default_to_half_the_cores_and_are_bounded() {
        let c = Config::from_toml("").expect("valid");
        assert_eq!(c.archive.writers, (default_threads() / 2).clamp(1, 8));
        let c = Config::from_toml("[archive]\nwriters = 0\n").expect("valid");
        assert_eq!(c.archive.writers, default_writers());
        let c = Config::from_toml("[archive]\nwriters = 3\n").expect("valid");
        assert_eq!(c.archive.writers, 3);
        // No more writers than parsers feed.
        let c = Config::from_toml("[pipeline]\nparser_threads = 4\n[archive]\nwriters = 3\n")
            .expect("valid");
        assert_eq!(c.archive_writers(), 3);
        let c = Config::from_toml("[pipeline]\nparser_threads = 2\n[archive]\nwriters = 5\n")
            .expect("valid");
        assert_eq!(c.archive_writers(), 2);
        let errors = Config::from_toml("[archive]\nwriters = 65\nzstd_level = 0\n")
            .expect_err("out of range")
            .0;
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors.iter().any(|e| e.starts_with("archive.writers: 65")),
            "{errors:?}"
        );
    }

    #[test]
    fn empty_config_is_the_embedded_default() {
        let c = Config::from_toml("").expect("valid");
        assert_eq!(c.udp.len(), 1);
        assert_eq!(c.tcp.len(), 1);
        assert_eq!(c.tcp[0].socket.addr.port(), DEFAULT_SYSLOG_PORT);
        let flows: Vec<(&str, u16)> = c
            .netflow
            .iter()
            .map(|n| (&*n.name, n.addr.port()))
            .collect();
        assert_eq!(flows, [("netflow", 2055), ("ipfix", 4739)]);
        assert!(c.netflow.iter().all(|n| n.transport == Transport::Netflow));
        assert_eq!(c.udp[0].socket.transport, Transport::Udp);
        assert_eq!(c.http_listen, SocketAddr::from(([127, 0, 0, 1], 9300)));
        assert_eq!(c.archive_dir(), PathBuf::from("data/archive"));
        assert_eq!(c.clickhouse, None);
        let c = Config::from_toml(
            "[clickhouse]\nurl = \"http://127.0.0.1:8123/\"\nbatch_rows = 5000\n",
        )
        .expect("valid");
        let ch = c.clickhouse.expect("clickhouse");
        assert_eq!(
            (ch.url.as_str(), ch.database.as_str(), ch.batch_rows),
            ("http://127.0.0.1:8123", "canh", 5000)
        );
        assert_eq!(ch.parallel_inserts, 2);
        let c = Config::from_toml(
            "[clickhouse]\nurl = \"http://127.0.0.1:8123\"\nparallel_inserts = 1\n",
        )
        .expect("valid");
        assert_eq!(c.clickhouse.expect("clickhouse").parallel_inserts, 1);
        let c = Config::from_toml(
            "[clickhouse]\nurl = \"http://127.0.0.1:8123\"\ncluster = \"two\"\n\
             shards = [\"http://127.0.0.1:8123/\", \"http://127.0.0.1:8124\"]\n",
        )
        .expect("valid");
        let ch = c.clickhouse.expect("clickhouse");
        assert_eq!(ch.cluster.as_deref(), Some("two"));
        assert_eq!(
            ch.shards,
            ["http://127.0.0.1:8123", "http://127.0.0.1:8124"]
        );
        let errors = Config::from_toml("[clickhouse]\nurl = \"http://h:1\"\ncluster = \"c\"\n")
            .expect_err("a cluster without shards")
            .0;
        assert!(
            errors[0].starts_with("clickhouse.shards: a cluster needs"),
            "{errors:?}"
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let text = r#"
            data_dir = 5
            colour = "blue"
            [http]
            listen = "nowhere"
            [[syslog.udp]]
            listen = "127.0.0.1:1"
            sockets = 0
            receive_buffer = "lots"
            [[syslog.tcp]]
            name = "t"
            framing = "smoke-signals"
            idle_timeout = "soon"
            format = "xml"
            timezone = "Mars/Olympus"
            extra = 1
            [pipeline]
            batch_rows = -1
            [inventory]
            reload_interval = "1s"
            [clickhouse]
            url = "https://ch.example:8443"
            client_key = "k.pem"
            database = "canh-prod"
            flush_interval = "1ns"
            retention_days = 0
            parallel_inserts = 17
            shards = ["http://127.0.0.1:1", 5]
        "#;
        let errors = Config::from_toml(text).expect_err("invalid").0;
        let expect = [
            "data_dir: expected a string",
            "colour: unknown key",
            "http.listen: \"nowhere\" is not an address",
            "syslog.udp[0].sockets: 0 is out of range",
            "syslog.udp[0].receive_buffer: expected a size",
            "syslog.tcp[0].framing: unknown framing",
            "syslog.tcp[0].idle_timeout:",
            "syslog.tcp[0].format: unknown format",
            "syslog.tcp[0].timezone: \"Mars/Olympus\" is not a UTC offset",
            "syslog.tcp[0].extra: unknown key",
            "pipeline.batch_rows: -1 is out of range",
            "inventory.file: is required",
            "clickhouse.client_cert: client_cert and client_key go together",
            "clickhouse.database: \"canh-prod\": use letters, digits and _",
            "clickhouse.flush_interval: must be at least 10ms",
            "clickhouse.retention_days: 0 is out of range",
            "clickhouse.parallel_inserts: 17 is out of range",
            "clickhouse.shards: expected a list of strings",
        ];
        for e in expect {
            assert!(
                errors.iter().any(|x| x.starts_with(e)),
                "missing {e:?} in {errors:#?}"
            );
        }
        assert_eq!(errors.len(), expect.len(), "{errors:#?}");
    }

    #[test]
    fn listeners_take_a_vendor_format_and_a_time_zone() {
        let text = r#"
            [[syslog.udp]]
            name = "fortigates"
            listen = "127.0.0.1:5515"
            format = "fortigate"
            timezone = "Asia/Ho_Chi_Minh"
            [[syslog.tcp]]
            name = "switches"
            listen = "127.0.0.1:5516"
            timezone = "+07:00"
        "#;
        let c = Config::from_toml(text).expect("valid");
        assert_eq!(
            c.udp[0].format,
            Format::Decoder(canh_parsers::Decoder::Fortigate)
        );
        assert_eq!(
            c.udp[0].timezone.offset_at(1_795_435_200_000_000_000),
            7 * 3600
        );
        assert_eq!(c.tcp[0].timezone, Zone::Fixed(7 * 3600));
    }

    #[test]
    fn netflow_listeners_and_their_problems() {
        let text = r#"
            [[netflow.udp]]
            listen = "127.0.0.1:9995"
            receive_buffer = "64 MiB"
        "#;
        let c = Config::from_toml(text).expect("valid");
        assert_eq!(c.netflow.len(), 1);
        assert_eq!(&*c.netflow[0].name, "netflow-udp-0");
        assert_eq!(c.netflow[0].receive_buffer, 64 << 20);
        assert_eq!(c.netflow[0].transport, Transport::Netflow);
        // Syslog and NetFlow share the UDP port space; names are unique across all listeners.
        let text = r#"
            [[syslog.udp]]
            name = "edge"
            listen = "127.0.0.1:9995"
            [[netflow.udp]]
            name = "edge"
            listen = "127.0.0.1:9995"
            format = "fortigate"
        "#;
        let e = Config::from_toml(text).expect_err("conflicts").0;
        for want in [
            "netflow.udp[0].format: unknown key",
            "netflow.udp: listener name \"edge\" is used twice",
            "netflow.udp[0].listen: 127.0.0.1:9995 is already used by another udp listener",
        ] {
            assert!(
                e.iter().any(|x| x.starts_with(want)),
                "missing {want:?} in {e:#?}"
            );
        }
        assert_eq!(e.len(), 3, "{e:#?}");
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let e = Config::from_toml("a = \n[x").expect_err("syntax").0;
        assert!(e[0].starts_with("line 2, column 3: "), "{e:?}");
    }

    #[test]
    fn duplicate_names_and_addresses_are_rejected() {
        let text = r#"
            [[syslog.tcp]]
            name = "a"
            listen = "127.0.0.1:6000"
            [[syslog.tcp]]
            name = "a"
            listen = "127.0.0.1:6000"
        "#;
        let e = Config::from_toml(text).expect_err("dupes").0;
        assert_eq!(e.len(), 2, "{e:?}");
    }

    #[test]
    fn the_documented_example_parses_and_matches_the_defaults() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/canh.toml");
        let c = Config::from_file(&path).expect("deploy/canh.toml is valid");
        let d = Config::default();
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.http_listen, d.http_listen);
        assert_eq!(c.udp[0].socket.addr, d.udp[0].socket.addr);
        assert_eq!(c.tcp[0].socket.addr, d.tcp[0].socket.addr);
        assert_eq!(c.tcp[0].socket.idle_timeout, d.tcp[0].socket.idle_timeout);
        let addrs = |c: &Config| c.netflow.iter().map(|n| n.addr).collect::<Vec<_>>();
        assert_eq!(addrs(&c), addrs(&d));
        assert_eq!(c.pipeline.batch_rows, d.pipeline.batch_rows);
        assert_eq!(c.pipeline.batch_timeout, d.pipeline.batch_timeout);
        assert_eq!(c.archive.max_file_size, d.archive.max_file_size);
        assert_eq!(c.archive.max_file_age, d.archive.max_file_age);
        assert_eq!(c.detection, d.detection);
        assert_eq!(c.outbox, d.outbox);
        assert!(c.forward.is_empty());
        let bad = Config::from_toml(
            "[detection]\nrules = 3\nsuppress = \"soon\"\nsamples = 1000\ncolour = \"red\"\n",
        )
        .expect_err("bad detection")
        .0;
        assert_eq!(bad.len(), 4, "{bad:?}");
        assert!(
            bad.iter()
                .any(|e| e.starts_with("detection.rules: expected a path")),
            "{bad:?}"
        );
        let per_rule = Config::from_toml(
            "[detection.suppress_rules]\n\"5f0c1d2e-8a41-4b7e-9c3d-1a2b3c4d5e03\" = \"1h\"\n\"Port scan\" = \"0s\"\n",
        )
        .expect("per rule");
        let rules = &per_rule.detection.suppress_rules;
        assert_eq!(rules.get("Port scan"), Some(&Duration::ZERO));
        assert_eq!(
            rules.get("5f0c1d2e-8a41-4b7e-9c3d-1a2b3c4d5e03"),
            Some(&Duration::from_secs(3600))
        );
        let bad = Config::from_toml("[detection]\nsuppress_rules = 3\n")
            .expect_err("not a table")
            .0;
        assert_eq!(
            bad,
            ["detection.suppress_rules: expected a table of rule ids and durations, found integer"]
        );
        let bad = Config::from_toml("[detection.suppress_rules]\na = \"soon\"\nb = 5\n")
            .expect_err("bad durations")
            .0;
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(
            bad[0].starts_with("detection.suppress_rules.a: not a duration"),
            "{bad:?}"
        );
        assert_eq!(
            bad[1],
            "detection.suppress_rules.b: expected a duration such as \"1h\", found integer"
        );
        let off = Config::from_toml("[detection]\nrules = []\n").expect("rules = []");
        assert!(off.detection.rules.is_empty() && !off.detection.rules_default);
        let inv =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/inventory.csv");
        let inv = crate::inventory::Inventory::load(&inv).expect("deploy/inventory.csv is valid");
        assert_eq!(inv.networks(), 5);
    }

    #[test]
    fn forward_destinations_and_their_problems() {
        let c = Config::from_toml(
            "[outbox]\nfsync = \"interval\"\nfsync_interval = \"200ms\"\nmax_size = \"10 MiB\"\n\
             segment_size = \"1 MiB\"\n\
             [[forward]]\nname = \"national\"\n\
             url = \"taxii+https://u:p@taxii.example/api1/collections/c1/\"\n\
             tlp = \"red\"\nmin_level = \"high\"\nrate = 2.5\nredact = [\"user.name\"]\n\
             [[forward]]\nurl = \"syslog+tls://127.0.0.1:6514\"\nhostname = \"soc\"\n",
        )
        .expect("valid");
        assert_eq!(c.outbox.fsync, Fsync::Interval(Duration::from_millis(200)));
        assert_eq!(c.forward.len(), 2);
        assert_eq!(c.forward[0].tlp, Tlp::Red);
        assert_eq!(c.forward[0].rate, Some(2.5));
        assert_eq!(c.forward[0].user.as_deref(), Some("u"));
        assert_eq!(c.forward[1].name, "syslog-tls-127.0.0.1-6514");
        assert_eq!(c.outbox().dir, PathBuf::from("data/outbox"));
        let bad = Config::from_toml(
            "[outbox]\nfsync = \"sometimes\"\n\
             [[forward]]\nurl = \"ftp://x/\"\n\
             [[forward]]\nurl = \"syslog+tcp://h:1\"\ntlp = \"amber\"\nrate = -1\n\
             client_cert = \"c.pem\"\nname = \"a b\"\n\
             [[forward]]\nname = \"dup\"\nurl = \"https://h/x\"\n\
             [[forward]]\nname = \"dup\"\nurl = \"https://h/y\"\n",
        )
        .expect_err("bad forwarding")
        .0;
        for want in [
            "outbox.fsync: \"sometimes\"",
            "forward[0].url: ftp://x/: unknown scheme",
            "forward[1].tlp: applies to taxii destinations only",
            "forward[1].rate: expected a positive number",
            "forward[1].client_cert: client_cert and client_key go together",
            "forward[1].name: \"a b\"",
            "forward[3].name: \"dup\" is used by another destination",
        ] {
            assert!(
                bad.iter().any(|e| e.starts_with(want)),
                "{want} not in {bad:#?}"
            );
        }
        assert_eq!(bad.len(), 7, "{bad:#?}");
        let mut c = Config::default();
        c.add_forward("https://h/a").expect("valid");
        c.add_forward("https://h/b").expect("valid");
        assert_eq!(c.forward[1].name, "https-h-2");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64 KiB"), Some(65_536));
        assert_eq!(parse_size("8MiB"), Some(8 << 20));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("1 parsec"), None);
    }
}
