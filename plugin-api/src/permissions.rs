//! What a plugin needs beyond the sandbox's defaults, declared once for the
//! whole plugin in its manifest: paths it reads or writes, TCP endpoints it
//! connects to, environment variables it needs passed in, and programs it
//! runs. Declaring asks; the operator grants (see the book's permissions
//! chapter). The declaration crosses the library boundary inside the
//! manifest's JSON, so it adds nothing to the checked layout.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Component, Path};

use serde::{Deserialize, Serialize};

/// Everything a plugin may ask for beyond the defaults. Each list is empty
/// unless declared, and an empty list is left out of the manifest's JSON,
/// so a plugin that asks for nothing has the manifest of a plugin built
/// before permissions existed.
///
/// ```
/// use plugin_api::Permissions;
/// let needs = Permissions::new()
///     .read("~/.cache/models")
///     .net("api.example.com:443")
///     .env("HF_TOKEN")
///     .run("git");
/// assert!(needs.check().is_ok());
/// assert!(Permissions::new().read("data/in").check().is_err(), "paths are absolute or start with ~/");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permissions {
    /// Files or folders the plugin reads: absolute paths, or paths starting
    /// with `~/` (the home folder of the user who runs the loader).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read: Vec<String>,
    /// Files or folders the plugin reads and writes (same forms as `read`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub write: Vec<String>,
    /// TCP endpoints the plugin connects to, as `HOST:PORT`
    /// (`api.example.com:443`, `127.0.0.1:8080`, `[::1]:8080`), or `*`
    /// for any host and port.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub net: Vec<String>,
    /// Names of variables of the loader's environment the plugin needs
    /// passed in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Programs the plugin executes: absolute paths (or paths starting with
    /// `~/`), or bare names that the loader looks up in its `PATH`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub run: Vec<String>,
    /// The most processes a run of the plugin needs at once, when that is
    /// more than the sandbox's default (256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes: Option<u32>,
}

/// A declared entry that no grant could match: the field, the entry as
/// declared, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("permissions.{field} entry {entry:?}: {problem}")]
pub struct PermissionsError {
    /// The list the entry is in: `read`, `write`, `net`, `env` or `run`.
    pub field: &'static str,
    /// The entry as declared.
    pub entry: String,
    /// What is wrong with it.
    pub problem: PermissionProblem,
}

/// Why a declared entry is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PermissionProblem {
    /// The entry is empty (or only blanks).
    #[error("empty; remove it or name what is needed")]
    Empty,
    /// The entry contains a NUL byte, which no path, host or name can.
    #[error("contains a NUL byte")]
    NulByte,
    /// The entry contains another control character (a line break, an
    /// escape sequence): legal in a Linux file name, but it could make the
    /// request the operator reads differ from the one declared.
    #[error("contains a control character")]
    ControlCharacter,
    /// A `read` or `write` path that is relative.
    #[error("a relative path; give an absolute path or one starting with ~/")]
    RelativePath,
    /// A path with a `..` component.
    #[error("has a `..` component; name the path itself")]
    ParentComponent,
    /// A `run` entry that is a relative path rather than a bare name.
    #[error("a relative path; give an absolute path, one starting with ~/, or a bare program name looked up in PATH")]
    RelativeProgram,
    /// A `net` entry that is neither `*` nor `HOST:PORT`.
    #[error("not HOST:PORT (e.g. api.example.com:443, [::1]:8080) nor * for any host and port")]
    NotHostPort,
    /// A `net` entry whose host is not a host name or an IP address.
    #[error("the host is not a host name or an IP address")]
    BadHost,
    /// A `net` entry whose port is not a number from 1 to 65535.
    #[error("the port is not a number from 1 to 65535")]
    BadPort,
    /// A `processes` count of 0 (a run is at least one process).
    #[error("a run needs at least one process")]
    NoProcesses,
    /// An `env` entry that is not a variable name.
    #[error("not a variable name (letters, digits and _, not starting with a digit)")]
    BadEnvName,
}

impl Permissions {
    /// No permissions beyond the defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also reads `path` (absolute, or starting with `~/`).
    pub fn read(mut self, path: impl Into<String>) -> Self {
        self.read.push(path.into());
        self
    }

    /// Also reads and writes `path` (absolute, or starting with `~/`).
    pub fn write(mut self, path: impl Into<String>) -> Self {
        self.write.push(path.into());
        self
    }

