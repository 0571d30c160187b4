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

/// The longest duration a config's seconds turn into: longer is as good as never for a
/// check, and beyond it `Duration` would overflow.
const MAX_SECS: f64 = 24.0 * 3600.0;

/// Turns seconds from a config into a duration, treating nonsense (negative, NaN) as zero and
/// capping huge values at a day, so that neither becomes a check in a tight loop.
pub(crate) fn secs(s: f64) -> Duration {
    if s.is_nan() {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(s.min(MAX_SECS)).unwrap_or(Duration::ZERO)
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
        assert_eq!(secs(f64::NAN), Duration::ZERO);
        assert_eq!(secs(1e300), Duration::from_secs(24 * 3600));
        assert_eq!(secs(f64::INFINITY), Duration::from_secs(24 * 3600));
    }

    /// Serves one connection on 127.0.0.1 with `answer` (after reading the request head);
    /// returns the port.
    fn serve_once(answer: Vec<u8>) -> u16 {
        use std::io::{BufRead, BufReader, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (conn, _) = l.accept().unwrap();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let _ = (&conn).write_all(&answer);
        });
        port
    }

    fn http_ok(body: &[u8]) -> Vec<u8> {
        let mut a =
            format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len()).into_bytes();
        a.extend_from_slice(body);
        a
    }

    #[test]
    fn ok_is_healthy_and_anything_else_is_not() {
        let second = Duration::from_secs(5);
        assert_eq!(check_once(serve_once(http_ok(b"OK\n")), second), Ok(()));
        let e = check_once(serve_once(http_ok(b"sick")), second).unwrap_err();
        assert_eq!(e, "GET /health answered \"sick\" instead of \"ok\"");
        let e = check_once(
            serve_once(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n".to_vec()),
            second,
        )
        .unwrap_err();
        assert_eq!(e, "GET /health answered HTTP 503");
    }

    /// A server that never answers costs a check its timeout, not more.
    #[test]
    fn a_silent_server_is_unhealthy_within_the_timeout() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let started = std::time::Instant::now();
        let e = check_once(port, Duration::from_millis(300)).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(e.starts_with("GET http://127.0.0.1:"), "{e}");
        drop(l);
    }

    /// Only the first 64 KiB of an answer are read, however much the server sends.
    #[test]
    fn answers_are_read_up_to_a_limit() {
        let body = vec![b'x'; 4 << 20];
        let port = serve_once(http_ok(&body));
        let a = http_request(reqwest::Method::GET, port, "/", Duration::from_secs(10)).unwrap();
        assert_eq!((a.status, a.body.len() as u64), (200, MAX_BODY));
    }

    #[test]
    fn a_closed_port_is_unhealthy() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        assert!(check_once(port, Duration::from_millis(200)).is_err());
    }
}
