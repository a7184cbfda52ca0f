//! Detection in the pipeline: rules over every batch, correlations and alerts.
//!
//! ```text
//! parser worker ──batch──▶ compiled rules (same thread) ──batch──▶ archive
//!                                   │ matches (rule, event time, row as JSON)
//!                                   ▼
//!                           alerts thread: correlations, deduplication ──alerts batch──▶ archive
//! ```
//!
//! * [`Rules`] holds the current rule set, shared by the parser workers. A watcher thread
//!   rebuilds it when a rule, mapping or IOC file changes (or on SIGHUP) and swaps it in; each
//!   worker picks the new set up at its next batch, so no event goes unmatched while rules
//!   reload. Open alerts of rules the new set still has stay open (a reload raises nothing
//!   again); the windows of correlations that the new set runs unchanged (same rule, same
//!   rules read) go on (their events counted as `correlation_carried_over`); the others start
//!   over (`correlation_reset`). Matches a worker made with the replaced set that arrive after
//!   the new set's first ones count for the same rules in the new set when those are unchanged
//!   (else `stale_matches`).
//! * Each parser worker runs the compiled matcher over its own batches ([`WorkerDetect`]) and
//!   sends the matching rows to the alerts thread ([`run_alerts`]), which feeds correlations,
//!   deduplicates alerts and writes them to the archive's `alerts` table.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use arrow::array::{Array, TimestampNanosecondArray};
use canh_forward::{ForwardAlert, Outbox};
use canh_metrics::Metrics;
use canh_rules::alerts::{Alert, Alerter, Candidate, Observables, RuleInfo, DEDUP_FIELDS};
use canh_rules::batch::BatchEvents;
use canh_rules::compiled::Hit;
use canh_rules::correlation::{EventJson, Limits, Source};
use canh_rules::events::RowOf;
use canh_rules::{Iocs, Mapping, RuleSet, SetScratch, Target};
use canh_schema::fields::alerts::Col;
use canh_schema::{Batch, Table, TableBuilder};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use serde_json::Value;
use tracing::{info, warn};

use crate::config::DetectionConfig;

/// Columns keywords (Sigma keyword lists) are searched in: the whole raw line.
const EVENT_KEYWORDS: [&str; 1] = ["event.original"];

/// The columns a table's keywords are searched in (flows and alerts have none).
pub fn keywords(table: Table) -> &'static [&'static str] {
    match table {
        Table::Events => &EVENT_KEYWORDS,
        _ => &[],
    }
}

/// One rule set, as loaded at one time.
#[derive(Debug)]
pub struct Loaded {
    pub set: RuleSet,
    pub generation: u64,
}

/// The rules the pipeline runs, reloaded when their files change.
#[derive(Debug)]
pub struct Rules {
    config: DetectionConfig,
    current: RwLock<Arc<Loaded>>,
    generation: AtomicU64,
    reload_requested: AtomicBool,
    metrics: Metrics,
}

/// The matching rows of one batch, for the alerts thread. The batch travels with them (its
/// columns are shared, not copied), so fields are read only where a correlation or an alert
/// needs them.
#[derive(Debug)]
pub struct Detected {
    pub generation: u64,
    pub table: Table,
    pub records: arrow::record_batch::RecordBatch,
    /// (row, position of the rule in its set's `rules`, event time in ns).
    pub hits: Vec<(u32, u32, i64)>,
}

impl Rules {
    /// Loads the rules. `Ok(None)`: detection is off (the default folder does not exist, or
    /// the configuration lists no rules).
    pub fn open(config: &DetectionConfig, metrics: Metrics) -> Result<Option<Arc<Rules>>, String> {
        if config.rules.is_empty() {
            info!("detection.rules is empty: detection is off");
            return Ok(None);
        }
        if config.rules_default && !config.rules.iter().any(|p| p.exists()) {
            info!(
                rules = %config.rules[0].display(),
                "no rules folder: detection is off (canh serve --rules DIR turns it on)"
            );
            return Ok(None);
        }
        for p in &config.rules {
            if !p.exists() {
                return Err(format!("rules: {} does not exist", p.display()));
            }
        }
        let set = build(config, &metrics)?;
        Ok(Some(Arc::new(Rules {
            config: config.clone(),
            current: RwLock::new(Arc::new(Loaded { set, generation: 1 })),
            generation: AtomicU64::new(1),
            reload_requested: AtomicBool::new(false),
            metrics,
        })))
    }

