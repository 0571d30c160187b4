//! Cluster discovery: the system `clusters.json` and the user's `~/.aurora/clusters.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// One cluster entry of a `clusters.json`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Cluster {
    /// The name job keys use.
    pub name: String,
    /// The scheduler's address, e.g. `localhost:55555` or `http://host:8081`.
    #[serde(default)]
    pub scheduler_uri: Option<String>,
    /// A ZooKeeper ensemble for leader discovery (not supported yet).
    #[serde(default)]
    pub zk: Option<String>,
    /// The ZooKeeper path of the scheduler's leader group.
    #[serde(default)]
    pub scheduler_zk_path: Option<String>,
    /// Other settings, kept for later use.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
    /// The file this entry came from.
    #[serde(skip)]
    pub source: PathBuf,
}

impl Cluster {
    /// The scheduler's base URL, `http://` added when the entry has no scheme.
    pub fn scheduler_url(&self) -> Result<String, ClusterError> {
        match &self.scheduler_uri {
            Some(uri) => {
                let uri = uri.trim().trim_end_matches('/');
                if uri.starts_with("http://") || uri.starts_with("https://") {
                    Ok(uri.to_owned())
                } else {
                    Ok(format!("http://{uri}"))
                }
            }
            None if self.zk.is_some() => Err(ClusterError::ZooKeeperUnsupported {
                cluster: self.name.clone(),
                source_file: self.source.clone(),
            }),
            None => Err(ClusterError::NoScheduler {
                cluster: self.name.clone(),
                source_file: self.source.clone(),
            }),
        }
    }
}

/// Why clusters could not be found or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// A clusters file exists but cannot be read.
    #[error("cannot read cluster file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A clusters file is not a JSON list of clusters.
    #[error("cluster file {} is not a JSON list of clusters: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// No cluster of that name is defined.
    #[error(
        "unknown cluster {name:?}; known clusters: {known} (looked in {searched}; set \
         AURORA_CONFIG_ROOT or add it to ~/.aurora/clusters.json)"
    )]
    Unknown {
        /// The name asked for.
        name: String,
        /// The names that exist.
        known: String,
        /// The files searched.
        searched: String,
    },
    /// The cluster has neither `scheduler_uri` nor `zk`.
    #[error("cluster {cluster:?} in {} has no scheduler_uri; add one such as \"localhost:55555\"", source_file.display())]
    NoScheduler {
        /// The cluster.
        cluster: String,
        /// Where it is defined.
        source_file: PathBuf,
    },
    /// The cluster is only reachable through ZooKeeper, which this client cannot use yet.
    #[error(
        "cluster {cluster:?} in {} names only a ZooKeeper ensemble; ZooKeeper discovery is not \
         supported yet, add a scheduler_uri",
        source_file.display()
    )]
    ZooKeeperUnsupported {
        /// The cluster.
        cluster: String,
        /// Where it is defined.
        source_file: PathBuf,
    },
}

/// The clusters a client knows, from at most two files; the user's file wins on name clashes.
#[derive(Debug, Clone, Default)]
pub struct Clusters {
    clusters: BTreeMap<String, Cluster>,
    searched: Vec<PathBuf>,
}

