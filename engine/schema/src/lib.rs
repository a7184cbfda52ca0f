//! The normalised model of Canh and the types at the seams between stages.
//!
//! This is the lowest crate: collectors, parsers, rules and the engine all depend on it and on
//! nothing of each other. It holds:
//!
//! * [`fields`] — the one definition of the `events`, `flows` and `alerts` tables: every column
//!   with its ECS name, type and meaning. The Arrow schemas are derived from it here; the
//!   ClickHouse DDL and the rule field registry are derived from the same tables elsewhere, so a
//!   column is added in exactly one place.
//! * [`raw`] — [`raw::RawChunk`]: framed bytes as a collector hands them on (listener, peer,
//!   receive time), before anything looks at their content.
//! * [`builder`] — [`builder::TableBuilder`]: Arrow builders for a table that a parser fills row
//!   by row, finished into a `RecordBatch` capped by rows and bytes.
//! * [`batch`] — [`batch::Batch`]: a finished `RecordBatch` with the table it belongs to; the unit
//!   that flows from parsers to sinks.
//!
//! Design decisions:
//! * Stored column names are the ECS names with `_` for `.` (`source.ip` → `source_ip`), because
//!   dots in column names need quoting in every SQL dialect Canh talks to. `@timestamp` is stored
//!   as `timestamp`.
//! * IP addresses are stored as text (`10.1.2.3`, `2001:db8::1`): every reader (DataFusion,
//!   DuckDB, pyarrow, ClickHouse 18.16 which has no IP types) can filter and group on them without
//!   conversion functions.
//! * Times are UTC nanoseconds (`Timestamp(Nanosecond, "UTC")`).
//! * Vendor fields without an ECS home go into one `Map<Utf8, Utf8>` column, `vendor_fields`.

pub mod batch;
pub mod builder;
pub mod fields;
pub mod raw;

pub use batch::Batch;
pub use builder::TableBuilder;
pub use fields::{FieldDef, FieldType, Table};
pub use raw::{Frame, RawChunk, Transport};
