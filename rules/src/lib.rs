//! Detection with Sigma rules.
//!
//! Rules are read with the `rsigma-parser` crate (YAML to a typed syntax tree, conditions
//! included); everything after that is Canh's:
//!
//! * [`load`]: every `*.yml`/`*.yaml` file under the given paths, each document a detection
//!   rule, correlation rule or filter, or a [`Rejection`] with file, line and reason;
//! * [`check`]: what the parser accepts but a matcher could not run — a condition naming a
//!   detection that does not exist (or a `1 of x*` that matches none), a regular expression
//!   that does not compile, a CIDR that is not one, a comparison with a value that is not a
//!   number, `exists` with a value that is not true or false, a placeholder without an IOC
//!   list ([`iocs`]);
//! * [`plain`]: the plain matcher, a detection rule evaluated on one event at a time as the
//!   specification says — the reference for the compiled matcher;
//! * [`compiled`]: many rules over a batch at once (Hyperscan per field, indexes for numbers
//!   and CIDRs, rules evaluated only where their atoms hit), over [`events::Events`]: Arrow
//!   batches ([`batch`]) or JSON lines ([`lines`]);
//! * [`mapping`]: field names and log-source selections (`rules/mapping.toml`);
//! * [`RuleSet`]: rules checked, filtered (Sigma filters), mapped and compiled per table;
//! * [`correlation`]: Sigma correlation rules over matches, on event time;
//! * [`alerts`]: matches and correlations as deduplicated alerts with stable ids;
//! * [`tests`]: rule tests (`x.tests.jsonl` beside `x.yml`: events to match and not to).

pub mod alerts;
pub mod batch;
mod check;
pub mod compiled;
pub mod correlation;
pub mod events;
#[cfg(feature = "hyperscan")]
pub mod hscache;
pub mod iocs;
pub mod lines;
mod load;
pub mod mapping;
pub mod plain;
mod set;
pub mod sql;
pub mod tests;

pub use check::{check, Checked};
pub use iocs::Iocs;
pub use load::{load, Loaded, Rejection, Rule, RuleKind};
pub use mapping::{Mapping, Target};
pub use set::{RuleSet, SetScratch};
