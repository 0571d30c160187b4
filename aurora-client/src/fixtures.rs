//! Test fixtures shared by this crate's unit tests.

use aurora_core::{ExecutorConfig, Identity, JobKey, Resources, TaskConfig};

/// A small service task of `job`, owned by its role and run by `vagrant`, asking for one
/// `http` port; tests change the fields they are about.
pub(crate) fn task_config(job: JobKey) -> TaskConfig {
    TaskConfig {
        owner: Identity {
            role: job.role().to_owned(),
            user: "vagrant".into(),
        },
        job,
        is_service: true,
        max_task_failures: 1,
        priority: 0,
        production: false,
        contact_email: None,
        resources: Resources {
            cpu: 0.5,
            ram_bytes: 64 << 20,
            disk_bytes: 32 << 20,
            ports: ["http".to_owned()].into(),
        },
        constraints: vec![],
        task_links: Default::default(),
        executor_config: ExecutorConfig {
            name: "AuroraExecutor".into(),
            data: "{}".into(),
        },
    }
}
