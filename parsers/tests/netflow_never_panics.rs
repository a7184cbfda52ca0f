//! Whatever datagrams arrive, NetFlow/IPFIX decoding never panics, keeps its rows whole, and
//! keeps its template cache within its limits. Inputs: arbitrary bytes behind each version
//! number, and the real datagrams of the logstash-codec-netflow corpus (templates first) cut,
//! spliced and bit-flipped, which reach the template and data-set paths.

use canh_parsers::netflow::{FlowDecoder, Limits, Packet};
use canh_schema::{Table, TableBuilder};
use proptest::prelude::*;

fn corpus() -> &'static [Vec<u8>] {
    static SEEDS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/corpora/logstash-codec-netflow/spec/codecs");
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        // Template files sort before data files of the same exporter often enough.
        files.sort();
        files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
    })
}

const LIMITS: Limits = Limits {
    templates_per_domain: 8,
    domains: 4,
    fields_per_template: 64,
    template_ttl_ns: 3_600_000_000_000,
    pending_sets: 4,
    pending_bytes: 8192,
    pending_ttl_ns: 1_000_000,
    columnar: true,
};

/// Decodes the packets in order with one decoder; checks the limits and that the columnar
/// and record-by-record paths write the same rows. Returns the flows.
fn decode_all(packets: &[Vec<u8>]) -> usize {
    let (flows, columnar) = decode_with(packets, LIMITS);
    let (_, by_record) = decode_with(
        packets,
        Limits {
            columnar: false,
            ..LIMITS
        },
    );
    assert_eq!(
        columnar.as_ref().map(|b| &b.records),
        by_record.as_ref().map(|b| &b.records),
        "the columnar and record paths differ"
    );
    flows
}

fn decode_with(packets: &[Vec<u8>], limits: Limits) -> (usize, Option<canh_schema::Batch>) {
    let mut d = FlowDecoder::new(limits);
    let mut b = TableBuilder::new(Table::Flows, 64);
    let mut flows = 0;
    for (i, payload) in packets.iter().enumerate() {
        let p = Packet {
            exporter: std::net::SocketAddr::from(([127, 0, 0, (i % 6) as u8 + 1], 2055)),
            received_ns: 1_795_435_200_000_000_000 + i as i64,
            payload,
            organization: Some("test"),
        };
        flows += d.decode(&p, &mut b).flows;
        assert!(d.templates() <= limits.templates_per_domain * limits.domains);
        assert!(d.pending() <= limits.pending_sets * limits.domains);
    }
    let batch = b.finish();
    assert!(batch.is_ok(), "{batch:?}");
    let batch = batch.ok().flatten();
    assert_eq!(batch.as_ref().map_or(0, |b| b.rows()), flows);
    (flows, batch)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_datagrams(version in prop::sample::select(vec![5u16, 9, 10]), body in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut p = version.to_be_bytes().to_vec();
        p.extend(body);
        decode_all(&[p]);
    }

    #[test]
    fn corpus_datagrams_mutated(
        picks in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), any::<u8>(), 0usize..4), 1..12),
    ) {
        let seeds = corpus();
        if seeds.is_empty() {
            return Ok(());
        }
        let packets: Vec<Vec<u8>> = picks
            .iter()
            .map(|(which, at, byte, how)| {
                let mut p = seeds[which.index(seeds.len())].clone();
                let i = at.index(p.len().max(1));
                match how {
                    0 => {}
                    1 => p.truncate(i),
                    2 => {
                        if let Some(x) = p.get_mut(i) {
                            *x ^= *byte;
                        }
                    }
                    _ => {
                        let other = &seeds[(which.index(seeds.len()) + 1) % seeds.len()];
                        let j = at.index(other.len().max(1));
                        p.truncate(i);
                        p.extend_from_slice(other.get(j..).unwrap_or_default());
                    }
                }
                p
            })
            .collect();
        decode_all(&packets);
    }
}

#[test]
fn the_whole_corpus_in_one_decoder() {
    let flows = decode_all(corpus());
    assert!(corpus().is_empty() || flows > 100, "{flows} flows");
}

/// The whole corpus in order, unmutated: both paths write the same rows for every real
/// exporter's templates (and the corpus has templates of both kinds).
#[test]
fn corpus_rows_are_the_same_on_both_paths() {
    if corpus().is_empty() {
        eprintln!("skipping: logstash-codec-netflow corpus not found");
        return;
    }
    let limits = Limits {
        templates_per_domain: 1024,
        domains: 64,
        ..LIMITS
    };
    let (flows, columnar) = decode_with(corpus(), limits);
    let (_, by_record) = decode_with(
        corpus(),
        Limits {
            columnar: false,
            ..limits
        },
    );
    assert!(flows > 100, "{flows}");
    assert_eq!(
        columnar.as_ref().map(|b| &b.records),
        by_record.as_ref().map(|b| &b.records)
    );
}

/// Found by the ipfix fuzz target: a template with two protocol fields, the first without a
/// transport name (128), the second with one (1, ICMP). The record path keeps the second's
/// name; the columnar path must not claim the column with a null first.
#[test]
fn two_protocol_fields_decode_the_same_on_both_paths() {
    let set = |id: u16, body: &[u8]| {
        let mut s = id.to_be_bytes().to_vec();
        s.extend(((4 + body.len()) as u16).to_be_bytes());
        s.extend(body);
        s
    };
    let template = set(2, &[1, 0, 0, 3, 0, 4, 0, 1, 0, 4, 0, 1, 0, 8, 0, 4]);
    let data = set(256, &[128, 1, 10, 0, 0, 1]);
    let body = [template, data].concat();
    let mut m = vec![0, 10];
    m.extend(((16 + body.len()) as u16).to_be_bytes());
    m.extend([0x6a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7]);
    m.extend(body);
    assert_eq!(decode_all(&[m]), 1);
}
