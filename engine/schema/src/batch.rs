//! The unit that flows from parsers to sinks.

use arrow::record_batch::RecordBatch;

use crate::fields::Table;

/// A finished batch of rows of one table.
#[derive(Debug, Clone)]
pub struct Batch {
    pub table: Table,
    pub records: RecordBatch,
    /// Receive time of the oldest row (UTC ns); sinks partition by it.
    pub received_min_ns: i64,
    /// Receive time of the newest row (UTC ns).
    pub received_max_ns: i64,
}

impl Batch {
    pub fn rows(&self) -> usize {
        self.records.num_rows()
    }
}
