//! Sinks: where finished batches go.

pub mod clickhouse;
pub mod clickhouse_client;
pub mod parquet;
pub mod spool;