impl Clusters {
    /// Loads clusters as the documented client does: `$AURORA_CONFIG_ROOT` (a `clusters.json`
    /// file, or a directory holding one), else `/etc/aurora/clusters.json`, plus
    /// `~/.aurora/clusters.json`. Missing files are skipped.
    pub fn discover() -> Result<Clusters, ClusterError> {
        let system = match std::env::var_os("AURORA_CONFIG_ROOT") {
            Some(root) => PathBuf::from(root),
            None => PathBuf::from("/etc/aurora/clusters.json"),
        };
        let user = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".aurora/clusters.json"));
        Clusters::load(&system, user.as_deref())
    }

    /// Loads from an explicit system path (file or directory) and an optional user file.
    pub fn load(system: &Path, user: Option<&Path>) -> Result<Clusters, ClusterError> {
        let system = if system.is_dir() {
            system.join("clusters.json")
        } else {
            system.to_path_buf()
        };
        let mut clusters = Clusters::default();
        for path in std::iter::once(system.as_path()).chain(user) {
            clusters.searched.push(path.to_path_buf());
            let text = match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(ClusterError::Read {
                        path: path.to_path_buf(),
                        source,
                    });
                }
            };
            for mut cluster in parse_clusters(&text, path)? {
                cluster.source = path.to_path_buf();
                clusters.clusters.insert(cluster.name.clone(), cluster);
            }
        }
        Ok(clusters)
    }

    /// The cluster called `name`.
    pub fn get(&self, name: &str) -> Result<&Cluster, ClusterError> {
        self.clusters
            .get(name)
            .ok_or_else(|| ClusterError::Unknown {
                name: name.to_owned(),
                known: if self.clusters.is_empty() {
                    "none".to_owned()
                } else {
                    self.clusters.keys().cloned().collect::<Vec<_>>().join(", ")
                },
                searched: self
                    .searched
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Every known cluster, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Cluster> {
        self.clusters.values()
    }
}

fn parse_clusters(text: &str, path: &Path) -> Result<Vec<Cluster>, ClusterError> {
    // The documentation's own example has a trailing comma, so accept them.
    let cleaned = strip_trailing_commas(text);
    serde_json::from_str::<Vec<Cluster>>(&cleaned).map_err(|e| ClusterError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Removes commas that directly precede `}` or `]` (ignoring whitespace), outside strings.
fn strip_trailing_commas(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for (i, &c) in chars.iter().enumerate() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        if c == '"' {
            in_string = true;
        } else if c == ',' {
            let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
            if matches!(next, Some('}') | Some(']')) {
                continue;
            }
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_and_user_files_merge() {
        let dir = tempfile::tempdir().unwrap();
        let system = dir.path().join("etc");
        std::fs::create_dir(&system).unwrap();
        std::fs::write(
            system.join("clusters.json"),
            r#"[{"name": "example", "scheduler_uri": "localhost:55555",}, {"name": "zk", "zk": "10.0.0.1"}]"#,
        )
        .unwrap();
        let user = dir.path().join("user.json");
        std::fs::write(
            &user,
            r#"[{"name": "mine", "scheduler_uri": "http://10.1.1.1:8081/"}]"#,
        )
        .unwrap();
        let clusters = Clusters::load(&system, Some(&user)).unwrap();
        assert_eq!(
            clusters.get("example").unwrap().scheduler_url().unwrap(),
            "http://localhost:55555"
        );
        assert_eq!(
            clusters.get("mine").unwrap().scheduler_url().unwrap(),
            "http://10.1.1.1:8081"
        );
        let zk = clusters
            .get("zk")
            .unwrap()
            .scheduler_url()
            .unwrap_err()
            .to_string();
        assert!(
            zk.contains("ZooKeeper discovery is not supported yet"),
            "{zk}"
        );
        let unknown = clusters.get("nope").unwrap_err().to_string();
        assert!(
            unknown.contains("known clusters: example, mine, zk"),
            "{unknown}"
        );
    }

    #[test]
    fn missing_files_are_skipped_and_bad_ones_reported() {
        let dir = tempfile::tempdir().unwrap();
        let clusters = Clusters::load(&dir.path().join("none.json"), None).unwrap();
        assert!(
            clusters
                .get("x")
                .unwrap_err()
                .to_string()
                .contains("known clusters: none")
        );
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{\"name\": 1}").unwrap();
        let err = Clusters::load(&bad, None).unwrap_err().to_string();
        assert!(
            err.contains("bad.json is not a JSON list of clusters"),
            "{err}"
        );
    }

    #[test]
    fn trailing_commas_only_outside_strings() {
        assert_eq!(
            strip_trailing_commas(r#"[{"a": ",}",},]"#),
            r#"[{"a": ",}"}]"#
        );
    }
}
