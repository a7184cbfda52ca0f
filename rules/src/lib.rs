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
//!   number, `exists` with a value that is not true or false.
//!
//! Compilation into Hyperscan databases per field, the plain matcher, field mapping,
//! correlation and alerts come next.

mod check;
mod load;

pub use check::check;
pub use load::{load, Loaded, Rejection, Rule, RuleKind};
