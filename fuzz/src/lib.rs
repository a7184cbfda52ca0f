//! Shared body of the fuzz targets: one line through one format, into a row, and the batch
//! must build.

use canh_parsers::{append_event, Format, Meta};
use canh_schema::{Table, TableBuilder};

pub fn run(format_name: &str, data: &[u8]) {
    let Some(format) = Format::from_name(format_name) else {
        return;
    };
    let meta = Meta {
        received_ns: 1_795_435_200_000_000_000,
        listener: "fuzz",
        input_type: "udp",
        peer_ip: "192.0.2.1",
        peer_addr: "192.0.2.1:514",
        tz_offset_secs: 7 * 3600,
        organization: None,
        device: None,
    };
    let mut b = TableBuilder::new(Table::Events, 2);
    append_event(&mut b, data, format, &meta);
    // Every line is a row, and every row is a valid batch.
    match b.finish() {
        Ok(Some(batch)) if batch.rows() == 1 => {}
        other => panic!("no single valid row: {other:?}"),
    }
}
