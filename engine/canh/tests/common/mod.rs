//! Runs the real `canh` binary for end-to-end tests: on loopback, ephemeral ports, a private
//! data folder; never left running (killed on drop), never waited on without a deadline.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

pub const CANH: &str = env!("CARGO_BIN_EXE_canh");

/// A running `canh serve`.
pub struct Canh {
    child: Option<Child>,
    pub tcp: SocketAddr,
    pub udp: SocketAddr,
    /// The NetFlow/IPFIX listener.
    pub netflow: SocketAddr,
    pub http: SocketAddr,
    pub data: PathBuf,
    log: Arc<Mutex<String>>,
}

/// A test configuration: every listener on 127.0.0.1 port 0; `extra` is appended.
pub fn config(data: &Path, extra: &str) -> String {
    format!(
        r#"data_dir = "{}"
[http]
listen = "127.0.0.1:0"
[[syslog.udp]]
name = "udp"
listen = "127.0.0.1:0"
sockets = 2
[[syslog.tcp]]
name = "tcp"
listen = "127.0.0.1:0"
[[netflow.udp]]
name = "netflow"
listen = "127.0.0.1:0"
sockets = 1
{extra}
"#,
        data.display()
    )
}

fn addr_after(line: &str, marker: &str) -> Option<SocketAddr> {
    if !line.contains(marker) {
        return None;
    }
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))
        .and_then(|a| a.parse().ok())
}

impl Canh {
    /// Starts `canh serve` with the test configuration and waits until it listens.
    pub fn start(data: &Path, extra: &str) -> Canh {
        std::fs::create_dir_all(data).unwrap();
        let cfg = data.join("canh-test.toml");
        std::fs::write(&cfg, config(data, extra)).unwrap();
        let mut child = Command::new(CANH)
            .args(["serve", "--config"])
            .arg(&cfg)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log2.lock().unwrap().push_str(&format!("{line}\n"));
                let _ = tx.send(line);
            }
        });
        let (mut tcp, mut udp, mut http, mut netflow) = (None, None, None, None);
        let deadline = Instant::now() + Duration::from_secs(30);
        while tcp.is_none() || udp.is_none() || http.is_none() || netflow.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    tcp = tcp.or(addr_after(&line, "listening on tcp"));
                    udp = udp.or(addr_after(&line, "listening on udp"));
                    http = http.or(addr_after(&line, "metrics and health on http"));
                    netflow = netflow.or(addr_after(&line, "listening for netflow/ipfix on udp"));
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!("canh did not start:\n{}", log.lock().unwrap());
                }
            }
        }
        Canh {
            child: Some(child),
            tcp: tcp.unwrap(),
            udp: udp.unwrap(),
            netflow: netflow.unwrap(),
            http: http.unwrap(),
            data: data.to_owned(),
            log,
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// GET a path of the HTTP endpoint; returns the body.
    pub fn get(&self, path: &str) -> String {
        let mut s = TcpStream::connect(self.http).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default()
    }

    /// The value of one metric sample (`name{labels}`), 0 when absent.
    pub fn metric(&self, sample: &str) -> u64 {
        self.get("/metrics")
            .lines()
            .find_map(|l| {
                l.strip_prefix(sample)
                    .and_then(|v| v.trim().parse::<f64>().ok())
            })
            .map_or(0, |v| v as u64)
    }

    /// The sum of every sample of a metric, whatever its labels.
    pub fn metric_sum(&self, name: &str) -> u64 {
        self.get("/metrics")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let rest = l.strip_prefix(name)?;
                let value = match rest.strip_prefix('{') {
                    Some(labelled) => labelled.split_once('}')?.1,
                    None => rest,
                };
                value.trim().parse::<f64>().ok()
            })
            .sum::<f64>() as u64
    }

    fn signal(&self, sig: i32) {
        let pid = self.child.as_ref().unwrap().id() as i32;
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(pid, sig) };
    }

    /// SIGTERM, then wait (at most 120 s) for the exit status.
    pub fn stop(mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        let status = self.wait(Duration::from_secs(120));
        status.unwrap_or_else(|| panic!("canh did not exit after SIGTERM:\n{}", self.log()))
    }

    /// SIGKILL, as a crash.
    pub fn kill9(mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.wait(Duration::from_secs(30));
    }

    fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Canh {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Completed (visible) Parquet files of a table, in name order (= creation order).
pub fn parquet_files(data: &Path, table: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![data.join("archive").join(table)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet")
                && !e.file_name().to_string_lossy().starts_with('.')
            {
                out.push(p);
            }
        }
    }
    out.sort_by_key(|p| p.file_name().map(|n| n.to_owned()));
    out
}

