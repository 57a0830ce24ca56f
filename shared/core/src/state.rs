//! Instance states, their order and the transitions the runtime allows.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The state of a task instance; the exact strings are part of the saltant API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Created,
    Published,
    Running,
    Successful,
    Failed,
    Terminated,
}

impl State {
    pub const ALL: [State; 6] = [
        State::Created,
        State::Published,
        State::Running,
        State::Successful,
        State::Failed,
        State::Terminated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Published => "published",
            State::Running => "running",
            State::Successful => "successful",
            State::Failed => "failed",
            State::Terminated => "terminated",
        }
    }

    /// Finished for clients: `successful`, `failed` or `terminated`.
    pub fn is_final(self) -> bool {
        self.rank() == 3
    }

    /// Position in the life cycle. Within one attempt, states only move forward in rank;
    /// the SQL function `saltant_state_rank` in the store's migrations mirrors this.
    pub fn rank(self) -> u8 {
        match self {
            State::Created => 0,
            State::Published => 1,
            State::Running => 2,
            State::Successful | State::Failed | State::Terminated => 3,
        }
    }

    /// Whether an event of the same attempt may move an instance from `self` to `to`.
    /// Forward only: a late `published` cannot undo `running`, and a final state is final.
    pub fn can_become(self, to: State) -> bool {
        to.rank() > self.rank()
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not a valid state")]
pub struct UnknownState(pub String);

impl FromStr for State {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        State::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::State::{self, *};

    #[test]
    fn transitions_move_forward_only() {
        // (from, to, allowed)
        let table = [
            (Created, Published, true),
            (Created, Running, true),
            (Created, Terminated, true),
            (Created, Failed, true),
            (Published, Running, true),
            (Published, Terminated, true),
            (Running, Successful, true),
            (Running, Failed, true),
            (Running, Terminated, true),
            (Running, Published, false),
            (Running, Running, false),
            (Published, Created, false),
            (Successful, Failed, false),
            (Failed, Successful, false),
            (Terminated, Running, false),
            (Successful, Terminated, false),
        ];
        for (from, to, allowed) in table {
            assert_eq!(from.can_become(to), allowed, "{from} -> {to}");
        }
    }

    #[test]
    fn strings_round_trip() {
        for s in State::ALL {
            assert_eq!(s.as_str().parse::<State>(), Ok(s));
            assert_eq!(
                serde_json::to_string(&s).expect("serialize"),
                format!("\"{s}\"")
            );
        }
        assert!("bogus".parse::<State>().is_err());
        assert!("Running".parse::<State>().is_err());
    }

    #[test]
    fn final_states() {
        let finals: Vec<_> = State::ALL.into_iter().filter(|s| s.is_final()).collect();
        assert_eq!(finals, vec![Successful, Failed, Terminated]);
    }
}
