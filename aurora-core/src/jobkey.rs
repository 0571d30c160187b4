//! Job keys: `cluster/role/environment/name`, and the partial paths commands take.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Which part of a job key a problem is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKeyPart {
    /// The cluster name.
    Cluster,
    /// The role (the Unix account tasks run as).
    Role,
    /// The environment (`prod`, `devel`, `test` or `staging<N>`).
    Environment,
    /// The job name.
    Name,
}

impl fmt::Display for JobKeyPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JobKeyPart::Cluster => "cluster",
            JobKeyPart::Role => "role",
            JobKeyPart::Environment => "environment",
            JobKeyPart::Name => "name",
        })
    }
}

/// Why a job key or job path could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JobKeyError {
    /// The key does not have the expected number of `/`-separated parts.
    #[error(
        "job key {input:?} has {found} part(s); expected {expected} \
         (cluster/role/environment/name)"
    )]
    WrongPartCount {
        /// The text that was parsed.
        input: String,
        /// How many parts it had.
        found: usize,
        /// What was expected (e.g. `4` or `1 to 4`).
        expected: &'static str,
    },
    /// One part is empty.
    #[error("job key {input:?} has an empty {part}")]
    EmptyPart {
        /// The text that was parsed.
        input: String,
        /// The empty part.
        part: JobKeyPart,
    },
    /// One part has characters outside `[A-Za-z0-9_.-]`.
    #[error(
        "job key {input:?}: {part} {value:?} contains {bad:?}; only letters, digits, '_', '.' \
         and '-' are allowed"
    )]
    BadCharacter {
        /// The text that was parsed.
        input: String,
        /// The part with the bad character.
        part: JobKeyPart,
        /// The part's value.
        value: String,
        /// The first character that is not allowed.
        bad: char,
    },
    /// The environment is not one Aurora knows.
    #[error(
        "job key {input:?}: environment {value:?} is not valid; use prod, devel, test or \
         staging<N> (e.g. staging2)"
    )]
    BadEnvironment {
        /// The text that was parsed.
        input: String,
        /// The environment given.
        value: String,
    },
    /// A part is longer than 255 characters.
    #[error("job key {input:?}: {part} is {len} characters long; at most 255 are allowed")]
    TooLong {
        /// The text that was parsed.
        input: String,
        /// The part that is too long.
        part: JobKeyPart,
        /// Its length.
        len: usize,
    },
}

const MAX_PART_LEN: usize = 255;

fn check_identifier(input: &str, part: JobKeyPart, value: &str) -> Result<(), JobKeyError> {
    if value.is_empty() {
        return Err(JobKeyError::EmptyPart {
            input: input.to_owned(),
            part,
        });
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(JobKeyError::BadCharacter {
            input: input.to_owned(),
            part,
            value: value.to_owned(),
            bad,
        });
    }
    if value.len() > MAX_PART_LEN {
        return Err(JobKeyError::TooLong {
            input: input.to_owned(),
            part,
            len: value.len(),
        });
    }
    Ok(())
}

/// Whether `env` is an environment name Aurora accepts: `prod`, `devel`, `test` or `staging`
/// followed by digits (`staging` alone is accepted too, as in the original client).
pub fn is_valid_environment(env: &str) -> bool {
    matches!(env, "prod" | "devel" | "test")
        || env
            .strip_prefix("staging")
            .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
}

fn check_environment(input: &str, value: &str) -> Result<(), JobKeyError> {
    check_identifier(input, JobKeyPart::Environment, value)?;
    if !is_valid_environment(value) {
        return Err(JobKeyError::BadEnvironment {
            input: input.to_owned(),
            value: value.to_owned(),
        });
    }
    Ok(())
}

/// A fully qualified job key, `cluster/role/environment/name`; valid once constructed.
///
/// ```
/// use aurora_core::JobKey;
/// let key: JobKey = "cluster1/www-data/prod/hello".parse().unwrap();
/// assert_eq!(key.role(), "www-data");
/// assert_eq!(key.to_string(), "cluster1/www-data/prod/hello");
/// assert!("cluster1/tyg//x".parse::<JobKey>().is_err());
/// ```
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "JobKeyWire", into = "JobKeyWire")]
pub struct JobKey {
    cluster: String,
    role: String,
    environment: String,
    name: String,
}

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Serialize, Deserialize)]
struct JobKeyWire {
    cluster: String,
    role: String,
    environment: String,
    name: String,
}

