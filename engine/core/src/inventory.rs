//! The sender inventory: which agency owns an address, what the device is called, and how to
//! parse it when its listener's defaults do not fit.
//!
//! A CSV file (a header line, then one network per line; `#` starts a comment line):
//!
//! ```text
//! cidr,organization,device,format,timezone
//! 10.20.0.0/16,So Y te,,,
//! 10.20.1.1/32,So Y te,FGT-SOYTE,fortigate,Asia/Ho_Chi_Minh
//! 2001:db8:20::/48,So Y te,,,
//! ```
//!
//! Only `cidr` and `organization` are required; `device` becomes `observer.hostname`, `format`
//! and `timezone` override the listener's. The longest matching prefix wins. Every problem in
//! the file is reported at once with its line number, and a file with problems is not used.
//! [`Watched`] reloads the file when it changes, without a restart; a bad edit keeps the
//! previous inventory (and says why in the log).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use canh_parsers::Format;

use crate::zone::Zone;

/// What the inventory says about one network.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub organization: Arc<str>,
    pub device: Option<Arc<str>>,
    pub format: Option<Format>,
    pub timezone: Option<Zone>,
}

/// What the inventory says about one sender, and so how its messages are labelled and parsed.
/// The one place that decides it, for the pipeline and for `canh parse --source-ip`.
#[derive(Debug, Clone, Default)]
pub enum SenderInfo {
    /// No inventory is configured: no `organization.name`, the listener's settings.
    #[default]
    NoInventory,
    /// The inventory does not list the sender: labelled [`UNKNOWN_ORGANIZATION`] and counted.
    Unknown,
    Known(Arc<Entry>),
}

/// `organization.name` of senders the inventory does not list.
pub const UNKNOWN_ORGANIZATION: &str = "unknown";

impl SenderInfo {
    /// The format to parse with: the inventory's for this sender, else the listener's.
    pub fn format(&self, listener: Format) -> Format {
        match self {
            SenderInfo::Known(e) => e.format.unwrap_or(listener),
            _ => listener,
        }
    }

    /// The zone of device times without one: the inventory's for this sender, else the
    /// listener's.
    pub fn zone<'a>(&'a self, listener: &'a Zone) -> &'a Zone {
        match self {
            SenderInfo::Known(e) => e.timezone.as_ref().unwrap_or(listener),
            _ => listener,
        }
    }

    pub fn organization(&self) -> Option<&str> {
        match self {
            SenderInfo::NoInventory => None,
            SenderInfo::Unknown => Some(UNKNOWN_ORGANIZATION),
            SenderInfo::Known(e) => Some(&e.organization),
        }
    }

    /// The device name the inventory gives (`observer.hostname`).
    pub fn device(&self) -> Option<&str> {
        match self {
            SenderInfo::Known(e) => e.device.as_deref(),
            _ => None,
        }
    }

    pub fn is_unknown(&self) -> bool {
        matches!(self, SenderInfo::Unknown)
    }
}

/// Networks by prefix length, longest first.
#[derive(Debug, Default)]
pub struct Inventory {
    /// `(prefix length in the 128-bit space, masked address → entry)`, longest prefix first.
    by_len: Vec<(u8, HashMap<u128, Arc<Entry>>)>,
    networks: usize,
}

/// IPv4 addresses live in the IPv4-mapped range, so one table serves both families.
fn key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u128::from(v4.to_ipv6_mapped()),
            None => u128::from(v6),
        },
    }
}

fn mask(bits: u128, len: u8) -> u128 {
    match len {
        0 => 0,
        128.. => bits,
        n => bits & (u128::MAX << (128 - u32::from(n))),
    }
}

impl Inventory {
    /// Parses the CSV text; `Err` lists every problem (`line N: …`).
    pub fn parse(text: &str) -> Result<Inventory, Vec<String>> {
        let mut errors = Vec::new();
        let mut tables: HashMap<u8, HashMap<u128, Arc<Entry>>> = HashMap::new();
        let mut networks = 0;
        let mut header_seen = false;
        let mut fields = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            canh_parsers::generic::csv::split_into(line, &mut fields);
            let col = |j: usize| fields.get(j).map_or("", |c| c.trim());
            if !header_seen {
                header_seen = true;
                if col(0).eq_ignore_ascii_case("cidr") {
                    continue;
                }
            }
            let (cidr, org) = (col(0), col(1));
            let mut problems = Vec::new();
            let net = match parse_cidr(cidr) {
                Ok(net) => Some(net),
                Err(e) => {
                    problems.push(e);
                    None
                }
            };
            if org.is_empty() {
                problems.push("organization is empty".to_string());
            }
            let format = match col(3) {
                "" => None,
                f => Format::parse(f).map_err(|e| problems.push(e)).ok(),
            };
            let timezone = match col(4) {
                "" => None,
                z => Zone::parse(z).map_err(|e| problems.push(e)).ok(),
            };
            if fields.len() > 5 {
                problems.push(format!("{} columns, at most 5 expected", fields.len()));
            }
            if !problems.is_empty() {
                errors.extend(problems.into_iter().map(|p| format!("line {n}: {p}")));
                continue;
            }
            let Some((bits, len)) = net else { continue };
            let entry = Arc::new(Entry {
                organization: org.into(),
                device: Some(col(2)).filter(|d| !d.is_empty()).map(Into::into),
                format,
                timezone,
            });
            if tables.entry(len).or_default().insert(bits, entry).is_some() {
                errors.push(format!("line {n}: {cidr} is listed twice"));
            }
            networks += 1;
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut by_len: Vec<_> = tables.into_iter().collect();
        by_len.sort_by_key(|t| std::cmp::Reverse(t.0));
        Ok(Inventory { by_len, networks })
    }

    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<Inventory, Vec<String>> {
        let text =
            std::fs::read_to_string(path).map_err(|e| vec![format!("{}: {e}", path.display())])?;
        Inventory::parse(&text).map_err(|errs| {
            errs.into_iter()
                .map(|e| format!("{}: {e}", path.display()))
                .collect()
        })
    }