    /// Also connects to `endpoint` over TCP: `HOST:PORT`, or `*` for any.
    pub fn net(mut self, endpoint: impl Into<String>) -> Self {
        self.net.push(endpoint.into());
        self
    }

    /// Also needs the loader's environment variable `name` passed in.
    pub fn env(mut self, name: impl Into<String>) -> Self {
        self.env.push(name.into());
        self
    }

    /// Also executes `program`: an absolute path (or one starting with
    /// `~/`), or a bare name looked up in `PATH`.
    pub fn run(mut self, program: impl Into<String>) -> Self {
        self.run.push(program.into());
        self
    }

    /// Also needs up to `count` processes at once in a run.
    pub fn processes(mut self, count: u32) -> Self {
        self.processes = Some(count);
        self
    }

    /// Whether nothing is declared.
    pub fn is_empty(&self) -> bool {
        self.lists().iter().all(|(_, entries)| entries.is_empty()) && self.processes.is_none()
    }

    /// Each list with its field name, in the manifest's order.
    pub fn lists(&self) -> [(&'static str, &[String]); 5] {
        [
            ("read", self.read.as_slice()),
            ("write", self.write.as_slice()),
            ("net", self.net.as_slice()),
            ("env", self.env.as_slice()),
            ("run", self.run.as_slice()),
        ]
    }

    /// Whether every entry could be granted as written; the first one that
    /// could not, naming its field, otherwise.
    pub fn check(&self) -> Result<(), PermissionsError> {
        if self.processes == Some(0) {
            return Err(PermissionsError {
                field: "processes",
                entry: "0".to_owned(),
                problem: PermissionProblem::NoProcesses,
            });
        }
        type Check = fn(&str) -> Result<(), PermissionProblem>;
        let checks: [Check; 5] = [check_path, check_path, check_endpoint, check_env_name, check_program];
        for ((field, entries), check) in self.lists().into_iter().zip(checks) {
            for entry in entries {
                check_entry(entry, check).map_err(|problem| PermissionsError {
                    field,
                    entry: entry.clone(),
                    problem,
                })?;
            }
        }
        Ok(())
    }
}

/// The checks every entry gets, then its field's own.
fn check_entry(entry: &str, field_check: fn(&str) -> Result<(), PermissionProblem>) -> Result<(), PermissionProblem> {
    if entry.contains('\0') {
        return Err(PermissionProblem::NulByte);
    }
    if entry.chars().any(char::is_control) {
        return Err(PermissionProblem::ControlCharacter);
    }
    if entry.trim().is_empty() {
        return Err(PermissionProblem::Empty);
    }
    field_check(entry)
}

/// An absolute path, or one in the home folder, without `..`.
fn check_path(path: &str) -> Result<(), PermissionProblem> {
    let rest = match path.strip_prefix("~/") {
        Some(in_home) => Path::new(in_home),
        None if Path::new(path).is_absolute() => Path::new(path),
        None => return Err(PermissionProblem::RelativePath),
    };
    if rest.components().any(|c| c == Component::ParentDir) {
        return Err(PermissionProblem::ParentComponent);
    }
    Ok(())
}

/// A path as [`check_path`] takes it, or a bare program name.
fn check_program(program: &str) -> Result<(), PermissionProblem> {
    let bare = !program.contains('/') && !program.contains(std::path::MAIN_SEPARATOR);
    match program {
        ".." => Err(PermissionProblem::ParentComponent),
        "." => Err(PermissionProblem::RelativeProgram),
        _ if bare => Ok(()),
        _ => check_path(program).map_err(|problem| match problem {
            PermissionProblem::RelativePath => PermissionProblem::RelativeProgram,
            other => other,
        }),
    }
}

/// `*`, or `HOST:PORT` with a host name, an IPv4 address or a bracketed
/// IPv6 address, and a port from 1 to 65535.
fn check_endpoint(endpoint: &str) -> Result<(), PermissionProblem> {
    if endpoint == "*" {
        return Ok(());
    }
    let (host, port) = endpoint.rsplit_once(':').ok_or(PermissionProblem::NotHostPort)?;
    if host.is_empty() || port.is_empty() {
        return Err(PermissionProblem::NotHostPort);
    }
    let port_ok = port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok_and(|p| p != 0);
    if !port_ok {
        return Err(PermissionProblem::BadPort);
    }
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<Ipv6Addr>().is_ok(),
        None => host.parse::<Ipv4Addr>().is_ok() || is_host_name(host),
    };
    if host_ok {
        Ok(())
    } else {
        Err(PermissionProblem::BadHost)
    }
}

