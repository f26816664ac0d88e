//! The environment a plugin sees: only what the user passes explicitly
//! (`--env`, `--env-file`) and process variables with an allowed prefix,
//! never the whole shell environment (the Python original leaked
//! credentials into jobs that way). A prefix never passes a credential
//! ([`is_credential_name`]): the backend and agent tokens, the tenant, and
//! any name the redactor deems secret reach a plugin only when given
//! explicitly. The plugin's clients need none of them: the loader makes
//! their calls with its own credentials.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plugin_api::PluginEnvironment;

use crate::backend::config::{ACCESS_TOKEN_VAR, AGENT_TOKEN_VAR, TENANT_VAR};
use crate::run::env_file::{self, EnvFileError};
use crate::run::input_file::{self, InputFileError, MAX_ENV_FILE_BYTES};
use crate::run::redact::is_secret_name;

/// The prefix of process variables passed through by default.
pub const DEFAULT_PREFIX: &str = "SYNAPSE_";

/// The credentials of the backend and the agent, by name.
pub const CREDENTIAL_VARS: [&str; 3] = [ACCESS_TOKEN_VAR, AGENT_TOKEN_VAR, TENANT_VAR];

/// Whether the variable `name` holds a credential, which no prefix passes
/// to a plugin: one of [`CREDENTIAL_VARS`], or a name the redactor deems
/// secret (`TOKEN`, `SECRET`, `PASSWORD`, `PASSWD`, `KEY`, `CREDENTIAL`).
pub fn is_credential_name(name: &str) -> bool {
    CREDENTIAL_VARS.contains(&name) || is_secret_name(name)
}

/// A malformed environment setting.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvSettingError {
    #[error("--env {0:?} is not KEY=VALUE")]
    NotKeyValue(String),
    #[error(transparent)]
    Syntax(#[from] EnvFileError),
    #[error(transparent)]
    File(#[from] InputFileError),
    #[error("{path}: {source}")]
    BadNameInFile {
        path: PathBuf,
        source: Box<EnvSettingError>,
    },
    #[error("{0:?} is not a valid variable name (letters, digits and _, not starting with a digit)")]
    BadName(String),
}

/// Collects the plugin's environment; later sources override earlier ones:
/// prefixed process variables, then env files, then `--env` pairs.
#[derive(Debug, Default, Clone)]
pub struct EnvironmentBuilder {
    vars: BTreeMap<String, String>,
}

impl EnvironmentBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the process variables whose names start with one of `prefixes`,
    /// but no credential (see [`is_credential_name`]).
    pub fn with_process_vars(self, prefixes: &[String]) -> Self {
        let vars = std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
        self.with_vars_of(vars, prefixes)
    }

    /// [`Self::with_process_vars`] from `vars` instead of this process's.
    pub fn with_vars_of(mut self, vars: impl IntoIterator<Item = (String, String)>, prefixes: &[String]) -> Self {
        for (key, value) in vars {
            if passes_prefixes(&key, prefixes) {
                self.vars.insert(key, value);
            }
        }
        self
    }

    /// Adds the variables of an env file, read with `dotenvy` but never
    /// expanding `$` (see [`env_file`]). Only a regular file of at most
    /// [`MAX_ENV_FILE_BYTES`] is read (see [`input_file`]).
    pub fn with_env_file(mut self, path: &Path) -> Result<Self, EnvSettingError> {
        let text = input_file::read_text(path, "env file", MAX_ENV_FILE_BYTES, "")?;
        for (key, value) in env_file::parse(path, &text)? {
            check_name(&key).map_err(|e| EnvSettingError::BadNameInFile {
                path: path.to_owned(),
                source: Box::new(e),
            })?;
            self.vars.insert(key, value);
        }
        Ok(self)
    }

    /// Adds one `KEY=VALUE` pair (from `--env`).
    pub fn with_pair(mut self, pair: &str) -> Result<Self, EnvSettingError> {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| EnvSettingError::NotKeyValue(pair.to_owned()))?;
        check_name(key)?;
        self.vars.insert(key.to_owned(), value.to_owned());
        Ok(self)
    }

    pub fn build(self) -> PluginEnvironment {
        PluginEnvironment::new(self.vars)
    }
}

/// Whether the process variable `key` passes to the plugin by `prefixes`.
pub fn passes_prefixes(key: &str, prefixes: &[String]) -> bool {
    prefixes.iter().any(|p| !p.is_empty() && key.starts_with(p.as_str())) && !is_credential_name(key)
}