/// Files below the archive whose names mark them unfinished.
pub fn temporary_files(data: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![data.join("archive")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else if e.file_name().to_string_lossy().ends_with(".tmp") {
                out.push(e.path());
            }
        }
    }
    out
}

/// Reads every row of the events archive (optionally only some columns), file by file in order.
pub fn read_events(data: &Path, columns: Option<&[&str]>) -> Vec<RecordBatch> {
    read_table(data, "events", columns)
}

/// Reads every row of one table of the archive, file by file in order.
pub fn read_table(data: &Path, table: &str, columns: Option<&[&str]>) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    for path in parquet_files(data, table) {
        let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
        let builder = match columns {
            Some(cols) => {
                let mask = ProjectionMask::columns(builder.parquet_schema(), cols.iter().copied());
                builder.with_projection(mask)
            }
            None => builder,
        };
        for b in builder.build().unwrap() {
            out.push(b.unwrap());
        }
    }
    out
}

/// Rows of the archive as JSON objects keyed by stored column name (small archives only).
pub fn rows_as_json(data: &Path) -> Vec<serde_json::Value> {
    let table = canh_schema::Table::Events;
    let mut rows = Vec::new();
    for b in read_events(data, None) {
        for i in 0..b.num_rows() {
            let obj = canh_core::json::row_to_json(table, &b, i);
            let by_column: serde_json::Map<String, serde_json::Value> = obj
                .into_iter()
                .map(|(k, v)| (canh_schema::fields::column_name(&k), v))
                .collect();
            rows.push(serde_json::Value::Object(by_column));
        }
    }
    rows
}

/// Sends one RFC 3164 message over TCP with util-linux `logger` (facility auth, info).
pub fn logger(port: u16, tag: &str, message: &str) {
    logger_lines(port, tag, &[message]);
}