    /// The current rule set.
    pub fn current(&self) -> Arc<Loaded> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Asks the watcher to reload now (SIGHUP).
    pub fn request_reload(&self) {
        self.reload_requested.store(true, Ordering::Release);
    }

    /// Rebuilds the rule set from its files and swaps it in; on failure the running set stays.
    pub fn reload(&self) -> bool {
        match build(&self.config, &self.metrics) {
            Ok(set) => {
                let generation = self.generation() + 1;
                let loaded = Arc::new(Loaded { set, generation });
                match self.current.write() {
                    Ok(mut g) => *g = loaded,
                    Err(p) => *p.into_inner() = loaded,
                }
                self.generation.store(generation, Ordering::Release);
                self.metrics.rules_reloaded(true);
                info!(generation, "rules reloaded");
                true
            }
            Err(e) => {
                self.metrics.rules_reloaded(false);
                warn!(error = %e, "rules not reloaded; the running rules stay");
                false
            }
        }
    }

    /// Watches the rule, mapping and IOC files until `stop`; reloads on a change or request.
    pub fn watch(&self, stop: &AtomicBool) {
        let mut stamp = self.stamp();
        let mut last_check = Instant::now();
        while !stop.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(100));
            let requested = self.reload_requested.swap(false, Ordering::AcqRel);
            if !requested && last_check.elapsed() < self.config.reload_interval {
                continue;
            }
            last_check = Instant::now();
            let now = self.stamp();
            if requested || now != stamp {
                stamp = now;
                self.reload();
            }
        }
    }

    /// What changes when any file the rules come from changes: the newest modification time
    /// and the number of files, over the rule folders, the mapping and the IOC folder.
    fn stamp(&self) -> (Option<SystemTime>, usize) {
        let mut acc = (None, 0);
        for p in &self.config.rules {
            stamp_tree(p, &mut acc);
        }
        if let Some(m) = &self.config.mapping {
            stamp_tree(m, &mut acc);
        }
        stamp_tree(&ioc_dir(&self.config), &mut acc);
        acc
    }
}

fn stamp_tree(p: &Path, acc: &mut (Option<SystemTime>, usize)) {
    let Ok(meta) = std::fs::metadata(p) else {
        return;
    };
    if let Ok(t) = meta.modified() {
        acc.0 = acc.0.max(Some(t));
    }
    acc.1 += 1;
    if meta.is_dir() {
        if let Ok(entries) = std::fs::read_dir(p) {
            for e in entries.flatten() {
                stamp_tree(&e.path(), acc);
            }
        }
    }
}

/// The IOC folder: configured, or `iocs` inside the first rules folder.
fn ioc_dir(config: &DetectionConfig) -> PathBuf {
    config
        .iocs
        .clone()
        .unwrap_or_else(|| match config.rules.first() {
            Some(p) if p.is_dir() => p.join("iocs"),
            Some(p) => p.parent().unwrap_or(Path::new(".")).join("iocs"),
            None => PathBuf::from("iocs"),
        })
}

/// Loads, checks and compiles the rules; rejected rules are logged and left out.
fn build(config: &DetectionConfig, metrics: &Metrics) -> Result<RuleSet, String> {
    let mapping = match &config.mapping {
        None => Mapping::builtin(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("mapping {}: {e}", path.display()))?;
            Mapping::parse(&text)
                .map_err(|p| format!("mapping {}: {}", path.display(), p.join("; ")))?
        }
    };
    let iocs = Iocs::load(&ioc_dir(config)).map_err(|p| format!("iocs: {}", p.join("; ")))?;
    let loaded = canh_rules::load(&config.rules);
    let (set, rejected) = RuleSet::build(&loaded.rules, &mapping, &iocs);
    for r in loaded.rejected.iter().chain(&rejected) {
        warn!(file = %r.file.display(), line = r.line, reason = %r.reason, "rule rejected");
    }
    let rejected = loaded.rejected.len() + rejected.len();
    if !set.unmapped.is_empty() {
        warn!(
            rules = set.unmapped.len(),
            log_sources = %set.unmapped_summary(5),
            "rules see no events: the field mapping does not cover their log source"
        );
    }
    metrics.set_detection("rules_loaded", set.rules.len() as u64);
    metrics.set_detection("rules_unmapped", set.unmapped.len() as u64);
    metrics.set_detection("correlations", set.correlations.len() as u64);
    metrics.set_detection("rules_rejected", rejected as u64);
    info!(
        rules = set.rules.len(),
        correlations = set.correlations.len(),
        filters = set.filters,
        rejected,
        ioc_lists = iocs.lists(),
        ioc_values = iocs.values(),
        "rules loaded"
    );
    Ok(set)
}