    /// The entry of the longest prefix that holds `ip`.
    pub fn lookup(&self, ip: IpAddr) -> Option<&Arc<Entry>> {
        let k = key(ip);
        self.by_len
            .iter()
            .find_map(|(len, table)| table.get(&mask(k, *len)))
    }

    /// The sender at `ip`, as the pipeline labels it.
    pub fn sender(&self, ip: IpAddr) -> SenderInfo {
        match self.lookup(ip) {
            Some(e) => SenderInfo::Known(e.clone()),
            None => SenderInfo::Unknown,
        }
    }

    pub fn networks(&self) -> usize {
        self.networks
    }
}

/// `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a /32 or /128).
fn parse_cidr(s: &str) -> Result<(u128, u8), String> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("{s:?} is not a network such as 10.20.0.0/16"))?;
    let (max, offset) = match ip {
        IpAddr::V4(_) => (32u8, 96u8),
        IpAddr::V6(_) => (128, 0),
    };
    let len = match len {
        None => max,
        Some(l) => match l.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => return Err(format!("{s:?}: prefix length must be 0..={max}")),
        },
    };
    let full = len + offset;
    let bits = key(ip);
    if mask(bits, full) != bits {
        return Err(format!(
            "{s:?} has host bits set (did you mean {}?)",
            show(mask(bits, full), ip, len)
        ));
    }
    Ok((bits, full))
}

fn show(bits: u128, ip: IpAddr, len: u8) -> String {
    match ip {
        IpAddr::V4(_) => format!("{}/{len}", std::net::Ipv4Addr::from(bits as u32)),
        IpAddr::V6(_) => format!("{}/{len}", std::net::Ipv6Addr::from(bits)),
    }
}

/// An inventory file that is reloaded when it changes.
#[derive(Debug)]
pub struct Watched {
    path: PathBuf,
    current: RwLock<Arc<Inventory>>,
    /// Bumped on every successful reload, so readers know to drop cached lookups.
    generation: AtomicU64,
    modified: RwLock<Option<SystemTime>>,
}

