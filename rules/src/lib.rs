//! Detection with Sigma rules.
//!
//! Rules are read with the `rsigma-parser` crate (YAML to a typed syntax tree, conditions
//! included); everything after that is Canh's. This crate is being built in steps (the
//! detection issue); what it does today:
//!
//! * [`load`]: every `*.yml`/`*.yaml` file under the given paths, each document a detection
//!   rule, correlation rule or filter, or a [`Rejection`] with file, line and reason;
//! * [`check`]: what the parser accepts but a matcher could not run — a condition naming a
//!   detection that does not exist (or a `1 of x*` that matches none), a regular expression
//!   that does not compile, a CIDR that is not one, a comparison with a value that is not a
//!   number, `exists` with a value that is not true or false; and everything [`plain`] cannot
//!   build (placeholders, for now);
//! * [`plain`]: the plain matcher, a detection rule evaluated on one JSON event at a time as
//!   the specification says — the reference for the compiled matcher (`canh hunt` uses it);
//! * [`tests`]: rule tests (`x.tests.jsonl` beside `x.yml`: events to match and not to).
//!
//! Compilation into Hyperscan databases per field, field mapping, log-source selection,
//! correlation, IOC lists and alerts come next.

pub mod alerts;
pub mod batch;
mod check;
pub mod compiled;
pub mod correlation;
pub mod events;
pub mod iocs;
mod load;
pub mod mapping;
pub mod plain;
mod set;
pub mod tests;

pub use check::{check, Checked};
pub use iocs::Iocs;
pub use load::{load, Loaded, Rejection, Rule, RuleKind};
pub use mapping::{Mapping, Target};
pub use set::{RuleSet, SetScratch};