/// A parser worker's part of detection: the compiled rules over each batch it makes.
#[derive(Debug)]
pub struct WorkerDetect {
    rules: Arc<Rules>,
    loaded: Arc<Loaded>,
    scratch: SetScratch,
    hits: Vec<Hit>,
    out: Sender<Detected>,
    metrics: Metrics,
}

impl WorkerDetect {
    pub fn new(rules: Arc<Rules>, out: Sender<Detected>, metrics: Metrics) -> WorkerDetect {
        let loaded = rules.current();
        let scratch = loaded.set.scratch();
        WorkerDetect {
            rules,
            loaded,
            scratch,
            hits: Vec::new(),
            out,
            metrics,
        }
    }

    /// Runs the rules over a batch and hands the matching rows on.
    pub fn run(&mut self, batch: &Batch) {
        if self.rules.generation() != self.loaded.generation {
            self.loaded = self.rules.current();
            self.scratch = self.loaded.set.scratch();
        }
        let target = match batch.table {
            Table::Events => Target::Events,
            Table::Flows => Target::Flows,
            Table::Alerts => return,
        };
        self.hits.clear();
        let records = &batch.records;
        self.loaded.set.matches(
            target,
            &BatchEvents::new(records, keywords(batch.table)),
            &mut self.scratch,
            &mut self.hits,
        );
        if self.hits.is_empty() {
            return;
        }
        self.metrics
            .detection_matches(batch.table.name(), self.hits.len() as u64);
        let times = records
            .column_by_name("timestamp")
            .and_then(|c| c.as_any().downcast_ref::<TimestampNanosecondArray>());
        let hits = self
            .hits
            .iter()
            .map(|h| {
                let row = h.row as usize;
                let time_ns = times
                    .filter(|t| t.is_valid(row))
                    .map_or(batch.received_max_ns, |t| t.value(row));
                (h.row, h.rule, time_ns)
            })
            .collect();
        let d = Detected {
            generation: self.loaded.generation,
            table: batch.table,
            records: records.clone(),
            hits,
        };
        // Blocks while the alerts thread is behind: backpressure, nothing dropped.
        if self.out.send(d).is_err() {
            self.metrics.error("detection", "alerts_gone");
        }
    }
}

/// Matches of one rule set turned into alerts: correlations, deduplication and suppression,
/// alert rows. The alerts thread runs one per rule set; `canh hunt --store` runs one too.
pub struct Alerts {
    correlator: canh_rules::correlation::Correlator,
    alerter: Alerter,
    detections: usize,
    /// New alerts since the last [`Alerts::take_raised`], when they are forwarded.
    raised: Option<Vec<Alert>>,
}

impl std::fmt::Debug for Alerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerts").finish_non_exhaustive()
    }
}

/// The correlations' settings of a detection configuration.
pub fn correlation_limits(config: &DetectionConfig) -> Limits {
    Limits {
        lateness_ns: i64::try_from(config.lateness.as_nanos()).unwrap_or(i64::MAX),
        max_events: config.max_correlation_events,
        samples: config.samples,
    }
}