/// Sends `lines` in order with one `logger` (util-linux) over one TCP connection, as a host's
/// syslog daemon does: one connection reaches one parser thread, so they are parsed in order.
pub fn logger_lines(port: u16, tag: &str, lines: &[&str]) {
    let mut child = Command::new("logger")
        .args([
            "-n",
            "127.0.0.1",
            "-P",
            &port.to_string(),
            "-T",
            "--rfc3164",
        ])
        .args(["-t", tag, "-p", "auth.info"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("logger (util-linux) is installed");
    let mut stdin = child.stdin.take().expect("piped stdin");
    for l in lines {
        writeln!(stdin, "{l}").expect("write to logger");
    }
    drop(stdin);
    assert!(child.wait().expect("logger").success(), "logger failed");
}

/// Waits until `cond` holds (polling), at most `limit`.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

/// A ClickHouse server started by `deploy/clickhouse.sh` (installed if missing) in a folder of
/// its own on loopback; stopped when dropped.
pub struct ClickHouse {
    pub dir: PathBuf,
    pub http: u16,
    pub tcp: u16,
}

fn clickhouse_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/clickhouse.sh")
}

impl ClickHouse {
    /// Starts a server in `dir` on free ports.
    pub fn start(dir: &Path) -> ClickHouse {
        Self::start_on(dir, None)
    }

    /// Starts one server per folder as the shards of a cluster `name` (each server knows the
    /// cluster).
    pub fn start_cluster(name: &str, dirs: &[PathBuf]) -> Vec<ClickHouse> {
        let free = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let ports: Vec<(u16, u16)> = dirs.iter().map(|_| (free(), free())).collect();
        let tcp: Vec<String> = ports.iter().map(|p| p.1.to_string()).collect();
        let cluster = format!("{name}={}", tcp.join(","));
        dirs.iter()
            .zip(&ports)
            .map(|(d, p)| Self::start_with(d, Some(*p), &[("CLUSTER", cluster.as_str())]).0)
            .collect()
    }

    /// Starts a server in `dir`, on the given (HTTP, native) ports if any.
    pub fn start_on(dir: &Path, ports: Option<(u16, u16)>) -> ClickHouse {
        Self::start_with(dir, ports, &[]).0
    }

    /// Starts a server that also serves HTTPS with the certificates of `tls` (see
    /// `deploy/clickhouse.sh`), user `default` with `password`; and its HTTPS port.
    pub fn start_tls(dir: &Path, tls: &Path, password: &str) -> (ClickHouse, u16) {
        let (ch, https) = Self::start_with(
            dir,
            None,
            &[("TLS_DIR", tls.to_str().unwrap()), ("PASSWORD", password)],
        );
        (ch, https.expect("an HTTPS port"))
    }

    fn start_with(
        dir: &Path,
        ports: Option<(u16, u16)>,
        env: &[(&str, &str)],
    ) -> (ClickHouse, Option<u16>) {
        let mut cmd = Command::new("bash");
        cmd.arg(clickhouse_script()).arg("start").arg(dir);
        cmd.envs(env.iter().copied());
        if let Some((http, tcp)) = ports {
            cmd.arg(http.to_string()).arg(tcp.to_string());
        }
        let out = cmd.output().expect("run deploy/clickhouse.sh");
        assert!(
            out.status.success(),
            "deploy/clickhouse.sh start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ports = String::from_utf8(out.stdout).unwrap();
        let mut p = ports.split_whitespace().map(|p| p.parse().unwrap());
        let ch = ClickHouse {
            dir: dir.to_owned(),
            http: p.next().unwrap(),
            tcp: p.next().unwrap(),
        };
        (ch, p.next())
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }

    /// Stops the server (its data stays in the folder).
    pub fn stop(&self) {
        let status = Command::new("bash")
            .arg(clickhouse_script())
            .arg("stop")
            .arg(&self.dir)
            .status()
            .expect("run deploy/clickhouse.sh");
        assert!(status.success());
    }

    /// Runs a query over HTTP; the body (TabSeparated unless the query says otherwise).
    pub fn query(&self, sql: &str) -> String {
        self.try_query(sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// [`ClickHouse::query`], or the server's answer when it is not 200 OK.
    pub fn try_query(&self, sql: &str) -> Result<String, String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.http)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            s,
            "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{sql}",
            sql.len()
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap_or_default();
        if !head.starts_with("HTTP/1.1 200") {
            return Err(out);
        }
        // Chunked transfer: the chunks' sizes are on lines of their own.
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            let mut text = String::new();
            let mut rest = body;
            while let Some((size, after)) = rest.split_once("\r\n") {
                let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                if n == 0 {
                    break;
                }
                text.push_str(&after[..n]);
                rest = &after[n + 2..];
            }
            Ok(text)
        } else {
            Ok(body.to_owned())
        }
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(clickhouse_script())
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl in
/// `dir` (ca.crt, server.crt/.key, client.crt/.key).
pub fn certificates(dir: &std::path::Path) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl is installed (scripts/deps.sh)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=canh test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    ]
    .concat());
    for (name, ext) in [
        (
            "server",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        ),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        run(&[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN=canh {name}"),
            ],
        ]
        .concat());
        run(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
        ]);
    }
}

/// A server started by one of the `deploy/*.sh start DIR [PORT]` scripts (taxii.sh,
/// syslog-ng.sh), with what it printed; stopped (`stop DIR`) when dropped.
pub struct Deployed {
    script: PathBuf,
    pub dir: PathBuf,
    env: Vec<(String, String)>,
    /// The words the script printed (the port first).
    pub printed: Vec<String>,
}

impl Deployed {
    pub fn start(script: &str, dir: &Path, port: Option<u16>, env: &[(&str, &str)]) -> Deployed {
        let mut d = Deployed {
            script: Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../deploy")
                .join(script),
            dir: dir.to_owned(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            printed: Vec::new(),
        };
        d.restart(port);
        d
    }

    /// Starts it (again), on `port` or a free one.
    pub fn restart(&mut self, port: Option<u16>) {
        let mut cmd = Command::new("bash");
        cmd.arg(&self.script).arg("start").arg(&self.dir);
        if let Some(p) = port {
            cmd.arg(p.to_string());
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let out = cmd.output().expect("run a deploy script");
        assert!(
            out.status.success(),
            "{} start: {}",
            self.script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        self.printed = String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
    }

    pub fn port(&self) -> u16 {
        self.printed[0].parse().unwrap()
    }

    pub fn stop(&self) {
        let _ = Command::new("bash")
            .arg(&self.script)
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}

impl Drop for Deployed {
    fn drop(&mut self) {
        self.stop();
    }
}
