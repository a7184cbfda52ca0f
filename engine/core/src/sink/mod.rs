//! Sinks: where finished batches go.

pub mod parquet;
