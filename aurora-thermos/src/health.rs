//! HTTP health checks and the graceful-shutdown endpoints of a task with a port named `health`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
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

/// The outcome of one request to a task's health port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpAnswer {
    pub(crate) status: u16,
    pub(crate) body: String,
}

/// Sends one HTTP/1.0 request to `127.0.0.1:port` and reads the whole answer within `timeout`.
pub(crate) fn http_request(
    method: &str,
    port: u16,
    path: &str,
    timeout: Duration,
) -> Result<HttpAnswer, String> {
    let timeout = timeout.max(Duration::from_millis(1));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut conn = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let _ = conn.set_read_timeout(Some(timeout));
    let _ = conn.set_write_timeout(Some(timeout));
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: localhost:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(request.as_bytes())
        .map_err(|e| format!("{method} {path}: {e}"))?;
    let mut raw = Vec::new();
    conn.take(1 << 20)
        .read_to_end(&mut raw)
        .map_err(|e| format!("{method} {path}: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{method} {path}: not an HTTP answer"))?;
    Ok(HttpAnswer {
        status,
        body: body.to_owned(),
    })
}

/// One health check: `GET /health` must answer 200 with a body of `ok` (any case, trimmed).
pub(crate) fn check_once(port: u16, timeout: Duration) -> Result<(), String> {
    let a = http_request("GET", port, "/health", timeout)?;
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
