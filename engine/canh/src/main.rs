//! The `canh` binary: thin glue over `canh-core`.

mod flows;
mod forward;
mod hunt_input;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use canh_core::config::Config;
use canh_core::inventory::SenderInfo;
use canh_core::Engine;
use canh_metrics::Metrics;
use canh_parsers::{append_event, Format, Meta};
use canh_schema::{Table, TableBuilder};
use clap::{Parser, Subcommand};

/// mimalloc keeps the pages of freed batches for the next ones. With glibc's allocator every
/// batch's column buffers came from fresh pages (page faults and zeroing were a quarter of a
/// parser thread's time) and went back to the kernel when the batch was written.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Canh: collect, parse, archive and detect on syslog from a government WAN.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the pipeline: syslog in, Parquet archive out (defaults need no config file).
    Serve {
        /// TOML configuration file (see deploy/canh.toml).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Where the archive and other state live (overrides `data_dir`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Sigma rule files or folders to run (overrides `[detection] rules`; default
        /// `./rules` when it exists). Reloaded on change or SIGHUP.
        #[arg(long)]
        rules: Vec<PathBuf>,
        /// Also store events, flows and alerts in ClickHouse at this HTTP URL
        /// (`http://127.0.0.1:8123`; overrides `[clickhouse] url`; database `canh`).
        #[arg(long)]
        clickhouse_url: Option<String>,
        /// Forward alerts to this destination too (repeatable): `taxii+https://user:pass@host/
        /// API-ROOT/collections/ID/`, `syslog+tls://host:6514` (or `+tcp`, `+udp`), or an
        /// `https://` webhook. The config's `[[forward]]` tables take every other setting.
        #[arg(long)]
        forward: Vec<String>,
    },
    /// Parse lines from stdin and print one normalised event per line as JSON.
    Parse {
        /// Which parser reads the lines: `auto`, a strict syslog header (`rfc5424`,
        /// `rfc3164`), or a body decoder (`fortigate`, `cisco_asa`, `cef`, …; see --help).
        #[arg(long, default_value = "auto", value_parser = Format::parse)]
        format: Format,
        /// Zone of device timestamps without one: `UTC`, `+07:00` or `Asia/Ho_Chi_Minh`.
        #[arg(long, default_value = "UTC", value_parser = canh_core::zone::Zone::parse)]
        timezone: canh_core::zone::Zone,
        /// Sender inventory (CSV: cidr,organization,device,format,timezone) to label events.
        #[arg(long)]
        inventory: Option<PathBuf>,
        /// Parse as if the lines came from this address: picks the inventory entry (agency,
        /// device, per-sender format and zone) and fills `observer.ip`.
        #[arg(long)]
        source_ip: Option<std::net::IpAddr>,
    },
    /// NetFlow/IPFIX tools.
    Flows {
        #[command(subcommand)]
        command: FlowsCommand,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Read-only SQL over the Parquet archive (tables events, flows, alerts; partition columns
    /// `date` and `hour`), or over ClickHouse with --clickhouse-url.
    Query {
        /// One SQL statement (SELECT, WITH, EXPLAIN, SHOW, DESCRIBE).
        sql: String,
        /// TOML configuration file: its data_dir (and [clickhouse] database) are used.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The folder `canh serve` stores into (default: the config's, else ./data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Run on ClickHouse at this HTTP URL instead of the archive (read-only).
        #[arg(long)]
        clickhouse_url: Option<String>,
        /// The ClickHouse database (default: the config's, else canh).
        #[arg(long)]
        database: Option<String>,
        /// `table`, `csv` or `json` (one object per line).
        #[arg(long, default_value = "table", value_parser = canh_query::Output::parse)]
        format: canh_query::Output,
        /// Rows returned at most.
        #[arg(long, default_value_t = 10_000)]
        max_rows: usize,
        /// The query is stopped after this long.
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Alert forwarding: the outbox and its destinations.
    Forward {
        #[command(subcommand)]
        command: forward::ForwardCommand,
    },
    /// ClickHouse tools.
    Clickhouse {
        #[command(subcommand)]
        command: ClickhouseCommand,
    },
    /// Sigma rule tools.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Run Sigma detection rules over JSON events (one object per line, ECS names, nested or
    /// flat dotted keys) and print one JSON line per match: the rule and the event.
    Hunt {
        /// Rule files or folders (default: the config's `[detection] rules`).
        #[arg(long, required_unless_present = "config")]
        rules: Vec<PathBuf>,
        /// TOML configuration file, to hunt as `canh serve` runs it: its `[detection]`
        /// settings (rules, mapping, IOC lists, suppression windows, lateness, samples), its
        /// data_dir and its ClickHouse server (database, credentials, TLS files).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// JSON lines of events (`-` for stdin). Without it, the Parquet archive is read.
        #[arg(long)]
        input: Option<PathBuf>,
        /// The archive's events and flows from this event time (RFC 3339, or a duration ago
        /// such as `24h`; default 24h).
        #[arg(long)]
        from: Option<String>,
        /// … up to this event time (RFC 3339 or a duration ago; default now).
        #[arg(long)]
        to: Option<String>,
        /// The folder `canh serve` stores into (default: the config's, else ./data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Hunt over ClickHouse at this HTTP URL instead of the archive: the rules become SQL
        /// that narrows the rows down, and Canh decides on the rows that come back.
        #[arg(long)]
        clickhouse_url: Option<String>,
        /// The ClickHouse database (default: the config's, else canh).
        #[arg(long)]
        database: Option<String>,
        /// Field mapping: `builtin` (rule names to ECS, log sources to the events they
        /// select), `none` (events are read with the rules' own names), or a mapping file
        /// (default: the config's, else builtin).
        #[arg(long)]
        mapping: Option<String>,
        /// IOC lists for placeholders (`%name%` from NAME.txt); default: the config's, else
        /// the `iocs` folder beside the rules (inside the first rules folder).
        #[arg(long)]
        iocs: Option<PathBuf>,
        /// Also store the alerts the matches make (deduplicated and suppressed as in `canh
        /// serve`, same ids) in the archive's `alerts` table under --data-dir, and in
        /// ClickHouse's when hunting there.
        #[arg(long)]
        store: bool,
        /// With --input: threads that parse and match (default: one per core). Matches come
        /// out in input order whatever the number.
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
        threads: Option<u16>,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Load every rule under the paths (files or folders of *.yml/*.yaml) and report each one
    /// that cannot run, with file, line and reason. Exit 1 when any is rejected.
    Check {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// `text` (one line per rejection and a summary) or `json` (one summary object).
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        format: String,
        /// Field mapping, as in `canh hunt`: `builtin`, `none` or a mapping file. Rules whose
        /// log source it does not cover load but see no events; they are counted by log
        /// source (not rejected).
        #[arg(long, default_value = "builtin")]
        mapping: String,
        /// IOC lists for placeholders (`%name%` from NAME.txt); default: the `iocs` folder
        /// beside the rules (inside the first rules folder).
        #[arg(long)]
        iocs: Option<PathBuf>,
    },
    /// Run rule tests: for each rule file `x.yml` under the paths, the events in
    /// `x.tests.jsonl` (`{"match": true|false, "event": {…}}` per line) must match or not.
    /// Exit 1 when a test fails or a rule with tests cannot run.
    Test {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Field mapping, as in `canh hunt`: `builtin`, `none` or a mapping file.
        #[arg(long, default_value = "builtin")]
        mapping: String,
        /// IOC lists for placeholders (`%name%` from NAME.txt); default: the `iocs` folder
        /// beside the rules (inside the first rules folder).
        #[arg(long)]
        iocs: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum FlowsCommand {
    /// Decode export packets, in order, sharing one template cache, and print one flow per
    /// line as JSON (ECS keys; `netflow.*` for the rest). A file is either one raw UDP payload
    /// or a packet capture (pcap or pcapng), whose UDP datagrams are all decoded.
    Decode {
        /// Export packet files or captures, templates first.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The exporter raw payload files came from (`observer.ip`; templates are kept per
        /// exporter). Captured packets carry their own sender.
        #[arg(long, default_value = "127.0.0.1:2055")]
        exporter: std::net::SocketAddr,
        /// In captures, only UDP datagrams to this port (repeatable; default: every one).
        #[arg(long = "port")]
        ports: Vec<u16>,
        /// Sender inventory (CSV: cidr,organization,…) for `organization.name`.
        #[arg(long)]
        inventory: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ClickhouseCommand {
    /// Print the statements that create Canh's database and tables (what `canh serve` runs),
    /// to review them or to create the tables by hand.
    Ddl {
        /// `legacy` (servers before 20.1, such as Debian 12's 18.16) or `modern`.
        #[arg(long, default_value = "modern", value_parser = ["legacy", "modern"])]
        dialect: String,
        #[arg(long, default_value = "canh")]
        database: String,
        /// Days of data to keep (a TTL in the modern dialect).
        #[arg(long)]
        retention_days: Option<u32>,
        /// For a cluster of this name (from the servers' remote_servers): per-shard
        /// `<table>_local` tables and Distributed tables over them, run on every server.
        #[arg(long)]
        cluster: Option<String>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check a configuration file and report every problem at once.
    Check { file: PathBuf },
}

/// Where what is worth keeping between runs is kept (compiled rule patterns):
/// `CANH_CACHE_DIR` (set but empty: nowhere), else `$XDG_CACHE_HOME/canh`, else
/// `~/.cache/canh`.
fn cache_dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).map(PathBuf::from);
    match var("CANH_CACHE_DIR") {
        Some(d) if d.as_os_str().is_empty() => None,
        Some(d) => Some(d),
        None => var("XDG_CACHE_HOME")
            .filter(|d| d.is_absolute())
            .or_else(|| var("HOME").map(|h| h.join(".cache")))
            .map(|d| d.join("canh")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    canh_rules::hscache::set_dir(cache_dir().map(|d| d.join("hyperscan")));
    let result = match cli.command {
        Command::Serve {
            config,
            data_dir,
            rules,
            clickhouse_url,
            forward,
        } => serve(config, data_dir, rules, clickhouse_url, forward),
        Command::Forward { command } => forward::run(command),
        Command::Parse {
            format,
            timezone,
            inventory,
            source_ip,
        } => parse(format, &timezone, inventory.as_deref(), source_ip),
        Command::Config {
            command: ConfigCommand::Check { file },
        } => config_check(&file),
        Command::Query {
            sql,
            config,
            data_dir,
            clickhouse_url,
            database,
            format,
            max_rows,
            timeout,
        } => query(
            &sql,
            config,
            data_dir,
            clickhouse_url,
            database,
            format,
            canh_query::Limits { max_rows, timeout },
        ),
        Command::Clickhouse {
            command:
                ClickhouseCommand::Ddl {
                    dialect,
                    database,
                    retention_days,
                    cluster,
                },
        } => clickhouse_ddl(&dialect, database, retention_days, cluster),
        Command::Rules {
            command:
                RulesCommand::Check {
                    paths,
                    format,
                    mapping,
                    iocs,
                },
        } => rules_check(&paths, &format, &mapping, iocs),
        Command::Rules {
            command:
                RulesCommand::Test {
                    paths,
                    mapping,
                    iocs,
                },
        } => rules_test(&paths, &mapping, iocs),
        Command::Hunt {
            rules,
            config,
            input,
            from,
            to,
            data_dir,
            clickhouse_url,
            database,
            mapping,
            iocs,
            store,
            threads,
        } => {
            let Some(config) = load_config(config.as_ref()) else {
                return ExitCode::from(2);
            };
            let data_dir = data_dir.unwrap_or_else(|| config.data_dir.clone());
            let settings = HuntSettings {
                rules: if rules.is_empty() {
                    config.detection.rules.clone()
                } else {
                    rules
                },
                mapping: mapping
                    .or_else(|| {
                        let m = config.detection.mapping.as_ref()?;
                        Some(m.display().to_string())
                    })
                    .unwrap_or_else(|| "builtin".into()),
                iocs: iocs.or_else(|| config.detection.iocs.clone()),
                store: store.then(|| data_dir.join("archive")),
                detection: config.detection.clone(),
            };
            match input {
                Some(input) => hunt(
                    &settings,
                    HuntSource::Json(
                        &input,
                        threads.map_or_else(
                            || std::thread::available_parallelism().map_or(1, usize::from),
                            usize::from,
                        ),
                    ),
                ),
                None => match hunt_window(from.as_deref(), to.as_deref()) {
                    Ok(window) => hunt(
                        &settings,
                        match clickhouse_url {
                            Some(url) => HuntSource::ClickHouse {
                                // The config's credentials and TLS files when it names the
                                // same server.
                                endpoint: match config.clickhouse.as_ref() {
                                    Some(c) if c.url == url.trim_end_matches('/') => c.endpoint(),
                                    _ => canh_core::sink::clickhouse::Endpoint::new(&url),
                                },
                                database: database
                                    .or(config.clickhouse.as_ref().map(|c| c.database.clone()))
                                    .unwrap_or_else(|| "canh".into()),
                                window,
                            },
                            None => HuntSource::Archive {
                                archive: data_dir.join("archive"),
                                window,
                            },
                        },
                    ),
                    Err(e) => {
                        let _ = writeln!(std::io::stderr(), "{e}");
                        Ok(ExitCode::from(2))
                    }
                },
            }
        }
        Command::Flows {
            command:
                FlowsCommand::Decode {
                    files,
                    exporter,
                    ports,
                    inventory,
                },
        } => match load_inventory(inventory.as_deref()) {
            Ok(Ok(inventory)) => flows::decode(&files, exporter, &ports, inventory),
            Ok(Err(code)) => Ok(code),
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(code) => code,
        // `canh parse … | head`: the reader is gone, which is not an error.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Reads the configuration, or reports every problem and returns `None`.
fn load_config(path: Option<&PathBuf>) -> Option<Config> {
    let Some(path) = path else {
        return Some(Config::default());
    };
    let loaded = Config::from_file(path).and_then(|c| match &c.inventory {
        // The inventory is part of the configuration: check it with the rest.
        Some(ic) => canh_core::inventory::Inventory::load(&ic.file)
            .map(|_| c)
            .map_err(canh_core::config::ConfigErrors),
        None => Ok(c),
    });
    match loaded {
        Ok(c) => Some(c),
        Err(errors) => {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{}: {} problem(s):", path.display(), errors.0.len());
            for e in &errors.0 {
                let _ = writeln!(err, "  {e}");
            }
            None
        }
    }
}

fn serve(
    config: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    rules: Vec<PathBuf>,
    clickhouse_url: Option<String>,
    forward: Vec<String>,
) -> anyhow::Result<ExitCode> {
    let Some(mut config) = load_config(config.as_ref()) else {
        return Ok(ExitCode::from(2));
    };
    for url in &forward {
        if let Err(e) = config.add_forward(url) {
            writeln!(std::io::stderr(), "--forward: {e}")?;
            return Ok(ExitCode::from(2));
        }
    }
    if let Some(url) = clickhouse_url {
        if let Err(e) = canh_core::config::ClickHouseConfig::check_url(&url) {
            writeln!(std::io::stderr(), "--clickhouse-url: {e}")?;
            return Ok(ExitCode::from(2));
        }
        match &mut config.clickhouse {
            Some(c) => c.url = url.trim_end_matches('/').to_owned(),
            None => config.clickhouse = Some(canh_core::config::ClickHouseConfig::new(&url)),
        }
    }
    if let Some(dir) = data_dir {
        config.data_dir = dir;
    }
    if !rules.is_empty() {
        config.detection.rules = rules;
        config.detection.rules_default = false;
    }
    let engine = Engine::start(&config, Metrics::new()).context("cannot start")?;
    tracing::info!(data_dir = %config.data_dir.display(), "canh is running; SIGTERM or Ctrl-C stops it");
    engine.wait_for_signal().context("waiting for a signal")?;
    engine.shutdown();
    Ok(ExitCode::SUCCESS)
}

fn query(
    sql: &str,
    config: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    clickhouse_url: Option<String>,
    database: Option<String>,
    format: canh_query::Output,
    limits: canh_query::Limits,
) -> anyhow::Result<ExitCode> {
    let Some(config) = load_config(config.as_ref()) else {
        return Ok(ExitCode::from(2));
    };
    let data_dir = data_dir.unwrap_or(config.data_dir.clone());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the query runtime")?;
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    match clickhouse_url {
        Some(url) => {
            let database = database
                .or(config.clickhouse.as_ref().map(|c| c.database.clone()))
                .unwrap_or_else(|| "canh".into());
            // The config's credentials and TLS files when it names the same server.
            let endpoint = match config.clickhouse.as_ref() {
                Some(c) if c.url == url.trim_end_matches('/') => c.endpoint(),
                _ => canh_core::sink::clickhouse::Endpoint::new(&url),
            };
            let client = endpoint.client().map_err(anyhow::Error::msg)?;
            match rt.block_on(canh_query::clickhouse(
                client, &database, sql, format, limits,
            )) {
                Ok(text) => out.write_all(text.as_bytes())?,
                Err(e) => {
                    writeln!(err, "query failed: {e}")?;
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        _ => {
            let archive = data_dir.join("archive");
            match rt.block_on(canh_query::archive(&archive, sql, limits)) {
                Ok(answer) => {
                    if let Err(e) = canh_query::write(&answer.batches, format, &mut out) {
                        writeln!(err, "{e}")?;
                        return Ok(ExitCode::FAILURE);
                    }
                    if answer.truncated {
                        writeln!(err, "(stopped at {} rows: --max-rows)", limits.max_rows)?;
                    }
                }
                Err(e) => {
                    writeln!(err, "query failed: {e}")?;
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn clickhouse_ddl(
    dialect: &str,
    database: String,
    retention_days: Option<u32>,
    cluster: Option<String>,
) -> anyhow::Result<ExitCode> {
    use canh_core::sink::clickhouse::{
        create_database, create_distributed, create_table, Dialect, Layout,
    };
    let layout = Layout {
        database,
        dialect: if dialect == "legacy" {
            Dialect::Legacy
        } else {
            Dialect::Modern
        },
        retention_days,
        cluster,
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{};\n", create_database(&layout))?;
    for t in Table::ALL {
        writeln!(out, "{};\n", create_table(t, &layout))?;
        if let Some(sql) = create_distributed(t, &layout) {
            writeln!(out, "{sql};\n")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Loads an inventory for a CLI tool, or prints its problems.
fn load_inventory(
    path: Option<&std::path::Path>,
) -> anyhow::Result<Result<Option<canh_core::inventory::Inventory>, ExitCode>> {
    let Some(path) = path else {
        return Ok(Ok(None));
    };
    match canh_core::inventory::Inventory::load(path) {
        Ok(inv) => Ok(Ok(Some(inv))),
        Err(errors) => {
            let mut err = std::io::stderr().lock();
            for e in errors {
                writeln!(err, "{e}")?;
            }
            Ok(Err(ExitCode::from(2)))
        }
    }
}

fn config_check(file: &PathBuf) -> anyhow::Result<ExitCode> {
    if load_config(Some(file)).is_none() {
        return Ok(ExitCode::from(2));
    }
    writeln!(std::io::stdout(), "{}: ok", file.display())?;
    Ok(ExitCode::SUCCESS)
}

/// Writes rejected rules as `file:line: reason`, then `suffix`.
fn write_rejections(
    w: &mut impl Write,
    rejections: &[canh_rules::Rejection],
    suffix: &str,
) -> std::io::Result<()> {
    for r in rejections {
        writeln!(w, "{}:{}: {}{suffix}", r.file.display(), r.line, r.reason)?;
    }
    Ok(())
}

/// The IOC lists: the folder given, or `iocs` beside the rules.
fn iocs(rule_paths: &[PathBuf], given: Option<PathBuf>) -> anyhow::Result<canh_rules::Iocs> {
    let dir = given.unwrap_or_else(|| match rule_paths.first() {
        Some(p) if p.is_dir() => p.join("iocs"),
        Some(p) => p.parent().unwrap_or(std::path::Path::new(".")).join("iocs"),
        None => PathBuf::from("iocs"),
    });
    canh_rules::Iocs::load(&dir).map_err(|problems| anyhow::anyhow!(problems.join("; ")))
}

fn rules_check(
    paths: &[PathBuf],
    format: &str,
    map: &str,
    ioc_dir: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let iocs = iocs(paths, ioc_dir)?;
    let mapping = mapping(map)?;
    // Loaded detection rules whose log source the mapping does not cover, by log source.
    let mut unmapped = std::collections::BTreeMap::<String, usize>::new();
    let loaded = canh_rules::load(paths);
    let mut rejected_rules = loaded.rejected.len();
    let mut rejected = loaded.rejected;
    let mut usable = 0;
    // Detection rules that can run, and correlations to resolve against them.
    let (mut detections, mut correlations) = (Vec::new(), Vec::new());
    for rule in &loaded.rules {
        match canh_rules::check(rule, &iocs) {
            Ok(_) => match &rule.kind {
                canh_rules::RuleKind::Detection(s) => {
                    detections.push(&**s);
                    usable += 1;
                    if !mapping.covers(&s.logsource) {
                        *unmapped
                            .entry(canh_rules::mapping::describe(&s.logsource))
                            .or_default() += 1;
                    }
                }
                canh_rules::RuleKind::Correlation(c) => correlations.push((rule, &**c)),
                canh_rules::RuleKind::Filter(f) => {
                    match canh_rules::plain::compile_detections(&f.detection, &iocs) {
                        Ok(_) => usable += 1,
                        Err(e) => {
                            rejected_rules += 1;
                            rejected.push(canh_rules::Rejection {
                                file: rule.file.clone(),
                                line: rule.line,
                                reason: format!("filter: {e}"),
                            });
                        }
                    }
                }
            },
            Err(problems) => {
                rejected_rules += 1;
                rejected.extend(problems);
            }
        }
    }
    // Correlations: every rule they name must be among the rules that run, without loops.
    let corr: Vec<_> = correlations.iter().map(|(_, c)| *c).collect();
    let (_, problems) = canh_rules::correlation::Correlator::new(
        &corr,
        &detections,
        &mapping,
        canh_rules::correlation::Limits::default(),
    );
    usable += correlations.len() - problems.len();
    rejected_rules += problems.len();
    for (i, why) in problems {
        let rule = correlations[i].0;
        rejected.push(canh_rules::Rejection {
            file: rule.file.clone(),
            line: rule.line,
            reason: format!("correlation: {why}"),
        });
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if format == "json" {
        let errors: Vec<serde_json::Value> = rejected
            .iter()
            .map(|r| {
                serde_json::json!({
                    "file": r.file.display().to_string(),
                    "line": r.line,
                    "reason": r.reason,
                })
            })
            .collect();
        let summary = serde_json::json!({
            "loaded": usable,
            "rejected": rejected_rules,
            "errors": errors,
            "unmapped": unmapped.values().sum::<usize>(),
            "unmapped_log_sources": unmapped,
        });
        serde_json::to_writer(&mut out, &summary)?;
        writeln!(out)?;
    } else {
        write_rejections(&mut out, &rejected, "")?;
        writeln!(out, "{usable} rule(s) loaded, {rejected_rules} rejected")?;
        if !unmapped.is_empty() {
            writeln!(
                out,
                "{} of the loaded rules see no events: the field mapping does not cover their \
                 log source:",
                unmapped.values().sum::<usize>()
            )?;
            for (ls, n) in canh_rules::mapping::most_first(unmapped) {
                writeln!(out, "  {n:5}  {ls}")?;
            }
        }
    }
    out.flush()?;
    Ok(if rejected.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn rules_test(paths: &[PathBuf], map: &str, ioc_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let iocs = iocs(paths, ioc_dir)?;
    use canh_rules::tests::tests_file;
    let mapping = mapping(map)?;
    let loaded = canh_rules::load(paths);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    write_rejections(&mut out, &loaded.rejected, " (cannot run)")?;
    // A rule that cannot run fails its file's tests.
    let mut failures = loaded
        .rejected
        .iter()
        .filter(|r| tests_file(&r.file).exists())
        .count();
    let mut files: Vec<&std::path::Path> = loaded.rules.iter().map(|r| r.file.as_path()).collect();
    files.dedup();
    let (mut passed, mut untested) = (0usize, 0usize);
    for file in files {
        let tests = tests_file(file);
        let mut compiled = Vec::new();
        for rule in loaded.rules.iter().filter(|r| r.file == file) {
            match canh_rules::check(rule, &iocs) {
                Ok(canh_rules::Checked::Detection(m)) => {
                    if let canh_rules::RuleKind::Detection(sigma) = &rule.kind {
                        match mapping.apply(sigma, *m) {
                            Some((mapped, _)) => compiled.push((rule, mapped)),
                            None => {
                                let problem = canh_rules::Rejection {
                                    file: rule.file.clone(),
                                    line: rule.line,
                                    reason: format!(
                                        "sees no events: the field mapping does not cover its \
                                         log source ({})",
                                        canh_rules::mapping::describe(&sigma.logsource)
                                    ),
                                };
                                write_rejections(&mut out, &[problem], " (cannot run)")?;
                                failures += usize::from(tests.exists());
                            }
                        }
                    }
                }
                Ok(canh_rules::Checked::NotEvaluated) => {}
                Err(problems) => {
                    write_rejections(&mut out, &problems, " (cannot run)")?;
                    failures += usize::from(tests.exists());
                }
            }
        }
        if !tests.exists() {
            untested += compiled.len();
            continue;
        }
        let pairs: Vec<_> = compiled.iter().map(|(r, m)| (*r, m)).collect();
        match canh_rules::tests::run(&pairs, &tests) {
            Ok(outcomes) => {
                for o in outcomes {
                    if o.expected == o.got {
                        passed += 1;
                    } else {
                        failures += 1;
                        writeln!(
                            out,
                            "{}:{}: '{}' should {}match this event{}",
                            o.file.display(),
                            o.line,
                            o.rule,
                            if o.expected { "" } else { "not " },
                            o.note.map(|n| format!(" ({n})")).unwrap_or_default()
                        )?;
                    }
                }
            }
            Err(e) => {
                failures += 1;
                writeln!(out, "{e}")?;
            }
        }
    }
    writeln!(
        out,
        "{passed} test(s) passed, {failures} failed; {untested} rule(s) without tests"
    )?;
    out.flush()?;
    Ok(if failures > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Tells how many rules see no events under the mapping, by log source (the first few).
fn write_unmapped(out: &mut dyn Write, set: &canh_rules::RuleSet) -> std::io::Result<()> {
    if set.unmapped.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "{} rule(s) see no events: the field mapping does not cover their log source: {}",
        set.unmapped.len(),
        set.unmapped_summary(5)
    )
}

/// The field mapping named on the command line.
fn mapping(name: &str) -> anyhow::Result<canh_rules::Mapping> {
    Ok(match name {
        "builtin" => canh_rules::Mapping::builtin(),
        "none" => canh_rules::Mapping::identity(),
        path => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
            canh_rules::Mapping::parse(&text)
                .map_err(|problems| anyhow::anyhow!("{path}:\n  {}", problems.join("\n  ")))?
        }
    })
}

/// `--from`/`--to` as a window of event times.
/// A time on the command line: RFC 3339, or a duration ago (`24h`); ns since the epoch.
fn time_arg(text: Option<&str>, default: jiff::Timestamp, name: &str) -> Result<i64, String> {
    let t = match text {
        None => default,
        Some(t) => match t.parse::<jiff::Timestamp>() {
            Ok(t) => t,
            Err(_) => {
                let ago = humantime::parse_duration(t).map_err(|_| {
                    format!("--{name} {t:?}: an RFC 3339 time (2026-11-30T08:00:00Z) or a duration ago (24h)")
                })?;
                jiff::Timestamp::now()
                    - jiff::SignedDuration::try_from(ago).map_err(|e| e.to_string())?
            }
        },
    };
    i64::try_from(t.as_nanosecond()).map_err(|e| e.to_string())
}

fn hunt_window(from: Option<&str>, to: Option<&str>) -> Result<canh_core::hunt::Window, String> {
    let now = jiff::Timestamp::now();
    let at = time_arg;
    let from_ns = at(from, now - jiff::SignedDuration::from_hours(24), "from")?;
    let to_ns = at(to, now, "to")?;
    if from_ns >= to_ns {
        return Err("--from must be before --to".into());
    }
    Ok(canh_core::hunt::Window { from_ns, to_ns })
}

/// Where `canh hunt` reads events.
enum HuntSource<'a> {
    /// JSON lines (`-`: stdin), parsed and matched on this many threads.
    Json(&'a std::path::Path, usize),
    /// The Parquet archive, by event time.
    Archive {
        archive: PathBuf,
        window: canh_core::hunt::Window,
    },
    /// ClickHouse tables, by event time.
    ClickHouse {
        endpoint: canh_core::sink::clickhouse::Endpoint,
        database: String,
        window: canh_core::hunt::Window,
    },
}

/// What a hunt runs, from the command line and the configuration.
struct HuntSettings {
    rules: Vec<PathBuf>,
    mapping: String,
    iocs: Option<PathBuf>,
    /// With `--store`: the archive the alerts go to.
    store: Option<PathBuf>,
    /// Suppression, lateness, samples: as the live pipeline runs them.
    detection: canh_core::config::DetectionConfig,
}

/// Rules, correlations and the output of `canh hunt`, whatever the source.
struct Hunter {
    set: std::sync::Arc<canh_rules::RuleSet>,
    correlator: canh_rules::correlation::Correlator,
    silent: std::collections::HashSet<canh_rules::correlation::Source>,
    /// The rule's part of a match line, made once per rule.
    heads: Vec<Option<String>>,
    out: std::io::BufWriter<std::io::StdoutLock<'static>>,
    matches: u64,
    /// With `--store`: the alerts the matches make.
    store: Option<(canh_core::detect::Alerts, TableBuilder, Metrics)>,
}

impl Hunter {
    fn new(settings: &HuntSettings) -> anyhow::Result<Hunter> {
        let rule_paths = &settings.rules;
        if rule_paths.is_empty() {
            anyhow::bail!("no rules to hunt with: give --rules, or rules under [detection] in the configuration");
        }
        let iocs = iocs(rule_paths, settings.iocs.clone())?;
        let mapping = mapping(&settings.mapping)?;
        let loaded = canh_rules::load(rule_paths);
        let mut err = std::io::stderr().lock();
        write_rejections(&mut err, &loaded.rejected, " (rule skipped)")?;
        let (set, problems) = canh_rules::RuleSet::build(&loaded.rules, &mapping, &iocs);
        write_rejections(&mut err, &problems, " (rule skipped)")?;
        write_unmapped(&mut err, &set)?;
        let correlator = set.correlator(canh_core::detect::correlation_limits(&settings.detection));
        let silent = correlator.silent_rules().clone();
        Ok(Hunter {
            heads: vec![None; set.rules.len()],
            set: std::sync::Arc::new(set),
            correlator,
            silent,
            out: std::io::BufWriter::new(std::io::stdout().lock()),
            matches: 0,
            store: None,
        })
    }

    /// One matching event: its correlations, then the match itself unless the rule only feeds
    /// correlations. `line` is the event as read, printed as it is when given.
    fn hit(
        &mut self,
        rule: u32,
        time_ns: &dyn Fn() -> i64,
        event: &dyn canh_rules::plain::Row,
        sample: &dyn canh_rules::correlation::EventJson,
        line: Option<&str>,
    ) -> anyhow::Result<()> {
        use canh_rules::correlation::Source;
        if let Some((alerts, builder, metrics)) = &mut self.store {
            alerts.matched(rule, time_ns(), event, sample, builder, metrics);
        }
        if self.correlator.wants(rule) {
            for f in self.correlator.observe(rule, time_ns(), event, sample) {
                if self.silent.contains(&Source::Correlation(f.correlation)) {
                    continue;
                }
                let rule = &self.set.correlations[f.correlation as usize];
                let hit = serde_json::json!({
                    "rule.id": rule.id(),
                    "rule.title": rule.title(),
                    "rule.level": rule.level(),
                    "correlation": {
                        "group": f.key.iter().map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str()))).collect::<serde_json::Map<_, _>>(),
                        "first": canh_core::json::rfc3339(f.first_ns),
                        "last": canh_core::json::rfc3339(f.last_ns),
                        "count": f.count,
                        "value": f.value,
                    },
                    "events": f.samples,
                });
                serde_json::to_writer(&mut self.out, &hit)?;
                self.out.write_all(b"\n")?;
                self.matches += 1;
            }
        }
        if self.silent.contains(&Source::Detection(rule)) {
            return Ok(());
        }
        let set = &self.set;
        let head = self.heads[rule as usize].get_or_insert_with(|| {
            let rule = &set.rules[rule as usize];
            let head = serde_json::json!({
                "rule.id": rule.id(),
                "rule.title": rule.title(),
                "rule.level": rule.level(),
            })
            .to_string();
            format!("{},\"event\":", &head[..head.len() - 1])
        });
        self.out.write_all(head.as_bytes())?;
        match line {
            Some(l) => self.out.write_all(l.trim().as_bytes())?,
            None => self.out.write_all(sample.text().as_bytes())?,
        }
        self.out.write_all(b"}\n")?;
        self.matches += 1;
        Ok(())
    }
}

fn hunt(settings: &HuntSettings, source: HuntSource<'_>) -> anyhow::Result<ExitCode> {
    let mut h = Hunter::new(settings)?;
    if settings.store.is_some() {
        h.store = Some((
            canh_core::detect::Alerts::new(&h.set, &settings.detection),
            TableBuilder::new(Table::Alerts, 1024),
            Metrics::new(),
        ));
    }
    let clickhouse = match &source {
        HuntSource::ClickHouse {
            endpoint, database, ..
        } => Some((endpoint.clone(), database.clone())),
        _ => None,
    };
    let (events, bad) = match source {
        HuntSource::Json(input, threads) => hunt_input::hunt_json(&mut h, input, threads)?,
        HuntSource::Archive { archive, window } => (hunt_archive(&mut h, &archive, window)?, 0),
        HuntSource::ClickHouse {
            endpoint,
            database,
            window,
        } => (hunt_clickhouse(&mut h, &endpoint, database, window)?, 0),
    };
    h.out.flush()?;
    if let (Some(archive), Some((mut alerts, mut builder, metrics))) =
        (&settings.store, h.store.take())
    {
        alerts.close(&mut builder, &metrics);
        let stored = store_alerts(archive, clickhouse, builder.finish()?, metrics)?;
        writeln!(std::io::stderr(), "{stored} alert row(s) stored")?;
    }
    writeln!(
        std::io::stderr(),
        "{events} event(s), {} rule(s), {} match(es){}",
        h.set.rules.len(),
        h.matches,
        if bad > 0 {
            format!(", {bad} line(s) not JSON objects")
        } else {
            String::new()
        }
    )?;
    Ok(if bad > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Writes a hunt's alert rows into the archive (and ClickHouse's `alerts`): how many.
fn store_alerts(
    archive: &std::path::Path,
    clickhouse: Option<(canh_core::sink::clickhouse::Endpoint, String)>,
    batch: Option<canh_schema::Batch>,
    metrics: Metrics,
) -> anyhow::Result<usize> {
    let Some(batch) = batch else {
        return Ok(0);
    };
    let mut a = canh_core::sink::parquet::ParquetArchive::open(
        archive,
        canh_core::config::ArchiveConfig::default(),
        metrics,
    )
    .with_context(|| format!("opening the archive {}", archive.display()))?;
    a.write(&batch)
        .and_then(|()| a.close())
        .context("storing alerts in the archive")?;
    if let Some((endpoint, database)) = clickhouse {
        use canh_core::sink::clickhouse::{Layout, Server};
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the ClickHouse client")?;
        rt.block_on(async {
            let server = Server::open(&endpoint).await?;
            let layout = Layout {
                database,
                dialect: server.dialect,
                retention_days: None,
                cluster: None,
            };
            server
                .insert(Table::Alerts, &layout, std::slice::from_ref(&batch.records))
                .await?;
            Ok::<_, anyhow::Error>(())
        })
        .context("storing alerts in ClickHouse")?;
    }
    Ok(batch.rows())
}

/// A progress line on stderr (drawn only when stderr is a terminal): `total` bytes, or a
/// count without an end. It is cleared when dropped, on error too.
fn progress(total: Option<u64>, template: &str) -> indicatif::ProgressBar {
    let bar =
        indicatif::ProgressBar::with_draw_target(total, indicatif::ProgressDrawTarget::stderr())
            .with_finish(indicatif::ProgressFinish::AndClear);
    bar.set_style(
        indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// The archive's events and flows of a time window, files in parallel; matches are printed
/// file by file, then correlations run over them in event-time order. Returns the rows read.
fn hunt_archive(
    h: &mut Hunter,
    archive: &std::path::Path,
    window: canh_core::hunt::Window,
) -> anyhow::Result<u64> {
    use std::sync::atomic::{AtomicU64, Ordering};
    let tables = [Table::Events, Table::Flows];
    let mut files = Vec::new();
    for t in tables {
        files.push(canh_core::hunt::files(archive, t, window).map_err(anyhow::Error::msg)?);
    }
    let total: u64 = files
        .iter()
        .flatten()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let bar = progress(
        Some(total),
        "{spinner} {bytes}/{total_bytes} of Parquet read, {msg} [{elapsed}, about {eta} left]",
    );
    let rows = AtomicU64::new(0);
    let mut all = canh_core::hunt::Found::default();
    for (t, files) in tables.iter().zip(&files) {
        // Files in chunks, so progress moves and output starts before the end.
        for chunk in files.chunks(16) {
            let found = canh_core::hunt::run(&h.set, *t, chunk, window, &rows)
                .map_err(anyhow::Error::msg)?;
            bar.inc(
                chunk
                    .iter()
                    .filter_map(|f| std::fs::metadata(f).ok())
                    .map(|m| m.len())
                    .sum(),
            );
            bar.set_message(format!("{} rows", rows.load(Ordering::Relaxed)));
            for f in found {
                all.extend(f);
            }
        }
    }
    bar.finish_and_clear();
    // Correlation windows need event-time order across files and tables.
    run_found(h, all)?;
    Ok(rows.load(Ordering::Relaxed))
}

/// A hunt's matches, in the order correlations need, through the hunter.
fn run_found(h: &mut Hunter, mut found: canh_core::hunt::Found) -> anyhow::Result<()> {
    found.sort();
    found
        .each(|m, row, sample| {
            h.hit(m.rule, &|| m.time_ns, row, sample, None)
                .map_err(|e| e.to_string())
        })
        .map_err(anyhow::Error::msg)
}

/// ClickHouse's events and flows of a time window: per table, ClickHouse runs the rules' SQL
/// condition and Canh the compiled rules on the rows it sends; then correlations in
/// event-time order, as over the archive. Returns the rows received.
fn hunt_clickhouse(
    h: &mut Hunter,
    endpoint: &canh_core::sink::clickhouse::Endpoint,
    database: String,
    window: canh_core::hunt::Window,
) -> anyhow::Result<u64> {
    use canh_core::sink::clickhouse::{Layout, Server};
    use std::sync::atomic::{AtomicU64, Ordering};
    let url = &endpoint.url;
    canh_core::config::ClickHouseConfig::check_url(url).map_err(anyhow::Error::msg)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the ClickHouse client")?;
    let server = rt
        .block_on(Server::open(endpoint))
        .with_context(|| format!("connecting to ClickHouse at {url}"))?;
    let layout = Layout {
        database,
        dialect: server.dialect,
        retention_days: None,
        cluster: None,
    };
    let rows = AtomicU64::new(0);
    let mut all = canh_core::hunt::Found::default();
    let mut err = std::io::stderr().lock();
    for t in [Table::Events, Table::Flows] {
        if let Some((sql, filter)) = canh_core::hunt::clickhouse_select(&h.set, t, &layout, window)
        {
            tracing::debug!(table = t.name(), %sql, "hunt query");
            writeln!(
                err,
                "{}: {} rule(s) decided by ClickHouse, {} narrowed there and decided by Canh{}",
                t.name(),
                filter.exact,
                filter.widened,
                if filter.condition == "1" {
                    " (every row of the window is read)"
                } else {
                    ""
                }
            )?;
        }
        let found = rt
            .block_on(canh_core::hunt::clickhouse(
                &h.set, t, &server, &layout, window, &rows,
            ))
            .map_err(|e| anyhow::anyhow!("hunting over ClickHouse: {e}"))?;
        all.extend(found);
    }
    drop(err);
    run_found(h, all)?;
    Ok(rows.load(Ordering::Relaxed))
}

/// Lines per batch in `canh parse`: output appears in order every this many lines.
const PARSE_BATCH: usize = 1024;

fn parse(
    format: Format,
    zone: &canh_core::zone::Zone,
    inventory: Option<&std::path::Path>,
    source_ip: Option<std::net::IpAddr>,
) -> anyhow::Result<ExitCode> {
    let inventory = match load_inventory(inventory)? {
        Ok(inv) => inv,
        Err(code) => return Ok(code),
    };
    // What the inventory says about the sender, as the pipeline would apply it.
    let sender = match (&inventory, source_ip) {
        (Some(inv), Some(ip)) => inv.sender(ip),
        (Some(_), None) => SenderInfo::Unknown,
        (None, _) => SenderInfo::NoInventory,
    };
    let format = sender.format(format);
    let zone = sender.zone(zone);
    let peer_ip = source_ip.map(|ip| ip.to_string()).unwrap_or_default();
    let stdin = std::io::stdin().lock();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut builder = TableBuilder::new(Table::Events, PARSE_BATCH);
    let mut lines = stdin.split(b'\n').peekable();
    while lines.peek().is_some() {
        for line in lines.by_ref().take(PARSE_BATCH) {
            let line = line.context("reading stdin")?;
            let received_ns = canh_schema::raw::now_ns();
            let meta = Meta {
                received_ns,
                listener: "stdin",
                input_type: canh_schema::Transport::File.as_str(),
                peer_ip: &peer_ip,
                peer_addr: "",
                tz_offset_secs: zone.offset_at(received_ns),
                organization: sender.organization(),
                device: sender.device(),
            };
            append_event(&mut builder, &line, format, &meta);
        }
        if let Some(batch) = builder.finish()? {
            for row in 0..batch.rows() {
                let json = canh_core::json::RowJson {
                    table: Table::Events,
                    batch: &batch.records,
                    row,
                };
                out.write_all(canh_rules::correlation::EventJson::text(&json).as_bytes())?;
                out.write_all(b"\n")?;
            }
        }
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}