impl Alerts {
    pub fn new(set: &RuleSet, config: &DetectionConfig) -> Alerts {
        let correlator = set.correlator(correlation_limits(config));
        let info = |r: &canh_rules::Rule| RuleInfo {
            id: r.id().unwrap_or(r.title()).to_owned(),
            title: r.title().to_owned(),
            level: r.level().unwrap_or_else(|| "medium".into()),
            tags: r.tags(),
        };
        let rules: Vec<RuleInfo> = set
            .rules
            .iter()
            .chain(&set.correlations)
            .map(info)
            .collect();
        let ns = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        let suppress: Vec<i64> = rules
            .iter()
            .map(|r| {
                let own = config.suppress_rules.get(&r.id);
                ns(*own
                    .or_else(|| config.suppress_rules.get(&r.title))
                    .unwrap_or(&config.suppress))
            })
            .collect();
        let unknown: Vec<&str> = config
            .suppress_rules
            .keys()
            .filter(|k| !rules.iter().any(|r| &r.id == *k || &r.title == *k))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            warn!(rules = ?unknown, "[detection] suppress_rules names rules that are not loaded");
        }
        Alerts {
            detections: set.rules.len(),
            correlator,
            alerter: Alerter::new(rules, suppress, config.samples, 100_000),
            raised: None,
        }
    }

    /// Keeps every new alert for [`Alerts::take_raised`] (for the forwarding outbox).
    pub fn keep_raised(&mut self) {
        self.raised.get_or_insert_with(Vec::new);
    }

    /// The new alerts since the last call.
    pub fn take_raised(&mut self) -> Vec<Alert> {
        self.raised.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// One event that detection rule `rule` matched (events in event-time order): alert rows
    /// for it and for the correlations it completes go into `builder`.
    pub fn matched(
        &mut self,
        rule: u32,
        time_ns: i64,
        row: &dyn canh_rules::plain::Row,
        sample: &dyn EventJson,
        builder: &mut TableBuilder,
        metrics: &Metrics,
    ) {
        let hit = Match {
            rule,
            time_ns,
            row,
            sample,
        };
        handle(self, hit, builder, metrics);
    }

    /// Closes every open alert (their final counts into `builder`).
    pub fn close(&mut self, builder: &mut TableBuilder, metrics: &Metrics) {
        for a in self.alerter.close_all() {
            write_alert(builder, &a, metrics, false);
        }
    }
}

/// What the alerts thread runs for one rule set.
struct Stage {
    loaded: Arc<Loaded>,
    alerts: Alerts,
    /// Where each rule (by id) is written: its file and first line, for the forwarded text.
    sources: HashMap<String, (PathBuf, u32)>,
    texts: HashMap<String, Option<String>>,
}

impl Stage {
    fn new(loaded: Arc<Loaded>, config: &DetectionConfig, forwarding: bool) -> Stage {
        let mut alerts = Alerts::new(&loaded.set, config);
        let mut sources = HashMap::new();
        if forwarding {
            alerts.keep_raised();
            for r in loaded.set.rules.iter().chain(&loaded.set.correlations) {
                let id = r.id().unwrap_or(r.title()).to_owned();
                sources.insert(id, (r.file.clone(), r.line));
            }
        }
        Stage {
            alerts,
            loaded,
            sources,
            texts: HashMap::new(),
        }
    }

    /// The Sigma text of a rule, read once from its file.
    fn rule_text(&mut self, id: &str) -> Option<String> {
        if let Some(t) = self.texts.get(id) {
            return t.clone();
        }
        let text = self
            .sources
            .get(id)
            .and_then(|(file, line)| yaml_document(file, *line));
        if self.texts.len() < 100_000 {
            self.texts.insert(id.to_owned(), text.clone());
        }
        text
    }

    /// Appends the alerts raised since the last call to the outbox.
    fn forward(&mut self, outbox: &Outbox, metrics: &Metrics) {
        let raised = self.alerts.take_raised();
        if raised.is_empty() {
            return;
        }
        let now = i64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap_or(i64::MAX);
        let records: Vec<Vec<u8>> = raised
            .into_iter()
            .map(|a| {
                let f = ForwardAlert {
                    rule_text: self.rule_text(&a.rule.id),
                    id: a.id,
                    rule_id: a.rule.id,
                    rule_title: a.rule.title,
                    level: a.rule.level,
                    tags: a.rule.tags,
                    group_key: a.group_key,
                    first_ns: a.first_ns,
                    last_ns: a.last_ns,
                    count: a.count,
                    created_ns: now,
                    organization: a.observables.organization,
                    source_ip: a.observables.source_ip,
                    destination_ip: a.observables.destination_ip,
                    destination_port: a.observables.destination_port,
                    user_name: a.observables.user_name,
                    samples: a
                        .samples
                        .iter()
                        .map(|s| serde_json::from_str(s).unwrap_or(Value::String(s.clone())))
                        .collect(),
                };
                serde_json::to_vec(&f).unwrap_or_default()
            })
            .collect();
        if let Err(e) = outbox.append(&records) {
            warn!(error = %e, alerts = records.len(), "cannot append alerts to the outbox: they are not forwarded");
            metrics.error("outbox", "append");
            metrics.outbox("dropped", records.len() as u64);
        }
    }
}