impl TryFrom<JobKeyWire> for JobKey {
    type Error = JobKeyError;
    fn try_from(w: JobKeyWire) -> Result<Self, Self::Error> {
        JobKey::new(&w.cluster, &w.role, &w.environment, &w.name)
    }
}

impl From<JobKey> for JobKeyWire {
    fn from(k: JobKey) -> Self {
        JobKeyWire {
            cluster: k.cluster,
            role: k.role,
            environment: k.environment,
            name: k.name,
        }
    }
}

impl JobKey {
    /// Builds a key from its four parts, checking each.
    pub fn new(
        cluster: &str,
        role: &str,
        environment: &str,
        name: &str,
    ) -> Result<JobKey, JobKeyError> {
        let input = format!("{cluster}/{role}/{environment}/{name}");
        check_identifier(&input, JobKeyPart::Cluster, cluster)?;
        check_identifier(&input, JobKeyPart::Role, role)?;
        check_environment(&input, environment)?;
        check_identifier(&input, JobKeyPart::Name, name)?;
        Ok(JobKey {
            cluster: cluster.to_owned(),
            role: role.to_owned(),
            environment: environment.to_owned(),
            name: name.to_owned(),
        })
    }

    /// The cluster name.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }
    /// The role.
    pub fn role(&self) -> &str {
        &self.role
    }
    /// The environment.
    pub fn environment(&self) -> &str {
        &self.environment
    }
    /// The job name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The key without its cluster, `role/environment/name`, as the scheduler names jobs.
    pub fn path_in_cluster(&self) -> String {
        format!("{}/{}/{}", self.role, self.environment, self.name)
    }
}

impl fmt::Display for JobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.cluster, self.role, self.environment, self.name
        )
    }
}

impl FromStr for JobKey {
    type Err = JobKeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.len() != 4 {
            return Err(JobKeyError::WrongPartCount {
                input: s.to_owned(),
                found: parts.len(),
                expected: "4",
            });
        }
        let input = s;
        check_identifier(input, JobKeyPart::Cluster, parts[0])?;
        check_identifier(input, JobKeyPart::Role, parts[1])?;
        check_environment(input, parts[2])?;
        check_identifier(input, JobKeyPart::Name, parts[3])?;
        Ok(JobKey {
            cluster: parts[0].to_owned(),
            role: parts[1].to_owned(),
            environment: parts[2].to_owned(),
            name: parts[3].to_owned(),
        })
    }
}

/// A job key or a prefix of one: `cluster`, `cluster/role`, `cluster/role/env` or a full key,
/// as `list_jobs` and `open` take.
///
/// ```
/// use aurora_core::JobPath;
/// let p: JobPath = "local/www-data".parse().unwrap();
/// assert_eq!(p.cluster(), "local");
/// assert_eq!(p.role(), Some("www-data"));
/// assert_eq!(p.environment(), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobPath {
    parts: Vec<String>,
}

impl JobPath {
    /// The cluster.
    pub fn cluster(&self) -> &str {
        &self.parts[0]
    }
    /// The role, if given.
    pub fn role(&self) -> Option<&str> {
        self.parts.get(1).map(String::as_str)
    }
    /// The environment, if given.
    pub fn environment(&self) -> Option<&str> {
        self.parts.get(2).map(String::as_str)
    }
    /// The job name, if given.
    pub fn name(&self) -> Option<&str> {
        self.parts.get(3).map(String::as_str)
    }
    /// The full job key, when all four parts are given.
    pub fn job_key(&self) -> Option<JobKey> {
        (self.parts.len() == 4).then(|| JobKey {
            cluster: self.parts[0].clone(),
            role: self.parts[1].clone(),
            environment: self.parts[2].clone(),
            name: self.parts[3].clone(),
        })
    }
    /// Whether `key` lies under this path.
    pub fn contains(&self, key: &JobKey) -> bool {
        let full = [key.cluster(), key.role(), key.environment(), key.name()];
        self.parts.iter().zip(full).all(|(a, b)| a == b)
    }
}