/// A DNS name: dot-separated labels of letters, digits, `-` and `_`, none
/// empty, longer than 63 or starting or ending with `-`; 253 at most in all.
/// An all-digit name is no host name (it would be a mistyped address).
fn is_host_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    host.len() <= 253 && host.split('.').all(label_ok) && !host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// Letters, digits and `_`, not starting with a digit.
fn check_env_name(name: &str) -> Result<(), PermissionProblem> {
    let chars_ok = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if chars_ok && !name.starts_with(|c: char| c.is_ascii_digit()) {
        Ok(())
    } else {
        Err(PermissionProblem::BadEnvName)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn every_kind() -> Permissions {
        Permissions::new()
            .read("/etc/ssl/certs")
            .read("~/.cache/models")
            .write("/var/tmp/exports")
            .net("api.example.com:443")
            .net("127.0.0.1:8080")
            .net("[::1]:9000")
            .net("*")
            .env("HF_TOKEN")
            .env("_private2")
            .run("git")
            .run("/usr/bin/ffmpeg")
            .run("~/bin/tool")
    }

    #[test]
    fn the_builder_appends_in_order_and_every_form_the_docs_name_is_valid() {
        let declared = every_kind();
        assert_eq!(declared.read, ["/etc/ssl/certs", "~/.cache/models"]);
        assert_eq!(declared.write, ["/var/tmp/exports"]);
        assert_eq!(
            declared.net,
            ["api.example.com:443", "127.0.0.1:8080", "[::1]:9000", "*"]
        );
        assert_eq!(declared.env, ["HF_TOKEN", "_private2"]);
        assert_eq!(declared.run, ["git", "/usr/bin/ffmpeg", "~/bin/tool"]);
        assert_eq!(declared.check(), Ok(()));
        assert!(!declared.is_empty());
        assert!(Permissions::new().is_empty());
        assert!(!Permissions::new().env("HOME").is_empty());
        let owned = Permissions::new().read(String::from("/data"));
        assert_eq!(owned.read, ["/data"]);
    }

    #[test]
    fn declarations_round_trip_as_json_and_empty_lists_are_left_out() {
        let declared = every_kind();
        let text = serde_json::to_value(&declared).unwrap();
        assert_eq!(text["read"], json!(["/etc/ssl/certs", "~/.cache/models"]));
        assert_eq!(text["run"], json!(["git", "/usr/bin/ffmpeg", "~/bin/tool"]));
        assert_eq!(serde_json::from_value::<Permissions>(text).unwrap(), declared);

        let only_net = Permissions::new().net("localhost:5432");
        assert_eq!(
            serde_json::to_value(&only_net).unwrap(),
            json!({ "net": ["localhost:5432"] })
        );
        assert_eq!(serde_json::to_value(Permissions::new()).unwrap(), json!({}));
        assert_eq!(serde_json::from_str::<Permissions>("{}").unwrap(), Permissions::new());
    }

    #[test]
    fn a_list_a_later_release_adds_is_ignored_by_this_one() {
        // Deny by default makes this safe: what is not read is not granted.
        let read: Permissions = serde_json::from_value(json!({ "env": ["A"], "udp": ["h:53"] })).unwrap();
        assert_eq!(read, Permissions::new().env("A"));
    }

    fn refused(permissions: Permissions) -> PermissionsError {
        permissions.check().expect_err("refused")
    }

    /// A declaration of one entry in `field`.
    fn one(field: &str, entry: &str) -> Permissions {
        let none = Permissions::new();
        match field {
            "read" => none.read(entry),
            "write" => none.write(entry),
            "net" => none.net(entry),
            "env" => none.env(entry),
            _ => none.run(entry),
        }
    }

    #[test]
    fn empty_entries_nul_bytes_and_control_characters_are_refused_in_every_field() {
        for (field, _) in Permissions::new().lists() {
            for empty in ["", "  "] {
                let error = refused(one(field, empty));
                assert_eq!((error.field, error.problem), (field, PermissionProblem::Empty));
            }
            let error = refused(one(field, "/a\0b"));
            assert_eq!((error.field, error.problem), (field, PermissionProblem::NulByte));
            assert_eq!(error.entry, "/a\0b");
            for control in ["/tmp\n  net *", "/x\u{1b}[2K", "/tab\there", "/c1\u{85}"] {
                let error = refused(one(field, control));
                assert_eq!(
                    (error.field, error.problem),
                    (field, PermissionProblem::ControlCharacter),
                    "{control:?}"
                );
            }
        }
    }

    #[test]
    fn paths_must_be_absolute_or_in_home_and_without_parent_components() {
        for (field, permissions) in [
            ("read", Permissions::new().read("data/in")),
            ("write", Permissions::new().write("./out")),
            ("read", Permissions::new().read("~")),
            ("write", Permissions::new().write("~user/x")),
        ] {
            let error = refused(permissions);
            assert_eq!(
                (error.field, error.problem),
                (field, PermissionProblem::RelativePath),
                "{error}"
            );
        }
        for permissions in [
            Permissions::new().read("/data/../etc"),
            Permissions::new().write("~/../other"),
            Permissions::new().read("/data/.."),
        ] {
            assert_eq!(refused(permissions).problem, PermissionProblem::ParentComponent);
        }
        assert_eq!(Permissions::new().read("/").read("~/").read("/a/./b").check(), Ok(()));
    }

    #[test]
    fn programs_are_absolute_paths_or_bare_names() {
        assert_eq!(
            refused(Permissions::new().run("bin/tool")).problem,
            PermissionProblem::RelativeProgram
        );
        assert_eq!(
            refused(Permissions::new().run("./tool")).problem,
            PermissionProblem::RelativeProgram
        );
        assert_eq!(
            refused(Permissions::new().run(".")).problem,
            PermissionProblem::RelativeProgram
        );
        assert_eq!(
            refused(Permissions::new().run("..")).problem,
            PermissionProblem::ParentComponent
        );
        assert_eq!(
            refused(Permissions::new().run("/usr/../bin/sh")).problem,
            PermissionProblem::ParentComponent
        );
        assert_eq!(Permissions::new().run("python3").run("/bin/sh").check(), Ok(()));
    }

    #[test]
    fn endpoints_are_a_star_or_host_and_port() {
        for (entry, problem) in [
            ("api.example.com", PermissionProblem::NotHostPort),
            (":443", PermissionProblem::NotHostPort),
            ("api.example.com:", PermissionProblem::NotHostPort),
            ("api.example.com:0", PermissionProblem::BadPort),
            ("api.example.com:65536", PermissionProblem::BadPort),
            ("api.example.com:+443", PermissionProblem::BadPort),
            ("api.example.com:https", PermissionProblem::BadPort),
            ("*:443", PermissionProblem::BadHost),
            ("exa mple.com:443", PermissionProblem::BadHost),
            ("-bad.example.com:443", PermissionProblem::BadHost),
            ("a..b:443", PermissionProblem::BadHost),
            ("300.1.1.1:80", PermissionProblem::BadHost),
            ("[::1:80", PermissionProblem::BadHost),
            ("::1:80", PermissionProblem::BadHost),
            ("[not-v6]:80", PermissionProblem::BadHost),
            ("http://example.com:80", PermissionProblem::BadHost),
        ] {
            let error = refused(Permissions::new().net(entry));
            assert_eq!((error.field, error.problem), ("net", problem), "{entry}: {error}");
        }
        let valid = Permissions::new()
            .net("localhost:1")
            .net("db_primary.internal:65535")
            .net("example.com.:443")
            .net("[2001:db8::1]:443");
        assert_eq!(valid.check(), Ok(()));
    }

    #[test]
    fn env_names_are_letters_digits_and_underscores() {
        for name in ["HF-TOKEN", "A B", "1ST", "PATH=/bin", "ÄPFEL"] {
            let error = refused(Permissions::new().env(name));
            assert_eq!(
                (error.field, error.problem),
                ("env", PermissionProblem::BadEnvName),
                "{name}"
            );
        }
        assert_eq!(Permissions::new().env("A1_B").env("_").check(), Ok(()));
    }

    #[test]
    fn an_error_names_the_field_and_the_entry_and_says_what_to_write() {
        let error = refused(Permissions::new().read("/ok").write("out/dir"));
        assert_eq!(
            error.to_string(),
            "permissions.write entry \"out/dir\": a relative path; give an absolute path or one starting with ~/"
        );
        let error = refused(Permissions::new().net("example.com:99999"));
        assert_eq!(
            error.to_string(),
            "permissions.net entry \"example.com:99999\": the port is not a number from 1 to 65535"
        );
    }
}