/// The YAML document of a rule file that starts on `line` (documents are split by `---`).
fn yaml_document(file: &Path, line: u32) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let mut out = String::new();
    for l in text.lines().skip(line.saturating_sub(1) as usize) {
        if l.trim_end() == "---" {
            if out.trim().is_empty() {
                continue;
            }
            break;
        }
        out.push_str(l);
        out.push('\n');
    }
    (!out.trim().is_empty()).then_some(out)
}

/// The alerts thread: correlations and deduplication, alerts into the archive.
/// New alerts go to `outbox` (when given) just before their batch goes to the archive.
pub fn run_alerts(
    rules: Arc<Rules>,
    input: Receiver<Detected>,
    output: Sender<Batch>,
    outbox: Option<Arc<Outbox>>,
    metrics: Metrics,
) {
    let config = rules.config.clone();
    let forwarding = outbox.is_some();
    let mut stage = Stage::new(rules.current(), &config, forwarding);
    let flush = |stage: &mut Stage, builder: &mut TableBuilder| {
        if let Some(o) = &outbox {
            stage.forward(o, &metrics);
        }
        flush(builder, &output, &metrics);
    };
    let mut builder = TableBuilder::new(Table::Alerts, 1024);
    let mut watermark = i64::MIN;
    let mut last_tick = Instant::now();
    let mut seen = canh_rules::correlation::Counters::default();
    // After a reload: the set it replaced, and where each of its rules is in the new one, for
    // its matches still on their way (a worker that had not yet picked the new set up).
    let mut renumber: Option<(u64, Vec<Option<u32>>)> = None;
    loop {
        match input.recv_timeout(Duration::from_millis(200)) {
            Ok(mut d) => {
                if d.generation > stage.loaded.generation {
                    flush(&mut stage, &mut builder);
                    let old = std::mem::replace(
                        &mut stage,
                        Stage::new(rules.current(), &config, forwarding),
                    );
                    // Open alerts of rules still there go on folding matches in; the others
                    // are written as they stand.
                    for a in stage.alerts.alerter.carry_over(old.alerts.alerter) {
                        write_alert(&mut builder, &a, &metrics, false);
                    }
                    let held = old.alerts.correlator.counters().held;
                    let carried = stage.alerts.correlator.carry_over(old.alerts.correlator);
                    metrics.detection("correlation_carried_over", carried);
                    metrics.detection("correlation_reset", held - carried);
                    seen = Default::default();
                    renumber = Some((
                        old.loaded.generation,
                        old.loaded.set.renumber(&stage.loaded.set),
                    ));
                }
                if d.generation != stage.loaded.generation {
                    // Matches of a rule set that has since been replaced: those of rules the
                    // new set runs unchanged count as its own; the others are dropped.
                    let before = d.hits.len();
                    match &renumber {
                        Some((generation, to)) if *generation == d.generation => {
                            d.hits.retain_mut(|(_, rule, _)| {
                                match to.get(*rule as usize).copied().flatten() {
                                    Some(new) => {
                                        *rule = new;
                                        true
                                    }
                                    None => false,
                                }
                            });
                        }
                        _ => d.hits.clear(),
                    }
                    metrics.detection("stale_matches", (before - d.hits.len()) as u64);
                    if d.hits.is_empty() {
                        continue;
                    }
                }
                let events = BatchEvents::new(&d.records, keywords(d.table));
                for &(row, rule, time_ns) in &d.hits {
                    watermark = watermark.max(time_ns);
                    let row = row as usize;
                    let sample = crate::json::RowJson {
                        table: d.table,
                        batch: &d.records,
                        row,
                    };
                    stage.alerts.matched(
                        rule,
                        time_ns,
                        &RowOf {
                            events: &events,
                            row,
                        },
                        &sample,
                        &mut builder,
                        &metrics,
                    );
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                stage.alerts.close(&mut builder, &metrics);
                flush(&mut stage, &mut builder);
                return;
            }
        }
        if last_tick.elapsed() >= Duration::from_millis(200) || builder.rows() >= 1024 {
            last_tick = Instant::now();
            let alerts = &mut stage.alerts;
            for a in alerts.alerter.expire(watermark) {
                write_alert(&mut builder, &a, &metrics, false);
            }
            alerts.correlator.sweep();
            let c = alerts.correlator.counters();
            metrics.detection("correlation_fired", c.fired - seen.fired);
            metrics.detection("correlation_too_late", c.too_late - seen.too_late);
            metrics.detection(
                "correlation_evicted_groups",
                c.evicted_groups - seen.evicted_groups,
            );
            metrics.detection("correlation_windows", c.windows - seen.windows);
            metrics.detection("suppressed", alerts.alerter.suppressed);
            alerts.alerter.suppressed = 0;
            seen = c;
            metrics.set_detection("correlation_held_events", c.held);
            metrics.set_detection("open_alerts", alerts.alerter.open() as u64);
            flush(&mut stage, &mut builder);
        }
    }
}

/// One matching row, read lazily.
struct Match<'a> {
    rule: u32,
    time_ns: i64,
    row: &'a dyn canh_rules::plain::Row,
    /// The row as JSON (made only for samples and single-event alerts).
    sample: &'a dyn EventJson,
}

