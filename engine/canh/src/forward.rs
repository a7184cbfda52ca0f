//! `canh forward status` and `canh forward replay`: read from and write to the outbox folder,
//! beside a running `canh serve` or without one.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::{load_config, time_arg};

#[derive(Subcommand)]
pub enum ForwardCommand {
    /// Each destination: acknowledged position, alerts pending, delivered, dead letters,
    /// retries, whether it is up and its last error.
    Status {
        /// TOML configuration file (its data_dir and [outbox] dir).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The folder `canh serve` stores into (default: the config's, else ./data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// `table` or `json` (one object per destination).
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Send a destination the alerts raised since a time again (from the outbox, which keeps
    /// delivered alerts for `[outbox] retention`). A running `canh serve` takes the request up
    /// within a second; otherwise the next start does.
    Replay {
        /// RFC 3339 time, or a duration ago (`2h`).
        #[arg(long)]
        since: String,
        /// The destination's name (see `canh forward status`).
        #[arg(long)]
        to: String,
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

fn outbox_dir(config: Option<&PathBuf>, data_dir: Option<PathBuf>) -> Option<PathBuf> {
    let mut c = load_config(config)?;
    if let Some(d) = data_dir {
        c.data_dir = d;
    }
    Some(c.outbox().dir)
}

pub fn run(command: ForwardCommand) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    match command {
        ForwardCommand::Status {
            config,
            data_dir,
            format,
        } => {
            let Some(dir) = outbox_dir(config.as_ref(), data_dir) else {
                return Ok(ExitCode::from(2));
            };
            if !dir.join("segments").exists() {
                writeln!(
                    err,
                    "no outbox at {} (has canh serve run with rules?)",
                    dir.display()
                )?;
                return Ok(ExitCode::from(1));
            }
            let (last, lines) = canh_forward::status(&dir)?;
            if format == "json" {
                for s in &lines {
                    let st = s.state.clone().unwrap_or_default();
                    let v = serde_json::json!({
                        "destination": s.name,
                        "url": st.url,
                        "cursor": s.cursor,
                        "pending": s.pending,
                        "delivered": st.delivered,
                        "dead": st.dead,
                        "retried": st.retried,
                        "filtered": st.filtered,
                        "up": st.up,
                        "last_error": st.last_error,
                        "last_error_at": st.last_error_at,
                        "last_delivery_at": st.last_delivery_at,
                        "updated_at": st.updated_at,
                        "replay_pending": s.replay_pending,
                        "outbox_last_seq": last,
                    });
                    writeln!(out, "{v}")?;
                }
                return Ok(ExitCode::SUCCESS);
            }
            writeln!(out, "outbox {} — last alert record {last}", dir.display())?;
            if lines.is_empty() {
                writeln!(out, "no destination has run yet")?;
            }
            for s in &lines {
                let st = s.state.clone().unwrap_or_default();
                writeln!(
                    out,
                    "\n{}  {}\n  state      {}{}\n  cursor     {} ({} pending)\n  delivered  {}   dead letters {}   retried {}   filtered {}",
                    s.name,
                    st.url,
                    if st.up { "up" } else { "down or not started" },
                    if s.replay_pending { " (replay requested)" } else { "" },
                    s.cursor,
                    s.pending,
                    st.delivered,
                    st.dead,
                    st.retried,
                    st.filtered,
                )?;
                if let Some(at) = &st.last_delivery_at {
                    writeln!(out, "  last delivery  {at}")?;
                }
                if let Some(e) = &st.last_error {
                    writeln!(
                        out,
                        "  last error     {} {e}",
                        st.last_error_at.as_deref().unwrap_or("")
                    )?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ForwardCommand::Replay {
            since,
            to,
            config,
            data_dir,
        } => {
            let Some(dir) = outbox_dir(config.as_ref(), data_dir) else {
                return Ok(ExitCode::from(2));
            };
            let since_ns = match time_arg(Some(&since), jiff::Timestamp::now(), "since") {
                Ok(t) => t,
                Err(e) => {
                    writeln!(err, "{e}")?;
                    return Ok(ExitCode::from(2));
                }
            };
            let known = canh_forward::outbox::read_cursors(&dir)?;
            if !known.iter().any(|(n, _)| *n == to) {
                let names: Vec<&str> = known.iter().map(|(n, _)| n.as_str()).collect();
                writeln!(
                    err,
                    "no destination {to:?} in {} (known: {})",
                    dir.display(),
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    }
                )?;
                return Ok(ExitCode::from(2));
            }
            canh_forward::deliver::request_replay(&dir, &to, since_ns)?;
            writeln!(
                out,
                "replay of {to} from {since} requested; `canh forward status` shows it taken up"
            )?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
