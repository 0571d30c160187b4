//! HTTP health checks and the graceful-shutdown endpoints of a task with a port named `health`.

use std::io::Read;
use std::sync::OnceLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The job's `health_check_config`, after the spec's HealthCheckConfig schema (seconds may be
/// fractional).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthCheckConfig {
    /// Seconds after the task starts before the first check.
    #[serde(default = "fifteen")]
    pub initial_interval_secs: f64,
    /// Seconds between checks.
    #[serde(default = "ten")]
    pub interval_secs: f64,
    /// Seconds a check may take.
    #[serde(default = "one")]
    pub timeout_secs: f64,
    /// Failures in a row tolerated; one more fails the task.
    #[serde(default)]
    pub max_consecutive_failures: u32,
}

impl Default for HealthCheckConfig {
    fn default() -> HealthCheckConfig {
        HealthCheckConfig {
            initial_interval_secs: fifteen(),
            interval_secs: ten(),
            timeout_secs: one(),
            max_consecutive_failures: 0,
        }
    }
}

fn fifteen() -> f64 {
    15.0
}
fn ten() -> f64 {
    10.0
}
fn one() -> f64 {
    1.0
}

/// Turns seconds from a config into a duration, treating nonsense (negative, NaN) as zero.
pub(crate) fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO)
}

/// The most body bytes read from an answer of a task's health port.
const MAX_BODY: u64 = 64 * 1024;

/// The outcome of one request to a task's health port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpAnswer {
    pub(crate) status: u16,
    pub(crate) body: String,
}

/// The HTTP client of every health checker and graceful kill in the process: one client, so
/// one connection pool and one I/O thread however many tasks run.
fn client() -> Result<&'static reqwest::blocking::Client, String> {
    static CLIENT: OnceLock<Result<reqwest::blocking::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::blocking::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                // A task's server may restart between checks; keep no idle connection to it.
                .pool_max_idle_per_host(0)
                .build()
                .map_err(|e| format!("cannot set up the HTTP client: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Sends one request to `127.0.0.1:port` and reads the answer (its first 64 KiB) within
/// `timeout`, connection included.
pub(crate) fn http_request(
    method: reqwest::Method,
    port: u16,
    path: &str,
    timeout: Duration,
) -> Result<HttpAnswer, String> {
    let timeout = timeout.max(Duration::from_millis(1));
    let url = format!("http://127.0.0.1:{port}{path}");
    let what = format!("{method} {url}");
    let answer = client()?
        .request(method, &url)
        .timeout(timeout)
        .send()
        .map_err(|e| format!("{what}: {e}"))?;
    let status = answer.status().as_u16();
    let mut body = Vec::new();
    answer
        .take(MAX_BODY)
        .read_to_end(&mut body)
        .map_err(|e| format!("{what}: cannot read the answer: {e}"))?;
    Ok(HttpAnswer {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// One health check: `GET /health` must answer 200 with a body of `ok` (any case, trimmed).
pub(crate) fn check_once(port: u16, timeout: Duration) -> Result<(), String> {
    let a = http_request(reqwest::Method::GET, port, "/health", timeout)?;
    if a.status != 200 {
        return Err(format!("GET /health answered HTTP {}", a.status));
    }
    if !a.body.trim().eq_ignore_ascii_case("ok") {
        let shown: String = a.body.trim().chars().take(60).collect();
        return Err(format!("GET /health answered {shown:?} instead of \"ok\""));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_parsing() {
        let c: HealthCheckConfig = serde_json::from_str(r#"{"interval_secs": 0.5}"#).unwrap();
        assert_eq!(c.interval_secs, 0.5);
        assert_eq!(c.initial_interval_secs, 15.0);
        assert_eq!(secs(-1.0), Duration::ZERO);
    }

    #[test]
    fn a_closed_port_is_unhealthy() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        assert!(check_once(port, Duration::from_millis(200)).is_err());
    }
}