fn handle(stage: &mut Alerts, d: Match<'_>, builder: &mut TableBuilder, metrics: &Metrics) {
    let silent = stage.correlator.silent_rules();
    let detection_silent = silent.contains(&Source::Detection(d.rule));
    if stage.correlator.wants(d.rule) {
        let fired = stage.correlator.observe(d.rule, d.time_ns, d.row, d.sample);
        for f in fired {
            if stage
                .correlator
                .silent_rules()
                .contains(&Source::Correlation(f.correlation))
            {
                continue;
            }
            let mut observables = f.samples.first().map(Observables::of).unwrap_or_default();
            let key = Value::Object(
                f.key
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                    .collect(),
            );
            let from_key = Observables::of(&key);
            observables.source_ip = from_key.source_ip.or(observables.source_ip);
            observables.destination_ip = from_key.destination_ip.or(observables.destination_ip);
            observables.user_name = from_key.user_name.or(observables.user_name);
            let c = Candidate {
                rule: (stage.detections + f.correlation as usize) as u32,
                key: f.key,
                first_ns: f.first_ns,
                last_ns: f.last_ns,
                count: f.count,
                observables,
                samples: f.samples,
            };
            raise(stage, c, builder, metrics);
        }
    }
    if detection_silent {
        return;
    }
    let event = d.sample.value();
    let key = DEDUP_FIELDS
        .iter()
        .filter_map(|f| {
            canh_rules::plain::lookup(&event, f)
                .and_then(Value::as_str)
                .map(|v| ((*f).to_owned(), v.to_owned()))
        })
        .collect();
    let c = Candidate {
        rule: d.rule,
        key,
        first_ns: d.time_ns,
        last_ns: d.time_ns,
        count: 1,
        observables: Observables::of(&event),
        samples: vec![event],
    };
    raise(stage, c, builder, metrics);
}

fn raise(stage: &mut Alerts, c: Candidate, builder: &mut TableBuilder, metrics: &Metrics) {
    let (new, closed) = stage.alerter.raise(c);
    for a in closed {
        write_alert(builder, &a, metrics, false);
    }
    if let Some(a) = new {
        write_alert(builder, &a, metrics, true);
        if let Some(r) = stage.raised.as_mut() {
            r.push(a);
        }
    }
}

