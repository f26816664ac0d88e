//! Permissions declared by a plugin and granted by the operator.
//!
//! A plugin declares in its manifest what it needs beyond the sandbox's
//! defaults ([`Permissions`]: paths to read or write, TCP hosts and ports,
//! environment variables, programs). Nothing declared is granted silently:
//! the operator grants it for one run (`--allow-read`, `--allow-write`,
//! `--allow-net`, `--allow-env`, `--allow-run`), or once per plugin
//! (`loader grant PLUGIN`), which records the plugin's code with its
//! permission set in the [`GrantBook`]; a plugin whose declared set changes
//! needs granting again, a rebuild that declares the same set does not. A
//! run whose plugin declares something not granted fails before the plugin
//! starts, naming each permission and how to grant it. Flags may also
//! grant what the plugin did not declare.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use plugin_api::Permissions;
use serde::{Deserialize, Serialize};

use super::NetAccess;

/// The operator's grants for one run, as given on the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunGrants {
    pub read: Vec<PathBuf>,
    pub write: Vec<PathBuf>,
    /// `None`: no network; `Some` of nothing: all of it; else `HOST:PORT`
    /// entries.
    pub net: Option<Vec<String>>,
    pub env: Vec<String>,
    /// Program names or paths.
    pub run: Vec<String>,
    /// `--max-processes`, when given.
    pub max_processes: Option<u64>,
}

/// What a run is granted beyond the defaults, resolved for the sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    pub read: Vec<PathBuf>,
    pub write: Vec<PathBuf>,
    /// Programs, as absolute paths.
    pub run: Vec<PathBuf>,
    pub net: NetAccess,
    /// Names of the loader's environment variables passed to the plugin.
    pub env: Vec<String>,
    /// The most processes the run may have at once, when raised above the
    /// default by a grant.
    pub max_processes: Option<u64>,
}

/// A declared permission that was not granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingGrant {
    /// `read`, `write`, `net`, `env`, `run` or `processes`.
    pub kind: &'static str,
    pub entry: String,
}

impl MissingGrant {
    /// The flag that grants it for one run.
    pub fn flag(&self) -> String {
        match self.kind {
            "net" if self.entry == "*" => "--allow-net".to_owned(),
            "processes" => format!("--max-processes {}", self.entry),
            kind => format!("--allow-{kind} {}", self.entry),
        }
    }
}

impl fmt::Display for MissingGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            "read" => "read",
            "write" => "write to",
            "net" => "connect to",
            "env" => "the environment variable",
            "processes" => "run this many processes at once:",
            _ => "run",
        };
        write!(f, "{what} {} (grant it for this run with {})", self.entry, self.flag())
    }
}

/// Why grants could not be read or recorded.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error("cannot read the grants file `{}`: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the grants file `{}` is not valid: {source}", path.display())]
    Invalid { path: PathBuf, source: serde_json::Error },
    #[error("cannot write the grants file `{}`: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
}

/// A permission set granted once for a plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedGrant {
    pub permissions: Permissions,
    /// When it was granted (RFC 3339).
    pub granted_at: String,
}

/// The grants recorded with `loader grant`, by plugin code: a JSON file in
/// the loader's state folder, written only by the loader (a sandboxed
/// plugin cannot write there).
#[derive(Debug, Default)]
pub struct GrantBook {
    path: PathBuf,
    plugins: BTreeMap<String, RecordedGrant>,
}

#[derive(Serialize, Deserialize)]
struct GrantFile {
    version: u32,
    plugins: BTreeMap<String, RecordedGrant>,
}

impl GrantBook {
    /// The book's file in `state_dir`.
    pub fn file_in(state_dir: &Path) -> PathBuf {
        state_dir.join("grants.json")
    }

