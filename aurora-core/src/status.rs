//! Task states and the sets the scheduler reasons with.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The scheduler-side state of a task, with every state of the original Aurora.
///
/// See ARCHITECTURE.md for the state diagram; [`crate::transition`] is the only place that
/// decides how a task moves between these.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ScheduleStatus {
    /// Created, not yet stored as pending.
    Init,
    /// Waiting out a penalty because its ancestors flapped.
    Throttled,
    /// Waiting for a machine.
    Pending,
    /// Placed on a machine; the executor has not yet reported.
    Assigned,
    /// The executor is preparing the sandbox.
    Starting,
    /// Processes are running.
    Running,
    /// Ended successfully.
    Finished,
    /// Being killed to make room for another task.
    Preempting,
    /// Being killed to be restarted.
    Restarting,
    /// Being killed because its host is drained.
    Draining,
    /// Ended with a failure.
    Failed,
    /// Ended by a kill.
    Killed,
    /// Being killed at a user's request.
    Killing,
    /// Lost track of (its machine or executor went away).
    Lost,
}

impl ScheduleStatus {
    /// Every state, in a fixed order.
    pub const ALL: [ScheduleStatus; 14] = [
        ScheduleStatus::Init,
        ScheduleStatus::Throttled,
        ScheduleStatus::Pending,
        ScheduleStatus::Assigned,
        ScheduleStatus::Starting,
        ScheduleStatus::Running,
        ScheduleStatus::Finished,
        ScheduleStatus::Preempting,
        ScheduleStatus::Restarting,
        ScheduleStatus::Draining,
        ScheduleStatus::Failed,
        ScheduleStatus::Killed,
        ScheduleStatus::Killing,
        ScheduleStatus::Lost,
    ];

    /// The name the original uses, e.g. `RUNNING`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleStatus::Init => "INIT",
            ScheduleStatus::Throttled => "THROTTLED",
            ScheduleStatus::Pending => "PENDING",
            ScheduleStatus::Assigned => "ASSIGNED",
            ScheduleStatus::Starting => "STARTING",
            ScheduleStatus::Running => "RUNNING",
            ScheduleStatus::Finished => "FINISHED",
            ScheduleStatus::Preempting => "PREEMPTING",
            ScheduleStatus::Restarting => "RESTARTING",
            ScheduleStatus::Draining => "DRAINING",
            ScheduleStatus::Failed => "FAILED",
            ScheduleStatus::Killed => "KILLED",
            ScheduleStatus::Killing => "KILLING",
            ScheduleStatus::Lost => "LOST",
        }
    }

    /// ACTIVE: the task is wanted, whether or not it has a machine.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            ScheduleStatus::Assigned
                | ScheduleStatus::Draining
                | ScheduleStatus::Killing
                | ScheduleStatus::Pending
                | ScheduleStatus::Preempting
                | ScheduleStatus::Restarting
                | ScheduleStatus::Running
                | ScheduleStatus::Starting
                | ScheduleStatus::Throttled
        )
    }

    /// SLAVE_ASSIGNED: active and holding a machine's resources.
    pub fn is_slave_assigned(self) -> bool {
        self.is_active() && !matches!(self, ScheduleStatus::Pending | ScheduleStatus::Throttled)
    }

    /// LIVE: processes may be running on a machine.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            ScheduleStatus::Killing
                | ScheduleStatus::Preempting
                | ScheduleStatus::Restarting
                | ScheduleStatus::Draining
                | ScheduleStatus::Running
        )
    }

    /// TERMINAL: the task has ended for good.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            ScheduleStatus::Failed
                | ScheduleStatus::Finished
                | ScheduleStatus::Killed
                | ScheduleStatus::Lost
        )
    }
}

impl fmt::Display for ScheduleStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status name that is not one of [`ScheduleStatus`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown task status {0:?}; expected one of PENDING, RUNNING, FINISHED, ... (see `aurora help status`)"
)]
pub struct UnknownStatus(pub String);

impl FromStr for ScheduleStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.to_ascii_uppercase();
        ScheduleStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == upper)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_match_the_original() {
        use ScheduleStatus::*;
        let active: Vec<_> = ScheduleStatus::ALL
            .into_iter()
            .filter(|s| s.is_active())
            .collect();
        assert_eq!(
            active,
            [
                Throttled, Pending, Assigned, Starting, Running, Preempting, Restarting, Draining,
                Killing
            ]
        );
        let assigned: Vec<_> = ScheduleStatus::ALL
            .into_iter()
            .filter(|s| s.is_slave_assigned())
            .collect();
        assert_eq!(
            assigned,
            [
                Assigned, Starting, Running, Preempting, Restarting, Draining, Killing
            ]
        );
        let terminal: Vec<_> = ScheduleStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(terminal, [Finished, Failed, Killed, Lost]);
        for s in ScheduleStatus::ALL {
            assert!(
                !(s.is_active() && s.is_terminal()),
                "{s} is both active and terminal"
            );
            assert!(
                !s.is_live() || s.is_slave_assigned(),
                "{s} is live but not assigned"
            );
        }
    }

    #[test]
    fn names_round_trip() {
        for s in ScheduleStatus::ALL {
            assert_eq!(s.as_str().parse::<ScheduleStatus>().unwrap(), s);
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert!("running".parse::<ScheduleStatus>().is_ok());
        assert!("SANDBOX".parse::<ScheduleStatus>().is_err());
    }
}
