//! One job's submission request: the entrypoint that runs the package's
//! driver (`loader_ray.py`) with the run's id and, where the loader
//! listens, its address and token; the package as the job's working
//! directory; the run's id as the submission id; and, for a run in the
//! entrypoint itself (`job` mode), the resources the entrypoint asks for.

use plugin_api::ActionResources;
use serde_json::{json, Map, Value};

use super::package::{self, Package};
use super::spec::RayMode;

/// The Python that runs the driver when nothing else is named: Ray's own
/// images, and a cluster started from an activated environment, have
/// Ray's Python first on the PATH under this name.
pub const DEFAULT_PYTHON: &str = "python3";

/// Everything a submission says.
#[derive(Debug, Clone)]
pub struct JobRequest {
    pub submission_id: String,
    pub plugin: String,
    pub action: String,
    pub mode: RayMode,
    /// The command that runs Python on the cluster.
    pub python: String,
    /// Where the loader listens, and the token the driver says there.
    pub direct: Option<(String, String)>,
    /// What the job's entrypoint reserves (`job` mode; in the others the
    /// tasks hold the action's resources and the driver none).
    pub resources: ActionResources,
    /// Lines of a batch.
    pub lines: usize,
}

/// Quotes a word for `sh`.
pub fn shell_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./@=:".contains(&b))
    {
        return word.to_owned();
    }
    format!("'{}'", word.replace('\'', "'\\''"))
}

impl JobRequest {
    /// The command line the job runs, from inside the unpacked package.
    pub fn entrypoint(&self) -> String {
        let mut words = vec![
            shell_quote(&self.python),
            package::DRIVER_FILE.to_owned(),
            "--run-id".to_owned(),
            shell_quote(&self.submission_id),
        ];
        if let Some((address, token)) = &self.direct {
            words.extend([
                "--events".to_owned(),
                shell_quote(address),
                "--token".to_owned(),
                shell_quote(token),
            ]);
        }
        words.join(" ")
    }

    /// The body of `POST /api/jobs/`.
    pub fn to_json(&self, package: &Package) -> Value {
        let mut body = Map::new();
        body.insert("entrypoint".into(), json!(self.entrypoint()));
        body.insert("submission_id".into(), json!(self.submission_id));
        body.insert("runtime_env".into(), json!({ "working_dir": package.uri() }));
        let mode = serde_json::to_value(self.mode).unwrap_or_default();
        body.insert(
            "metadata".into(),
            json!({
                "loader.plugin": self.plugin,
                "loader.action": self.action,
                "loader.mode": mode,
                "loader.lines": self.lines.to_string(),
            }),
        );
        if self.mode == RayMode::Job {
            let r = &self.resources;
            if let Some(cpus) = r.num_cpus {
                body.insert("entrypoint_num_cpus".into(), json!(cpus));
            }
            if let Some(gpus) = r.num_gpus {
                body.insert("entrypoint_num_gpus".into(), json!(gpus));
            }
            if let Some(memory) = r.memory {
                body.insert("entrypoint_memory".into(), json!(memory));
            }
            if !r.resources.is_empty() {
                body.insert("entrypoint_resources".into(), json!(r.resources));
            }
        }
        Value::Object(body)
    }
}

/// A submission id nobody used before: `loader-<plugin>-<time><pid><n>`.
pub fn new_submission_id(plugin: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let clean: String = plugin
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(32)
        .collect();
    format!("loader-{clean}-{nanos:x}{:x}{n}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(mode: RayMode) -> JobRequest {
        JobRequest {
            submission_id: "job-1".into(),
            plugin: "probe".into(),
            action: "echo".into(),
            mode,
            python: "/opt/ray env/python3".into(),
            direct: Some(("127.0.0.1:4242".into(), "abc123".into())),
            resources: ActionResources::new()
                .num_cpus(0.5)
                .memory(1 << 20)
                .resource("accel", 1.0),
            lines: 1,
        }
    }

    fn package() -> Package {
        Package {
            name: "_ray_pkg_ab.zip".into(),
            zip: Vec::new(),
        }
    }

    #[test]
    fn the_entrypoint_runs_the_driver_with_the_run_id_and_the_direct_line() {
        assert_eq!(
            request(RayMode::Task).entrypoint(),
            "'/opt/ray env/python3' loader_ray.py --run-id job-1 --events 127.0.0.1:4242 --token abc123"
        );
        let mut quiet = request(RayMode::Batch);
        quiet.direct = None;
        assert_eq!(
            quiet.entrypoint(),
            "'/opt/ray env/python3' loader_ray.py --run-id job-1"
        );
    }

    #[test]
    fn only_a_run_in_the_entrypoint_reserves_resources_for_it() {
        let body = request(RayMode::Job).to_json(&package());
        assert_eq!(body["submission_id"], "job-1");
        assert_eq!(body["runtime_env"]["working_dir"], "gcs://_ray_pkg_ab.zip");
        assert_eq!(body["entrypoint_num_cpus"], 0.5);
        assert_eq!(body["entrypoint_memory"], 1 << 20);
        assert_eq!(body["entrypoint_resources"], json!({"accel": 1.0}));
        assert!(body.get("entrypoint_num_gpus").is_none());
        assert_eq!(body["metadata"]["loader.plugin"], "probe");
        assert_eq!(body["metadata"]["loader.mode"], "job");
        for mode in [RayMode::Task, RayMode::Batch] {
            let body = request(mode).to_json(&package());
            for field in [
                "entrypoint_num_cpus",
                "entrypoint_num_gpus",
                "entrypoint_memory",
                "entrypoint_resources",
            ] {
                assert!(
                    body.get(field).is_none(),
                    "{field} in {mode:?}: the tasks hold the resources"
                );
            }
        }
    }

    #[test]
    fn quoting_and_ids_are_shell_safe() {
        assert_eq!(shell_quote("plain-word_1.2"), "plain-word_1.2");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b;rm -rf /"), "'a b;rm -rf /'");
        let id = new_submission_id("Tabular Trainer!");
        assert!(id.starts_with("loader-tabular-trainer--"), "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'), "{id}");
        assert_ne!(new_submission_id("x"), new_submission_id("x"));
    }
}