    /// Opens the book at `path` (empty when the file does not exist).
    pub fn open(path: &Path) -> Result<Self, GrantError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(GrantBook {
                    path: path.to_owned(),
                    plugins: BTreeMap::new(),
                })
            }
            Err(source) => {
                return Err(GrantError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        let file: GrantFile = serde_json::from_str(&text).map_err(|source| GrantError::Invalid {
            path: path.to_owned(),
            source,
        })?;
        Ok(GrantBook {
            path: path.to_owned(),
            plugins: file.plugins,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The permission set recorded for `code`.
    pub fn recorded(&self, code: &str) -> Option<&RecordedGrant> {
        self.plugins.get(code)
    }

    /// Every recorded grant, by plugin code.
    pub fn all(&self) -> &BTreeMap<String, RecordedGrant> {
        &self.plugins
    }

    /// Records `permissions` as granted to `code`, and saves the book.
    pub fn grant(&mut self, code: &str, permissions: Permissions, now: String) -> Result<(), GrantError> {
        self.plugins.insert(
            code.to_owned(),
            RecordedGrant {
                permissions,
                granted_at: now,
            },
        );
        self.save()
    }

    /// Forgets the grant of `code` (true if there was one), and saves.
    pub fn revoke(&mut self, code: &str) -> Result<bool, GrantError> {
        let had = self.plugins.remove(code).is_some();
        if had {
            self.save()?;
        }
        Ok(had)
    }

    fn save(&self) -> Result<(), GrantError> {
        let error = |source| GrantError::Write {
            path: self.path.clone(),
            source,
        };
        let file = GrantFile {
            version: 1,
            plugins: self.plugins.clone(),
        };
        let text = serde_json::to_string_pretty(&file).map_err(|e| error(std::io::Error::other(e)))?;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(error)?;
        }
        let temporary = self.path.with_extension(format!("json.{}.tmp", std::process::id()));
        std::fs::write(&temporary, text).map_err(error)?;
        std::fs::rename(&temporary, &self.path).map_err(error)
    }
}

/// Expands a declared path (`~/` is the loader's home folder).
pub fn expand_home(entry: &str) -> PathBuf {
    match entry.strip_prefix("~/") {
        Some(rest) => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/"))
            .join(rest),
        None => PathBuf::from(entry),
    }
}

/// Finds a program the way a shell would: a path as it is, a bare name in
/// the loader's `PATH`.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let expanded = expand_home(name);
    let path = expanded.as_path();
    if path.components().count() > 1 || path.is_absolute() {
        return path.is_file().then(|| path.to_owned());
    }
    let search = std::env::var_os("PATH")?;
    std::env::split_paths(&search)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The `HOST:PORT` parts of a network entry (`None` for `*`).
fn host_port(entry: &str) -> Option<(&str, u16)> {
    let (host, port) = entry.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host, port.parse().ok()?))
}

/// Resolves a run's grants: `declared` is what the plugin asks for,
/// `recorded` the set granted once for it (if any), `flags` the
/// operator's per-run grants. Every declared permission must be granted,
/// by the recorded set (when it equals the declared one) or by a flag;
/// otherwise every one that is not is returned.
pub fn resolve(
    declared: &Permissions,
    recorded: Option<&Permissions>,
    flags: &RunGrants,
) -> Result<Grants, Vec<MissingGrant>> {
    let all_recorded = recorded.is_some_and(|r| r == declared);
    let flag_read: Vec<PathBuf> = flags.read.iter().chain(&flags.write).cloned().collect();
    let covered_by = |path: &Path, grants: &[PathBuf]| grants.iter().any(|g| path.starts_with(g));
    let net_all = flags.net.as_ref().is_some_and(Vec::is_empty);
    let flag_net = flags.net.clone().unwrap_or_default();
    let mut missing = Vec::new();
    if !all_recorded {
        for entry in &declared.read {
            if !covered_by(&expand_home(entry), &flag_read) {
                missing.push(MissingGrant {
                    kind: "read",
                    entry: entry.clone(),
                });
            }
        }
        for entry in &declared.write {
            if !covered_by(&expand_home(entry), &flags.write) {
                missing.push(MissingGrant {
                    kind: "write",
                    entry: entry.clone(),
                });
            }
        }
        for entry in &declared.net {
            let granted = net_all || flag_net.iter().any(|f| f == entry || f == "*");
            if !granted {
                missing.push(MissingGrant {
                    kind: "net",
                    entry: entry.clone(),
                });
            }
        }
        for name in &declared.env {
            if !flags.env.contains(name) {
                missing.push(MissingGrant {
                    kind: "env",
                    entry: name.clone(),
                });
            }
        }
        if let Some(wanted) = declared.processes.map(u64::from) {
            let granted = flags.max_processes.is_some_and(|limit| limit >= wanted);
            if !granted && wanted > super::DEFAULT_MAX_PROCESSES {
                missing.push(MissingGrant {
                    kind: "processes",
                    entry: wanted.to_string(),
                });
            }
        }
        for program in &declared.run {
            let wanted = find_program(program).and_then(|p| p.canonicalize().ok());
            let granted = flags.run.iter().any(|f| {
                f == program || (wanted.is_some() && find_program(f).and_then(|p| p.canonicalize().ok()) == wanted)
            });
            if !granted {
                missing.push(MissingGrant {
                    kind: "run",
                    entry: program.clone(),
                });
            }
        }
    }
    if !missing.is_empty() {
        return Err(missing);
    }
    let mut grants = Grants {
        read: declared
            .read
            .iter()
            .map(|e| expand_home(e))
            .chain(flags.read.iter().cloned())
            .collect(),
        write: declared
            .write
            .iter()
            .map(|e| expand_home(e))
            .chain(flags.write.iter().cloned())
            .collect(),
        run: declared
            .run
            .iter()
            .chain(&flags.run)
            .filter_map(|p| find_program(p))
            .collect(),
        env: declared.env.iter().chain(&flags.env).cloned().collect(),
        net: NetAccess::None,
        max_processes: flags.max_processes.max(declared.processes.map(u64::from)),
    };
    grants.env.sort();
    grants.env.dedup();
    let entries: Vec<&String> = declared.net.iter().chain(&flag_net).collect();
    grants.net = if net_all || entries.iter().any(|e| e.as_str() == "*") {
        NetAccess::All
    } else if entries.is_empty() {
        NetAccess::None
    } else {
        let parsed: Vec<(&str, u16)> = entries.iter().filter_map(|e| host_port(e)).collect();
        NetAccess::Ports {
            connect: parsed.iter().map(|(_, port)| *port).collect(),
            dns: parsed.iter().any(|(host, _)| host.parse::<IpAddr>().is_err()),
        }
    };
    Ok(grants)
}

