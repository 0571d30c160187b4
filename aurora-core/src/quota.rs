//! Quota: production work of a role must fit the role's quota; non-production work needs none.
//! Pure arithmetic over [`ResourceAggregate`]s, after the original's `QuotaManager`.

use serde::{Deserialize, Serialize};

use crate::{Resources, TaskConfig};

/// An amount of cpu, ram and disk: a quota, a consumption or a request.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceAggregate {
    /// CPU cores.
    pub cpu: f64,
    /// Memory in bytes.
    pub ram_bytes: u64,
    /// Disk in bytes.
    pub disk_bytes: u64,
}

impl ResourceAggregate {
    /// The resources of one task.
    pub fn of(res: &Resources) -> ResourceAggregate {
        ResourceAggregate {
            cpu: res.cpu,
            ram_bytes: res.ram_bytes,
            disk_bytes: res.disk_bytes,
        }
    }

    /// `self + other`.
    #[must_use]
    pub fn plus(self, other: ResourceAggregate) -> ResourceAggregate {
        ResourceAggregate {
            cpu: self.cpu + other.cpu,
            ram_bytes: self.ram_bytes.saturating_add(other.ram_bytes),
            disk_bytes: self.disk_bytes.saturating_add(other.disk_bytes),
        }
    }

    /// `self` taken `n` times.
    #[must_use]
    pub fn times(self, n: u32) -> ResourceAggregate {
        ResourceAggregate {
            cpu: self.cpu * f64::from(n),
            ram_bytes: self.ram_bytes.saturating_mul(u64::from(n)),
            disk_bytes: self.disk_bytes.saturating_mul(u64::from(n)),
        }
    }
}

/// A production request that does not fit the role's quota.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "insufficient quota for role {role}: {}; quota is {}, production tasks already use {}, the request needs {}; ask an admin to raise it (POST /api/admin/quota/{role}) or make the job non-production",
    .short.join(", "), show(.quota), show(.consumption), show(.request)
)]
pub struct QuotaError {
    /// The role.
    pub role: String,
    /// Which resources fall short, e.g. `cpu short by 2`.
    pub short: Vec<String>,
    /// The role's quota.
    pub quota: ResourceAggregate,
    /// What its production tasks use now.
    pub consumption: ResourceAggregate,
    /// What the request adds.
    pub request: ResourceAggregate,
}

fn show(r: &ResourceAggregate) -> String {
    format!(
        "{} cpu, {} MiB ram, {} MiB disk",
        (r.cpu * 1000.0).round() / 1000.0,
        r.ram_bytes / MIB,
        r.disk_bytes / MIB
    )
}

const MIB: u64 = 1024 * 1024;

/// Checks that `request` more production resources fit the role's `quota` given its current
/// `consumption`. Non-production tasks should not be checked at all.
///
/// ```
/// use aurora_core::{check_quota, ResourceAggregate};
/// let quota = ResourceAggregate { cpu: 4.0, ram_bytes: 1 << 30, disk_bytes: 1 << 30 };
/// let task = ResourceAggregate { cpu: 1.0, ram_bytes: 1 << 20, disk_bytes: 1 << 20 };
/// assert!(check_quota("www", &quota, &ResourceAggregate::default(), &task.times(4)).is_ok());
/// assert!(check_quota("www", &quota, &task, &task.times(4)).is_err());
/// ```
pub fn check_quota(
    role: &str,
    quota: &ResourceAggregate,
    consumption: &ResourceAggregate,
    request: &ResourceAggregate,
) -> Result<(), QuotaError> {
    let total = consumption.plus(*request);
    let mut short = Vec::new();
    if total.cpu > quota.cpu + 1e-9 {
        short.push(format!(
            "cpu short by {}",
            ((total.cpu - quota.cpu) * 1000.0).round() / 1000.0
        ));
    }
    if total.ram_bytes > quota.ram_bytes {
        short.push(format!(
            "ram short by {} MiB",
            (total.ram_bytes - quota.ram_bytes).div_ceil(MIB)
        ));
    }
    if total.disk_bytes > quota.disk_bytes {
        short.push(format!(
            "disk short by {} MiB",
            (total.disk_bytes - quota.disk_bytes).div_ceil(MIB)
        ));
    }
    if short.is_empty() {
        Ok(())
    } else {
        Err(QuotaError {
            role: role.to_owned(),
            short,
            quota: *quota,
            consumption: *consumption,
            request: *request,
        })
    }
}

/// Whether tasks of this configuration consume quota.
pub fn consumes_quota(task: &TaskConfig) -> bool {
    task.production
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortfalls_are_named() {
        let quota = ResourceAggregate {
            cpu: 2.0,
            ram_bytes: 100 * MIB,
            disk_bytes: 100 * MIB,
        };
        let used = ResourceAggregate {
            cpu: 1.5,
            ram_bytes: 50 * MIB,
            disk_bytes: 10 * MIB,
        };
        let req = ResourceAggregate {
            cpu: 1.0,
            ram_bytes: 60 * MIB,
            disk_bytes: 10 * MIB,
        };
        let e = check_quota("www", &quota, &used, &req)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("insufficient quota for role www: cpu short by 0.5, ram short by 10 MiB; quota is 2 cpu, 100 MiB ram, 100 MiB disk"),
            "{e}"
        );
        assert!(check_quota("www", &quota, &used, &ResourceAggregate::default()).is_ok());
    }
}
