//! What loading a library gave, as one line of JSON: a plugin's manifest
//! summary and plugin-api version, or why the file is not a plugin. The
//! load-checking process sends it to the loader for each file it loaded
//! (see `load_check`), so that `list` need not load the file again, and the
//! manifest cache keeps it per file.
//!
//! A report comes from a process that ran plugin code, so the loader reads
//! it as untrusted input: at most [`MAX_REPORT_BYTES`], valid JSON of the
//! expected shape, and only what loading can say (a plugin of the loader's
//! major version with a non-empty code, or a problem of a kind loading
//! gives); anything else is no report at all.

use std::sync::Arc;

use plugin_api::{ApiVersion, PluginManifest, API_VERSION};
use serde::{Deserialize, Serialize};

use crate::find::discovery::{LoadedPlugin, Problem, ProblemKind, Refusal};

/// The largest report the loader reads (a manifest summary: names and
/// descriptions of a plugin and its actions, no schemas).
pub const MAX_REPORT_BYTES: usize = 1024 * 1024;

/// What loading a file gave: a plugin's description, or why it is not one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadOutcome {
    Plugin {
        /// Shared with the catalogs made from a cached outcome.
        manifest: Arc<PluginManifest>,
        api_version: [u32; 3],
    },
    Problem {
        kind: ProblemKind,
        reason: String,
        declared_api_version: Option<[u32; 3]>,
    },
}

/// Why a report was not believed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("the report is larger than {MAX_REPORT_BYTES} bytes")]
    TooLarge,
    #[error("the report is not valid: {0}")]
    Invalid(String),
    #[error("the report says what loading cannot: {0}")]
    Impossible(&'static str),
}

impl LoadOutcome {
    /// The outcome of loading a file.
    pub fn of(loaded: &Result<LoadedPlugin, Refusal>) -> Self {
        match loaded {
            Ok(plugin) => LoadOutcome::Plugin {
                manifest: Arc::new(plugin.manifest.clone()),
                api_version: version_triple(plugin.api_version()),
            },
            Err(refusal) => LoadOutcome::Problem {
                kind: refusal.kind,
                reason: refusal.reason.clone(),
                declared_api_version: refusal.declared_api_version.map(version_triple),
            },
        }
    }

    /// The outcome as one line of JSON (no newline in it).
    pub fn to_report(&self) -> String {
        serde_json::to_string(self).expect("an outcome always serialises")
    }

    /// Reads a report, believing it only if it is small enough, well formed
    /// and says something loading can say.
    pub fn from_report(report: &[u8]) -> Result<Self, ReportError> {
        if report.len() > MAX_REPORT_BYTES {
            return Err(ReportError::TooLarge);
        }
        let outcome: LoadOutcome = serde_json::from_slice(report).map_err(|e| ReportError::Invalid(e.to_string()))?;
        outcome.check()?;
        Ok(outcome)
    }

    fn check(&self) -> Result<(), ReportError> {
        match self {
            LoadOutcome::Plugin { manifest, api_version } => {
                if manifest.code.trim().is_empty() {
                    return Err(ReportError::Impossible("a plugin with an empty code"));
                }
                if api_version[0] != API_VERSION.major {
                    return Err(ReportError::Impossible("a plugin of another major version"));
                }
            }
            LoadOutcome::Problem { kind, reason, .. } => {
                if matches!(
                    kind,
                    ProblemKind::Duplicate | ProblemKind::CrashedWhileLoading | ProblemKind::Unreported
                ) {
                    return Err(ReportError::Impossible("a problem only the loader can find"));
                }
                if reason.trim().is_empty() {
                    return Err(ReportError::Impossible("a problem without a reason"));
                }
            }
        }
        Ok(())
    }

    /// The problem of the file at `path`, if the outcome is one.
    pub fn problem(&self, path: &std::path::Path) -> Option<Problem> {
        match self {
            LoadOutcome::Plugin { .. } => None,
            LoadOutcome::Problem {
                kind,
                reason,
                declared_api_version,
            } => Some(Problem {
                path: path.to_owned(),
                kind: *kind,
                reason: reason.clone(),
                declared_api_version: declared_api_version.map(version_of_triple),
            }),
        }
    }
}

/// The version as `[major, minor, patch]`, as reports and the cache keep it.
pub fn version_triple(version: ApiVersion) -> [u32; 3] {
    [version.major, version.minor, version.patch]
}

/// The version `[major, minor, patch]`.
pub fn version_of_triple([major, minor, patch]: [u32; 3]) -> ApiVersion {
    ApiVersion { major, minor, patch }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(code: &str, major: u32) -> LoadOutcome {
        let manifest: PluginManifest = serde_json::from_value(serde_json::json!({
            "code": code, "name": code, "version": "1.0.0", "actions": []
        }))
        .expect("a minimal manifest");
        LoadOutcome::Plugin {
            manifest: Arc::new(manifest),
            api_version: [major, 0, 0],
        }
    }

    fn problem(kind: ProblemKind, reason: &str) -> LoadOutcome {
        LoadOutcome::Problem {
            kind,
            reason: reason.to_owned(),
            declared_api_version: None,
        }
    }

    #[test]
    fn a_report_reads_back_as_the_outcome_it_was_made_from() {
        for outcome in [
            plugin("alpha", API_VERSION.major),
            problem(ProblemKind::LayoutMismatch, "layout differs"),
        ] {
            let report = outcome.to_report();
            assert!(!report.contains('\n'), "{report}");
            assert_eq!(LoadOutcome::from_report(report.as_bytes()), Ok(outcome));
        }
    }

    #[test]
    fn malformed_and_oversized_reports_are_refused() {
        assert!(matches!(
            LoadOutcome::from_report(b"{\"plugin\":"),
            Err(ReportError::Invalid(_))
        ));
        assert!(matches!(
            LoadOutcome::from_report(b"[1,2,3]"),
            Err(ReportError::Invalid(_))
        ));
        let huge = vec![b' '; MAX_REPORT_BYTES + 1];
        assert_eq!(LoadOutcome::from_report(&huge), Err(ReportError::TooLarge));
    }

    #[test]
    fn reports_of_what_loading_cannot_give_are_refused() {
        for outcome in [
            plugin("  ", API_VERSION.major),
            plugin("alpha", API_VERSION.major + 1),
            problem(ProblemKind::Duplicate, "already provided"),
            problem(ProblemKind::CrashedWhileLoading, "crashed"),
            problem(ProblemKind::NotAPlugin, " "),
        ] {
            let refused = LoadOutcome::from_report(outcome.to_report().as_bytes());
            assert!(
                matches!(refused, Err(ReportError::Impossible(_))),
                "{outcome:?}: {refused:?}"
            );
        }
    }
}