/// Checks a `--allow-net` entry: `HOST:PORT` with a port from 1 to 65535.
pub fn check_net_entry(entry: &str) -> Result<(), String> {
    match host_port(entry) {
        Some((host, port)) if !host.is_empty() && port > 0 => Ok(()),
        _ => Err(format!("{entry:?} is not HOST:PORT (a port from 1 to 65535)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared() -> Permissions {
        Permissions::new()
            .read("/data/in")
            .write("/data/out")
            .net("api.example.com:443")
            .env("HF_TOKEN")
            .run("sh")
    }

    #[test]
    fn nothing_declared_needs_no_grant() {
        let grants = resolve(&Permissions::default(), None, &RunGrants::default()).unwrap();
        assert_eq!(grants, Grants::default());
    }

    #[test]
    fn every_ungranted_declaration_is_named_with_its_flag() {
        let missing = resolve(&declared(), None, &RunGrants::default()).unwrap_err();
        let flags: Vec<String> = missing.iter().map(MissingGrant::flag).collect();
        assert_eq!(
            flags,
            [
                "--allow-read /data/in",
                "--allow-write /data/out",
                "--allow-net api.example.com:443",
                "--allow-env HF_TOKEN",
                "--allow-run sh"
            ]
        );
    }

    #[test]
    fn flags_or_a_recorded_equal_set_grant_the_declaration() {
        let flags = RunGrants {
            read: vec!["/data".into()],
            write: vec!["/data/out".into()],
            net: Some(vec!["api.example.com:443".into()]),
            env: vec!["HF_TOKEN".into()],
            run: vec!["/bin/sh".into()],
            max_processes: None,
        };
        let grants = resolve(&declared(), None, &flags).unwrap();
        assert_eq!(
            grants.net,
            NetAccess::Ports {
                connect: vec![443, 443],
                dns: true
            }
        );
        assert!(grants.run.iter().all(|p| p.is_absolute()));
        let recorded = resolve(&declared(), Some(&declared()), &RunGrants::default()).unwrap();
        assert_eq!(recorded.write, [PathBuf::from("/data/out")]);
        let changed = declared().read("/etc");
        assert!(resolve(&changed, Some(&declared()), &RunGrants::default()).is_err());
    }

    #[test]
    fn more_processes_than_the_default_must_be_granted() {
        let many = Permissions::new().processes(1000);
        let missing = resolve(&many, None, &RunGrants::default()).unwrap_err();
        assert_eq!(missing[0].flag(), "--max-processes 1000");
        let flags = RunGrants {
            max_processes: Some(1000),
            ..RunGrants::default()
        };
        assert_eq!(resolve(&many, None, &flags).unwrap().max_processes, Some(1000));
        let few = Permissions::new().processes(10);
        assert_eq!(
            resolve(&few, None, &RunGrants::default()).unwrap().max_processes,
            Some(10)
        );
        assert_eq!(
            resolve(&many, Some(&many), &RunGrants::default())
                .unwrap()
                .max_processes,
            Some(1000)
        );
    }

    #[test]
    fn a_bare_allow_net_grants_all_of_it_and_ip_hosts_need_no_dns() {
        let all = RunGrants {
            net: Some(Vec::new()),
            ..RunGrants::default()
        };
        assert_eq!(
            resolve(&Permissions::default(), None, &all).unwrap().net,
            NetAccess::All
        );
        let local = RunGrants {
            net: Some(vec!["127.0.0.1:8080".into()]),
            ..RunGrants::default()
        };
        assert_eq!(
            resolve(&Permissions::default(), None, &local).unwrap().net,
            NetAccess::Ports {
                connect: vec![8080],
                dns: false
            }
        );
        assert!(check_net_entry("localhost:0").is_err());
        assert!(check_net_entry("[::1]:8080").is_ok());
    }

    #[test]
    fn the_book_records_revokes_and_survives_a_reopen() {
        let dir = std::env::temp_dir().join(format!("grants-{}", std::process::id()));
        let path = GrantBook::file_in(&dir);
        let mut book = GrantBook::open(&path).unwrap();
        book.grant("p", declared(), "2026-12-06T00:00:00Z".into()).unwrap();
        let reopened = GrantBook::open(&path).unwrap();
        assert_eq!(reopened.recorded("p").unwrap().permissions, declared());
        let mut reopened = reopened;
        assert!(reopened.revoke("p").unwrap());
        assert!(GrantBook::open(&path).unwrap().recorded("p").is_none());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