/// Whether `key` is a name `--env` accepts: letters, digits and `_`, not
/// starting with a digit.
pub fn is_variable_name(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_name(key: &str) -> Result<(), EnvSettingError> {
    if is_variable_name(key) {
        Ok(())
    } else {
        Err(EnvSettingError::BadName(key.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_override_files_which_override_process_vars() {
        let file = std::env::temp_dir().join(format!("loader-env-{}.env", std::process::id()));
        std::fs::write(&file, "# comment\n\nexport EPOCHS=3\nNAME=\"quoted value\"\nLR='0.1'\n").unwrap();
        let env = EnvironmentBuilder::new()
            .with_env_file(&file)
            .unwrap()
            .with_pair("EPOCHS=9")
            .unwrap()
            .with_pair("EMPTY=")
            .unwrap()
            .build();
        std::fs::remove_file(file).unwrap();
        assert_eq!(env.get("EPOCHS", None), Some("9"));
        assert_eq!(env.get("NAME", None), Some("quoted value"));
        assert_eq!(env.get("LR", None), Some("0.1"));
        assert_eq!(env.get("EMPTY", None), Some(""));
    }

    #[test]
    fn only_prefixed_process_vars_pass_through() {
        let env = EnvironmentBuilder::new()
            .with_process_vars(&["PATH".to_owned()])
            .build();
        assert!(env.contains("PATH"));
        assert!(!env.contains("HOME"));
        let none = EnvironmentBuilder::new().with_process_vars(&[String::new()]).build();
        assert!(none.is_empty(), "an empty prefix must not pass everything through");
    }

    #[test]
    fn no_prefix_passes_a_credential_but_an_explicit_pair_or_file_does() {
        let shell = [
            ("SYNAPSE_HOST", "http://h/"),
            ("SYNAPSE_ACCESS_TOKEN", "t1"),
            ("SYNAPSE_AGENT_TOKEN", "t2"),
            ("SYNAPSE_PLUGIN_RUN_TENANT", "t3"),
            ("SYNAPSE_TENANT_TOKEN", "t4"),
            ("SYNAPSE_DB_PASSWORD", "t5"),
            ("SYNAPSE_api_key", "t6"),
            ("SYNAPSE_EPOCHS", "3"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let env = EnvironmentBuilder::new()
            .with_vars_of(shell.clone(), &[DEFAULT_PREFIX.to_owned()])
            .build();
        let names: Vec<&str> = env.iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["SYNAPSE_EPOCHS", "SYNAPSE_HOST"]);
        let everything = EnvironmentBuilder::new().with_vars_of(shell, &["S".to_owned()]).build();
        assert_eq!(everything.len(), 2, "whatever the prefix");
        let explicit = EnvironmentBuilder::new()
            .with_pair("SYNAPSE_ACCESS_TOKEN=t1")
            .unwrap()
            .build();
        assert_eq!(explicit.get("SYNAPSE_ACCESS_TOKEN", None), Some("t1"));
    }

    #[test]
    fn malformed_settings_name_the_problem() {
        assert_eq!(
            EnvironmentBuilder::new().with_pair("NOVALUE").unwrap_err(),
            EnvSettingError::NotKeyValue("NOVALUE".into())
        );
        assert_eq!(
            EnvironmentBuilder::new().with_pair("1X=2").unwrap_err(),
            EnvSettingError::BadName("1X".into())
        );
        let file = std::env::temp_dir().join(format!("loader-env-bad-{}.env", std::process::id()));
        std::fs::write(&file, "OK=1\nbroken line\n").unwrap();
        let err = EnvironmentBuilder::new().with_env_file(&file).unwrap_err();
        std::fs::remove_file(&file).unwrap();
        assert!(
            err.to_string().ends_with(":2: \"broken line\" is not KEY=VALUE"),
            "{err}"
        );
        std::fs::write(&file, "dotted.key=1\n").unwrap();
        let err = EnvironmentBuilder::new().with_env_file(&file).unwrap_err();
        std::fs::remove_file(&file).unwrap();
        assert!(
            err.to_string().ends_with(
                ".env: \"dotted.key\" is not a valid variable name (letters, digits and _, not starting with a digit)"
            ),
            "{err}"
        );
        assert!(EnvironmentBuilder::new()
            .with_env_file(Path::new("/no/such.env"))
            .unwrap_err()
            .to_string()
            .contains("/no/such.env"));
    }
}
