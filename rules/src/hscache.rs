//! Compiled Hyperscan databases kept on disk between runs.
//!
//! Compiling is most of the time it takes to load a large rule set (over a second for the
//! ~450 SigmaHQ network, Linux, web and DNS rules, a minute for 10,000), and the same rules
//! give the same databases: each database is stored under a digest of its patterns, with the
//! patterns themselves, and read back instead of compiled when the patterns are the same.
//! A file that does not read back (another Hyperscan version or CPU, a torn write) is
//! compiled again and replaced. The folder keeps the most recently used [`KEEP`] databases.
//!
//! The folder is set once per process ([`set_dir`]; none: nothing is stored).

use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use hyperscan::{BlockDatabase, Serialized};

/// Databases kept in the folder.
pub const KEEP: usize = 64;

const MAGIC: &[u8; 8] = b"CANHHS1\0";

static DIR: RwLock<Option<PathBuf>> = RwLock::new(None);

/// Where compiled databases are kept (`None`: not kept).
pub fn set_dir(dir: Option<PathBuf>) {
    if let Ok(mut d) = DIR.write() {
        *d = dir;
    }
}

fn dir() -> Option<PathBuf> {
    DIR.read().ok().and_then(|d| d.clone())
}

/// The database for `key` (every pattern with its id and flags, as text): read from the
/// folder, or built and stored there.
pub(crate) fn load_or_build<E>(
    key: &str,
    build: impl FnOnce() -> Result<BlockDatabase, E>,
) -> Result<BlockDatabase, E> {
    load_or_build_in(dir().as_deref(), key, build)
}

fn load_or_build_in<E>(
    dir: Option<&Path>,
    key: &str,
    build: impl FnOnce() -> Result<BlockDatabase, E>,
) -> Result<BlockDatabase, E> {
    let Some(dir) = dir else {
        return build();
    };
    let path = dir.join(file_name(key));
    if let Some(db) = read(&path, key) {
        // Its time of use, for pruning.
        if let Ok(f) = std::fs::File::options().append(true).open(&path) {
            let _ = f.set_modified(std::time::SystemTime::now());
        }
        return Ok(db);
    }
    let db = build()?;
    if let Err(e) = write(dir, &path, key, &db) {
        tracing::debug!(path = %path.display(), error = %e, "compiled patterns not kept");
    }
    Ok(db)
}

fn file_name(key: &str) -> String {
    // Two differently seeded SipHashes: a name, not a proof (the key is compared on reading).
    let digest = |seed: u64| {
        let mut h = std::hash::DefaultHasher::new();
        seed.hash(&mut h);
        key.hash(&mut h);
        h.finish()
    };
    format!("hs-{:016x}{:016x}.db", digest(1), digest(2))
}

fn read(path: &Path, key: &str) -> Option<BlockDatabase> {
    let data = std::fs::read(path).ok()?;
    let rest = data.strip_prefix(MAGIC)?;
    let (len, rest) = rest.split_first_chunk::<8>()?;
    let len = usize::try_from(u64::from_le_bytes(*len)).ok()?;
    let (stored, db) = (rest.get(..len)?, rest.get(len..)?);
    if stored != key.as_bytes() {
        return None;
    }
    db.deserialize().ok()
}

fn write(dir: &Path, path: &Path, key: &str, db: &BlockDatabase) -> std::io::Result<()> {
    let bytes = db
        .serialize()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        path.file_name().and_then(|n| n.to_str()).unwrap_or("db")
    ));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(MAGIC)?;
    f.write_all(&(key.len() as u64).to_le_bytes())?;
    f.write_all(key.as_bytes())?;
    f.write_all(&bytes)?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    prune(dir)
}

/// Removes all but the [`KEEP`] most recently used databases.
fn prune(dir: &Path) -> std::io::Result<()> {
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with("hs-") && n.ends_with(".db"))
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    if files.len() <= KEEP {
        return Ok(());
    }
    files.sort();
    for (_, p) in &files[..files.len() - KEEP] {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyperscan::prelude::*;

    fn db(expr: &str) -> Result<BlockDatabase, hyperscan::Error> {
        let p: Pattern = expr.parse()?;
        p.build()
    }

    fn hits(db: &BlockDatabase, text: &str) -> usize {
        let scratch = db.alloc_scratch().expect("scratch");
        let mut n = 0;
        db.scan(text, &scratch, |_, _, _, _| {
            n += 1;
            Matching::Continue
        })
        .expect("scan");
        n
    }

    /// A database is compiled once, read back the next time, and compiled again when the
    /// stored file is damaged or holds other patterns.
    #[test]
    fn databases_are_read_back_instead_of_compiled() {
        let dir = tempfile::tempdir().expect("tmp");
        let folder = std::cell::Cell::new(Some(dir.path()));
        let built = std::cell::Cell::new(0);
        let get = |key: &str, expr: &str| {
            load_or_build_in(folder.get(), key, || {
                built.set(built.get() + 1);
                db(expr)
            })
            .expect("db")
        };
        assert_eq!(hits(&get("k1", "/foo/"), "a foo b foo"), 2);
        assert_eq!(hits(&get("k1", "/foo/"), "a foo b foo"), 2);
        assert_eq!(built.get(), 1, "the second one was read back");
        let path = dir.path().join(file_name("k1"));
        let mut data = std::fs::read(&path).expect("stored");
        let end = data.len() - 1;
        data.truncate(end);
        std::fs::write(&path, &data).expect("damage");
        assert_eq!(hits(&get("k1", "/foo/"), "foo"), 1);
        assert_eq!(built.get(), 2, "a damaged file is compiled again");
        assert_eq!(hits(&get("k2", "/bar/"), "bar bar"), 2);
        assert_eq!(built.get(), 3);
        // Another key under the same name (as a digest collision would give) is not taken.
        std::fs::copy(&path, dir.path().join(file_name("k3"))).expect("copy");
        assert_eq!(hits(&get("k3", "/baz/"), "baz"), 1);
        assert_eq!(built.get(), 4);
        folder.set(None);
        assert_eq!(hits(&get("k1", "/foo/"), "foo"), 1);
        assert_eq!(built.get(), 5, "no folder: compiled every time");
    }
}
