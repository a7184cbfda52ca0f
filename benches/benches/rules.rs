//! Detection: events per second through the compiled matcher, one core, with 10, 100, 1,000
//! and 10,000 rules, over the Sigma-taxonomy event mix of `../shared/peers/gen_events.py`
//! (40% firewall, 25% sshd, 15% Linux process creation, 10% web server, 10% DNS) as Arrow
//! batches of 8,192 rows — the form events have in the pipeline.
//!
//! Rules: the SigmaHQ rules of `../shared/corpora/sigma`, the ~450 network/Linux/web/DNS rules
//! first, then the rest (Windows and others: their fields such as `Image` and `CommandLine`
//! are in the Linux process events); past the ~3,700 that load, variants of the same rules
//! with every text value changed (`…_v2`), so that 10,000 rules keep SigmaHQ's shapes.
//! Two settings: every rule sees every event (no field mapping, no log-source selection), the
//! worst case (`rules/N`); and log-source selection as a deployment has it (`rules/selected/N`):
//! the mix's events carry their Sigma log source (`logsource.category/product/service`), and a
//! mapping with one entry per log-source value the rules name selects, for each rule, the
//! events of its log source (a Windows rule sees no event of this mix, yet is compiled and its
//! patterns scanned).
//!
//! `cargo bench -p canh-benches --bench rules` (needs ../shared; skips without it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

// Linked for its `#[global_allocator]`: benches run with the allocator of the `canh` binary.
use canh_benches as _;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, StringBuilder, UInt64Builder};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use canh_rules::batch::BatchEvents;
use canh_rules::{Mapping, RuleKind, RuleSet, Target};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rsigma_parser::{Detection, Modifier, SigmaValue, StringPart};
use serde_json::Value;

const EVENTS: usize = 65_536;
const BATCH: usize = 8_192;

fn shared() -> Option<PathBuf> {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared");
    d.is_dir().then_some(d)
}

/// The event mix, generated once into the target folder.
fn events(shared: &Path) -> Vec<Value> {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../target/bench-events-{EVENTS}.jsonl"));
    if !file.exists() {
        // The folder is absent when the build went to another CARGO_TARGET_DIR.
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let ok = std::process::Command::new("python3")
            .arg(shared.join("peers/gen_events.py"))
            .arg(&file)
            .arg(EVENTS.to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "gen_events.py failed");
    }
    std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Events as record batches: one column per (flattened) key, integers as UInt64, the rest text.
fn batches(events: &[Value]) -> Vec<RecordBatch> {
    let flat: Vec<BTreeMap<String, &Value>> = events
        .iter()
        .map(|e| {
            let mut m = BTreeMap::new();
            for (k, v) in e.as_object().unwrap() {
                match v {
                    Value::Object(inner) => {
                        for (k2, v2) in inner {
                            m.insert(format!("{k}.{k2}"), v2);
                        }
                    }
                    v => {
                        m.insert(k.clone(), v);
                    }
                }
            }
            m
        })
        .collect();
    let mut keys: BTreeMap<String, bool> = BTreeMap::new();
    for m in &flat {
        for (k, v) in m {
            let int = v.is_u64();
            keys.entry(k.clone())
                .and_modify(|i| *i &= int)
                .or_insert(int);
        }
    }
    flat.chunks(BATCH)
        .map(|chunk| {
            let mut fields = Vec::new();
            let mut columns: Vec<ArrayRef> = Vec::new();
            for (k, &int) in &keys {
                let name = canh_schema::fields::column_name(k);
                if int {
                    let mut b = UInt64Builder::new();
                    chunk
                        .iter()
                        .for_each(|m| b.append_option(m.get(k).and_then(|v| v.as_u64())));
                    fields.push(Field::new(name, DataType::UInt64, true));
                    columns.push(Arc::new(b.finish()));
                } else {
                    let mut b = StringBuilder::new();
                    chunk.iter().for_each(|m| {
                        b.append_option(m.get(k).map(|v| match v {
                            Value::String(s) => s.clone(),
                            v => v.to_string(),
                        }))
                    });
                    fields.push(Field::new(name, DataType::Utf8, true));
                    columns.push(Arc::new(b.finish()));
                }
            }
            RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
        })
        .collect()
}

/// SigmaHQ rules, the network/Linux/web/DNS ones first, then the others, then variants.
fn rules(corpus: &Path, want: usize) -> Vec<canh_rules::Rule> {
    let index = std::fs::read_to_string(corpus.join("INDEX_network_linux_web_dns.jsonl")).unwrap();
    let first: Vec<PathBuf> = index
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            corpus.join(v["path"].as_str().unwrap())
        })
        .collect();
    let mut loaded = canh_rules::load(&first).rules;
    let mut rest = canh_rules::load(&[corpus.to_owned()]).rules;
    rest.retain(|r| {
        !first.contains(&r.file) && canh_rules::check(r, &canh_rules::Iocs::default()).is_ok()
    });
    rest.sort_by(|a, b| a.file.cmp(&b.file));
    loaded.retain(|r| canh_rules::check(r, &canh_rules::Iocs::default()).is_ok());
    loaded.extend(rest);
    let base = loaded.len();
    let mut k = 2;
    while loaded.len() < want {
        for i in 0..base {
            if loaded.len() == want {
                break;
            }
            let mut r = loaded[i].clone();
            if let RuleKind::Detection(s) = &mut r.kind {
                for d in s.detection.named.values_mut() {
                    vary(d, k);
                }
                loaded.push(r);
            }
        }
        k += 1;
    }
    loaded.truncate(want);
    loaded
}