impl Watched {
    /// Loads the file; fails (with every problem) if it cannot be used.
    pub fn open(path: &Path) -> Result<Arc<Watched>, Vec<String>> {
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let inv = Inventory::load(path)?;
        Ok(Arc::new(Watched {
            path: path.to_path_buf(),
            current: RwLock::new(Arc::new(inv)),
            generation: AtomicU64::new(1),
            modified: RwLock::new(modified),
        }))
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn current(&self) -> Arc<Inventory> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Reloads the file if its modification time changed. `Ok(true)` when a new inventory is
    /// in use; `Err` (with every problem) when the file changed but cannot be used, in which
    /// case the previous inventory stays.
    pub fn reload_if_changed(&self) -> Result<bool, Vec<String>> {
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        let last = match self.modified.read() {
            Ok(g) => *g,
            Err(p) => *p.into_inner(),
        };
        if modified == last {
            return Ok(false);
        }
        if let Ok(mut g) = self.modified.write() {
            *g = modified;
        }
        let inv = Inventory::load(&self.path)?;
        if let Ok(mut g) = self.current.write() {
            *g = Arc::new(inv);
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(true)
    }

    /// Checks the file every `interval` until `stop` says so, logging reloads and problems.
    pub fn watch(self: Arc<Self>, interval: Duration, stop: Arc<std::sync::atomic::AtomicBool>) {
        let mut last = std::time::Instant::now();
        while !stop.load(Ordering::Acquire) {
            // Short sleeps, so shutdown is not held up by a long interval.
            std::thread::sleep(interval.min(Duration::from_millis(200)));
            if last.elapsed() < interval {
                continue;
            }
            last = std::time::Instant::now();
            match self.reload_if_changed() {
                Ok(true) => tracing::info!(
                    file = %self.path.display(),
                    networks = self.current().networks(),
                    "inventory reloaded"
                ),
                Ok(false) => {}
                Err(errors) => {
                    for e in errors {
                        tracing::error!("inventory not reloaded: {e}");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
cidr,organization,device,format,timezone
# the health department
10.20.0.0/16,So Y te,,,
10.20.1.1/32,So Y te,FGT-SOYTE,fortigate,Asia/Ho_Chi_Minh
10.0.0.0/8,\"UBND tinh, van phong\",,,
2001:db8:20::/48,So Y te,,,+07:00
";

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn longest_prefix_wins_for_both_families() {
        let inv = Inventory::parse(TEXT).expect("valid");
        assert_eq!(inv.networks(), 4);
        let e = inv.lookup(ip("10.20.1.1")).expect("device");
        assert_eq!(e.device.as_deref(), Some("FGT-SOYTE"));
        assert_eq!(e.format, Format::from_name("fortigate"));
        assert_eq!(
            &*inv.lookup(ip("10.20.9.9")).expect("net").organization,
            "So Y te"
        );
        assert_eq!(
            &*inv.lookup(ip("10.99.0.1")).expect("/8").organization,
            "UBND tinh, van phong"
        );
        assert_eq!(
            &*inv
                .lookup(ip("::ffff:10.99.0.1"))
                .expect("mapped")
                .organization,
            "UBND tinh, van phong"
        );
        assert!(inv.lookup(ip("2001:db8:20::5")).is_some());
        assert!(inv.lookup(ip("192.0.2.1")).is_none());
        assert!(inv.lookup(ip("2001:db8:21::5")).is_none());
    }

    #[test]
    fn a_sender_takes_the_inventory_settings_over_the_listener() {
        let inv = Inventory::parse(TEXT).expect("valid");
        let listener = Zone::parse("+01:00").expect("zone");
        let at = 1_795_428_000_000_000_000;

        let fgt = inv.sender(ip("10.20.1.1"));
        assert_eq!(fgt.organization(), Some("So Y te"));
        assert_eq!(fgt.device(), Some("FGT-SOYTE"));
        assert_eq!(
            fgt.format(Format::Auto),
            Format::from_name("fortigate").expect("known")
        );
        assert_eq!(fgt.zone(&listener).offset_at(at), 7 * 3600);

        // Listed without format or zone: the listener's apply.
        let plain = inv.sender(ip("10.20.9.9"));
        assert_eq!(plain.format(Format::Rfc3164), Format::Rfc3164);
        assert_eq!(plain.zone(&listener).offset_at(at), 3600);
        assert_eq!(plain.device(), None);

        let unknown = inv.sender(ip("192.0.2.1"));
        assert!(unknown.is_unknown());
        assert_eq!(unknown.organization(), Some(UNKNOWN_ORGANIZATION));
        assert_eq!(unknown.format(Format::Auto), Format::Auto);

        let none = SenderInfo::NoInventory;
        assert_eq!(none.organization(), None);
        assert!(!none.is_unknown());
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let bad = "cidr,organization\n10.0.0.1/8,x\n300.0.0.0/8,y\n10.1.0.0/16,\n10.2.0.0/16,z,,xml,Mars/Base\n10.3.0.0/33,w\n";
        let errors = Inventory::parse(bad).expect_err("invalid");
        let expect = [
            "line 2: \"10.0.0.1/8\" has host bits set (did you mean 10.0.0.0/8?)",
            "line 3: \"300.0.0.0/8\" is not a network",
            "line 4: organization is empty",
            "line 5: unknown format \"xml\"",
            "line 5: \"Mars/Base\" is not a UTC offset",
            "line 6: \"10.3.0.0/33\": prefix length must be 0..=32",
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
    fn reload_picks_up_changes_and_keeps_the_old_on_errors() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("inventory.csv");
        std::fs::write(&path, "cidr,organization\n10.0.0.0/8,A\n").expect("write");
        let w = Watched::open(&path).expect("open");
        assert_eq!(w.reload_if_changed(), Ok(false));
        let g = w.generation();
        // Make sure the modification time moves even on coarse clocks.
        let later = SystemTime::now() + Duration::from_secs(5);
        std::fs::write(&path, "cidr,organization\n10.0.0.0/8,B\n").expect("write");
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(later))
            .expect("touch");
        assert_eq!(w.reload_if_changed(), Ok(true));
        assert!(w.generation() > g);
        assert_eq!(
            &*w.current().lookup(ip("10.1.1.1")).expect("b").organization,
            "B"
        );
        std::fs::write(&path, "cidr,organization\nnot a network,C\n").expect("write");
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(later + Duration::from_secs(5)))
            .expect("touch");
        assert!(w.reload_if_changed().is_err());
        assert_eq!(
            &*w.current()
                .lookup(ip("10.1.1.1"))
                .expect("still b")
                .organization,
            "B"
        );
    }
}
