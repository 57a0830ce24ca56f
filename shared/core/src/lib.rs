//! saltant's domain: instance states and their transitions, validated names, argument
//! rules and command building. Plain data and pure functions; no I/O. With the `sqlx`
//! feature, states and queue names are also PostgreSQL text columns ([`sql`]).

pub mod arguments;
pub mod command;
pub mod names;
pub mod pyrepr;
pub mod spec;
#[cfg(feature = "sqlx")]
pub mod sql;
pub mod state;

pub use arguments::{ArgumentError, fill_defaults};
pub use names::{NameError, QueueName};
pub use spec::{Policy, TaskKind, TaskSpec};
pub use state::State;