fn vary(d: &mut Detection, k: usize) {
    match d {
        Detection::AllOf(items) => {
            for i in items {
                // Text values only: a changed CIDR, pattern or number would not load.
                let text = !i.field.modifiers.iter().any(|m| {
                    matches!(
                        m,
                        Modifier::Cidr
                            | Modifier::Re
                            | Modifier::Gt
                            | Modifier::Gte
                            | Modifier::Lt
                            | Modifier::Lte
                            | Modifier::Neq
                            | Modifier::Exists
                            | Modifier::FieldRef
                            | Modifier::Expand
                    )
                });
                if !text {
                    continue;
                }
                for v in &mut i.values {
                    if let SigmaValue::String(s) = v {
                        s.parts.push(StringPart::Plain(format!("_v{k}")));
                        s.original.push_str(&format!("_v{k}"));
                    }
                }
            }
        }
        Detection::AnyOf(ds) | Detection::And(ds) => ds.iter_mut().for_each(|d| vary(d, k)),
        Detection::Keywords(vs) => {
            for v in vs {
                if let SigmaValue::String(s) = v {
                    s.parts.push(StringPart::Plain(format!("_v{k}")));
                    s.original.push_str(&format!("_v{k}"));
                }
            }
        }
        _ => {}
    }
}

/// A mapping that selects, for each category, product and service the rules name, the events
/// whose `logsource.*` field says so.
fn selecting(rules: &[canh_rules::Rule]) -> Mapping {
    let mut values = std::collections::BTreeSet::new();
    for r in rules {
        if let RuleKind::Detection(s) = &r.kind {
            let ls = &s.logsource;
            for (k, v) in [
                ("category", &ls.category),
                ("product", &ls.product),
                ("service", &ls.service),
            ] {
                if let Some(v) = v {
                    values.insert((k, v.to_ascii_lowercase()));
                }
            }
        }
    }
    let mut toml = String::new();
    for (k, v) in values {
        let v = serde_json::to_string(&v).unwrap();
        toml.push_str(&format!(
            "[[logsource]]\n{k} = {v}\nevents = {{ \"logsource.{k}\" = {v} }}\n"
        ));
    }
    Mapping::parse(&toml).unwrap()
}

fn bench(c: &mut Criterion) {
    let Some(shared) = shared() else {
        eprintln!("skipping: ../shared not found");
        return;
    };
    let events = events(&shared);
    let batches = batches(&events);
    let all = rules(&shared.join("corpora/sigma"), 10_000);
    let mut g = c.benchmark_group("rules");
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.sample_size(10);
    let keywords = ["message"];
    // 452: the SigmaHQ network, Linux, web and DNS rules alone, as rsigma runs them (rules_hunt.sh).
    let selected = selecting(&all);
    for (setting, mapping) in [("", Mapping::identity()), ("selected/", selected)] {
        for n in [10, 100, 452, 1_000, 10_000] {
            // Built on first use, so that a filtered run (`-- rules/1000`) compiles only its set.
            let mut state = None;
            g.bench_function(format!("{setting}{n}"), |bench| {
            let (set, scratch, hits) = state.get_or_insert_with(|| {
                let started = std::time::Instant::now();
                let (set, rejected) =
                    RuleSet::build(&all[..n], &mapping, &canh_rules::Iocs::default());
                let built = started.elapsed();
                assert!(rejected.is_empty(), "{rejected:?}");
                assert!(set.unmapped.is_empty(), "{:?}", set.unmapped_log_sources());
                let mut scratch = set.scratch();
                let mut hits = Vec::new();
                for b in &batches {
                    set.matches(
                        Target::Events,
                        &BatchEvents::new(b, &keywords),
                        &mut scratch,
                        &mut hits,
                    );
                }
                let (evaluated, atom_hits) = scratch.work();
                eprintln!(
                    "{setting}{n} rules: compiled in {:.2} s, {:?}; {} matches over {EVENTS} events; \
                     per event: {:.1} atom hits, {:.1} rule evaluations",
                    built.as_secs_f64(),
                    set.compiled(Target::Events).map(|c| c.stats()),
                    hits.len(),
                    atom_hits as f64 / EVENTS as f64,
                    evaluated as f64 / EVENTS as f64,
                );
                // What the matches are: the rules that match most.
                let mut per = std::collections::HashMap::<u32, usize>::new();
                for h in hits.iter() {
                    *per.entry(h.rule).or_default() += 1;
                }
                let mut per: Vec<_> = per.into_iter().collect();
                per.sort_by_key(|p| (std::cmp::Reverse(p.1), p.0));
                for (r, count) in per.iter().take(5) {
                    let rule = &all[*r as usize];
                    eprintln!(
                        "  {count:6} matches: {} ({})",
                        rule.title(),
                        rule.file.display()
                    );
                }
                (set, scratch, hits)
            });
            bench.iter(|| {
                hits.clear();
                for b in &batches {
                    set.matches(
                        Target::Events,
                        &BatchEvents::new(b, &keywords),
                        scratch,
                        hits,
                    );
                }
                hits.len()
            })
        });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