/// One alert row (a new alert, or the final count of one whose window closed).
fn write_alert(b: &mut TableBuilder, a: &Alert, metrics: &Metrics, new: bool) {
    let now = jiff::Timestamp::now().as_nanosecond();
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    if new {
        metrics.alert(&a.rule.level);
    }
    b.note_received(now);
    b.set_ts(Col::Timestamp, now);
    b.set_str(Col::AlertId, &a.id);
    b.set_str(Col::RuleId, &a.rule.id);
    b.set_str(Col::RuleTitle, &a.rule.title);
    b.set_str(Col::RuleLevel, &a.rule.level);
    for t in &a.rule.tags {
        b.push_list(Col::RuleTags, t);
    }
    b.set_ts(Col::EventStart, a.first_ns);
    b.set_ts(Col::EventEnd, a.last_ns);
    b.set_uint(Col::EventCount, a.count);
    if !a.group_key.is_empty() {
        b.set_str(Col::GroupKey, &a.group_key);
    }
    let o = &a.observables;
    for (col, v) in [
        (Col::OrganizationName, &o.organization),
        (Col::SourceIp, &o.source_ip),
        (Col::DestinationIp, &o.destination_ip),
        (Col::UserName, &o.user_name),
    ] {
        if let Some(v) = v {
            b.set_str(col, v);
        }
    }
    if let Some(p) = o.destination_port {
        b.set_uint(Col::DestinationPort, u64::from(p));
    }
    for s in &a.samples {
        b.push_list(Col::AlertSample, s);
    }
    b.set_str(Col::AlertStatus, "new");
    b.end_row();
}

