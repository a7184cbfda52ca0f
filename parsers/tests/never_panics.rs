//! Whatever bytes arrive, parsing never panics and always yields exactly one row, for every
//! format. Inputs: arbitrary bytes, and real lines of every vendor cut and spliced at random
//! places (which reach far deeper into the decoders than random bytes do).

use canh_parsers::{append_event, Format, Meta};
use canh_schema::{Table, TableBuilder};
use proptest::prelude::*;

/// Every fixture line of the project, as seeds for mutation (read once).
fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(read_seeds)
}

fn read_seeds() -> Vec<Vec<u8>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/parsers");
    let mut out = Vec::new();
    for dir in std::fs::read_dir(root).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if f.path().extension().is_some_and(|e| e == "log") {
                let text = std::fs::read(f.path()).unwrap_or_default();
                out.extend(
                    text.split(|&b| b == b'\n')
                        .filter(|l| !l.is_empty())
                        .map(<[u8]>::to_vec),
                );
            }
        }
    }
    out
}

fn parse_all_formats(line: &[u8]) {
    let meta = Meta {
        received_ns: 1_795_435_200_000_000_000,
        listener: "prop",
        input_type: "udp",
        peer_ip: "192.0.2.1",
        peer_addr: "192.0.2.1:514",
        tz_offset_secs: 7 * 3600,
        organization: None,
        device: None,
    };
    let names = Format::names();
    let mut b = TableBuilder::new(Table::Events, names.len());
    for name in &names {
        let format = Format::from_name(name).unwrap_or_default();
        append_event(&mut b, line, format, &meta);
    }
    let batch = b.finish();
    assert!(matches!(batch, Ok(Some(ref batch)) if batch.rows() == names.len()));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes(line in proptest::collection::vec(any::<u8>(), 0..600)) {
        parse_all_formats(&line);
    }

    #[test]
    fn real_lines_cut_and_spliced(
        a in any::<prop::sample::Index>(),
        b in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
        splice in any::<prop::sample::Index>(),
        noise in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let seeds = seeds();
        prop_assume!(!seeds.is_empty());
        let x = &seeds[a.index(seeds.len())];
        let y = &seeds[b.index(seeds.len())];
        // The head of one line, some noise, the tail of another.
        let head = &x[..cut.index(x.len() + 1)];
        let tail = &y[splice.index(y.len() + 1)..];
        let mut line = head.to_vec();
        line.extend_from_slice(&noise);
        line.extend_from_slice(tail);
        parse_all_formats(&line);
        parse_all_formats(head);
    }
}