impl fmt::Display for JobPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.parts.join("/"))
    }
}

impl FromStr for JobPath {
    type Err = JobKeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.len() > 4 {
            return Err(JobKeyError::WrongPartCount {
                input: s.to_owned(),
                found: parts.len(),
                expected: "1 to 4",
            });
        }
        let kinds = [
            JobKeyPart::Cluster,
            JobKeyPart::Role,
            JobKeyPart::Environment,
            JobKeyPart::Name,
        ];
        for (part, kind) in parts.iter().zip(kinds) {
            if kind == JobKeyPart::Environment {
                check_environment(s, part)?;
            } else {
                check_identifier(s, kind, part)?;
            }
        }
        Ok(JobPath {
            parts: parts.into_iter().map(str::to_owned).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expect: Result<&str, &str>) {
        let got = input
            .parse::<JobKey>()
            .map(|k| k.to_string())
            .map_err(|e| e.to_string());
        match (got, expect) {
            (Ok(k), Ok(e)) => assert_eq!(k, e),
            (Err(msg), Err(fragment)) => {
                assert!(msg.contains(fragment), "error {msg:?} lacks {fragment:?}")
            }
            (got, expect) => panic!("{input:?}: got {got:?}, expected {expect:?}"),
        }
    }

    #[test]
    fn parses_and_prints_keys() {
        check(
            "cluster1/web-team/test/experiment204",
            Ok("cluster1/web-team/test/experiment204"),
        );
        check(
            "c/r.o_l-e/staging12/n.a_m-e",
            Ok("c/r.o_l-e/staging12/n.a_m-e"),
        );
        check("c/r/staging/n", Ok("c/r/staging/n"));
    }

    #[test]
    fn explains_bad_keys() {
        check("cluster1/tyg//x", Err("has an empty environment"));
        check("a/b/c", Err("has 3 part(s); expected 4"));
        check("a/b/c/d/e", Err("has 5 part(s)"));
        check(
            "c/r/prod/hello world",
            Err("name \"hello world\" contains ' '"),
        );
        check(
            "c/r/production/x",
            Err("environment \"production\" is not valid"),
        );
        check("c/r/stagingX/x", Err("environment \"stagingX\""));
        check("/r/prod/x", Err("empty cluster"));
        check("c/r!/prod/x", Err("role \"r!\" contains '!'"));
        let long = "x".repeat(256);
        check(
            &format!("c/r/prod/{long}"),
            Err("name is 256 characters long"),
        );
    }

    #[test]
    fn paths_accept_prefixes() {
        for (s, n) in [("c", 1), ("c/r", 2), ("c/r/prod", 3), ("c/r/prod/j", 4)] {
            let p: JobPath = s.parse().unwrap();
            assert_eq!(p.to_string(), s);
            assert_eq!(p.job_key().is_some(), n == 4);
        }
        assert!("c/r/bogus".parse::<JobPath>().is_err());
        assert!("c//prod".parse::<JobPath>().is_err());
        assert!("c/r/prod/j/k".parse::<JobPath>().is_err());
        let key: JobKey = "c/r/prod/j".parse().unwrap();
        assert!("c/r".parse::<JobPath>().unwrap().contains(&key));
        assert!(!"c/q".parse::<JobPath>().unwrap().contains(&key));
    }

    #[test]
    fn serde_validates() {
        let key: JobKey = "c/r/prod/j".parse().unwrap();
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(
            json,
            r#"{"cluster":"c","role":"r","environment":"prod","name":"j"}"#
        );
        assert_eq!(serde_json::from_str::<JobKey>(&json).unwrap(), key);
        let bad = r#"{"cluster":"c","role":"r","environment":"nope","name":"j"}"#;
        assert!(serde_json::from_str::<JobKey>(bad).is_err());
    }
}
