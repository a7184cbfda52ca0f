//! Sinks: where finished batches go.

pub mod clickhouse;
pub mod parquet;
pub mod spool;
