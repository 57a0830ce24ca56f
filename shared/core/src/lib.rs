//! saltant's domain: instance states and their transitions, validated names, argument
//! rules and command building. Plain data and pure functions; no I/O.

pub mod arguments;
pub mod command;
pub mod names;
pub mod pyrepr;
pub mod spec;
pub mod state;

pub use arguments::{ArgumentError, fill_defaults};
pub use names::{NameError, QueueName};
pub use spec::{Policy, TaskKind, TaskSpec};
pub use state::State;