fn flush(b: &mut TableBuilder, output: &Sender<Batch>, metrics: &Metrics) {
    match b.finish() {
        Ok(Some(batch)) => {
            if output.send(batch).is_err() {
                metrics.error("detection", "sink_gone");
            }
        }
        Ok(None) => {}
        Err(e) => {
            warn!(error = %e, "could not build an alerts batch");
            metrics.error("detection", "batch_build");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(title: &str, id: u8, keyword: &str) -> String {
        format!(
            "title: {title}\nid: 0badc0de-0000-4000-8000-0000000000{id:02}\nlogsource: {{product: canh}}\ndetection:\n  keywords:\n    - '{keyword}'\n  condition: keywords\nlevel: low\n"
        )
    }

    /// The alert rows the alerts thread wrote: (title, id, count).
    fn rows(batches: impl IntoIterator<Item = Batch>) -> Vec<(String, String, u64)> {
        use arrow::array::AsArray;
        use arrow::datatypes::UInt64Type;
        let mut out = Vec::new();
        for b in batches {
            let r = &b.records;
            let titles = r.column(Col::RuleTitle as usize).as_string::<i32>();
            let ids = r.column(Col::AlertId as usize).as_string::<i32>();
            let counts = r
                .column(Col::EventCount as usize)
                .as_primitive::<UInt64Type>();
            for i in 0..r.num_rows() {
                out.push((
                    titles.value(i).to_owned(),
                    ids.value(i).to_owned(),
                    counts.value(i),
                ));
            }
        }
        out
    }

    /// `[detection] suppress_rules` gives a rule (by id, or title) its own window: "0s" makes
    /// every match of A an alert, while B's repeats fold into its first alert.
    #[test]
    fn a_rule_can_have_its_own_suppression_window() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.yml"), rule("A", 1, "ay")).expect("write");
        std::fs::write(dir.path().join("b.yml"), rule("B", 2, "bee")).expect("write");
        let mut config = DetectionConfig {
            rules: vec![dir.path().to_owned()],
            rules_default: false,
            ..DetectionConfig::default()
        };
        config.suppress_rules.insert(
            "0badc0de-0000-4000-8000-000000000001".into(),
            Duration::ZERO,
        );
        let metrics = Metrics::new();
        let rules = Rules::open(&config, metrics.clone())
            .expect("rules")
            .expect("on");
        let mut alerts = Alerts::new(&rules.current().set, &config);
        let mut b = TableBuilder::new(Table::Alerts, 8);
        let event = serde_json::json!({"source.ip": "10.0.0.1"});
        for t in 1..=3 {
            alerts.matched(0, t, &event, &event, &mut b, &metrics);
            alerts.matched(1, t, &event, &event, &mut b, &metrics);
        }
        let rows = rows(b.finish().expect("valid"));
        let count = |title: &str| rows.iter().filter(|r| r.0 == title).count();
        assert_eq!((count("A"), count("B")), (3, 1), "{rows:?}");
    }

    /// Matches a worker made with the rule set a reload replaced, arriving after the new set's
    /// first ones: those of rules the new set runs unchanged count as that rule's (and fold
    /// into its alert still open from before the reload); those of a changed rule are dropped
    /// and counted.
    #[test]
    fn late_matches_of_a_replaced_set_count_for_its_unchanged_rules() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("b.yml"), rule("B", 2, "bee")).expect("write");
        std::fs::write(dir.path().join("c.yml"), rule("C", 3, "sea")).expect("write");
        let config = DetectionConfig {
            rules: vec![dir.path().to_owned()],
            rules_default: false,
            ..DetectionConfig::default()
        };
        let metrics = Metrics::new();
        let rules = Rules::open(&config, metrics.clone())
            .expect("rules")
            .expect("on");
        let old = rules.current();
        let mut b = TableBuilder::new(Table::Events, 4);
        for _ in 0..3 {
            use canh_schema::fields::events::Col as E;
            b.set_ts(E::Timestamp, 1);
            b.set_ts(E::EventCreated, 1);
            b.set_str(E::EventOriginal, "bee sea");
            b.set_str(E::Message, "bee sea");
            b.set_str(E::ParseStatus, "ok");
            b.end_row();
        }
        let records = b.finish().expect("valid").expect("rows").records;
        let detected = |generation, hits| Detected {
            generation,
            table: Table::Events,
            records: records.clone(),
            hits,
        };
        let (tx, rx) = crossbeam_channel::unbounded();
        let (out_tx, out_rx) = crossbeam_channel::unbounded();
        let thread = std::thread::spawn({
            let (rules, metrics) = (rules.clone(), metrics.clone());
            move || run_alerts(rules, rx, out_tx, None, metrics)
        });
        // B (rule 0) before the reload; its alert written means the thread runs the old set.
        tx.send(detected(old.generation, vec![(0, 0, 1)]))
            .expect("send");
        let first = rows([out_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("B's alert")]);
        assert_eq!(first.len(), 1);
        assert_eq!((first[0].0.as_str(), first[0].2), ("B", 1));
        // The reload puts A first and changes C: [A, B, C'].
        std::fs::write(dir.path().join("a.yml"), rule("A", 1, "ay")).expect("write");
        std::fs::write(dir.path().join("c.yml"), rule("C", 3, "see")).expect("write");
        assert!(rules.reload());
        let new = rules.current();
        assert_eq!(new.set.rules.len(), 3);
        tx.send(detected(new.generation, vec![(0, 0, 2)]))
            .expect("send");
        // Late: B and C by their old positions.
        tx.send(detected(old.generation, vec![(1, 0, 3), (2, 1, 3)]))
            .expect("send");
        drop(tx);
        thread.join().expect("alerts thread");
        let after = rows(out_rx.try_iter());
        let mut titles: Vec<&str> = after.iter().map(|r| r.0.as_str()).collect();
        titles.sort_unstable();
        titles.dedup();
        assert_eq!(titles, ["A", "B"], "{after:?}");
        // B's late match folded into the alert raised before the reload: same id, count 2.
        let b = after.iter().rfind(|r| r.0 == "B").expect("B");
        assert_eq!((&b.1, b.2), (&first[0].1, 2), "{after:?}");
        assert!(
            metrics
                .render()
                .contains("canh_detection_events_total{kind=\"stale_matches\"} 1"),
            "{}",
            metrics.render()
        );
    }

    #[test]
    fn no_rules_or_no_default_folder_is_detection_off_and_a_missing_folder_is_an_error() {
        let off = DetectionConfig {
            rules: Vec::new(),
            rules_default: false,
            ..DetectionConfig::default()
        };
        assert!(Rules::open(&off, Metrics::new()).expect("off").is_none());
        let dir = tempfile::tempdir().expect("tempdir");
        let absent = dir.path().join("absent");
        let default_absent = DetectionConfig {
            rules: vec![absent.clone()],
            ..DetectionConfig::default()
        };
        assert!(Rules::open(&default_absent, Metrics::new())
            .expect("off")
            .is_none());
        let asked_absent = DetectionConfig {
            rules_default: false,
            ..default_absent
        };
        assert!(Rules::open(&asked_absent, Metrics::new()).is_err());
    }
}
