//! One job's submission request: the entrypoint that runs `loader run …
//! --events jsonl` inside the unpacked package, the package as the job's
//! working directory, the job id as the submission id, and the resources
//! the entrypoint asks the cluster for.

use plugin_api::ActionResources;
use serde_json::{json, Map, Value};

use super::package::{self, Package};
use crate::runner::Deadline;

/// Everything a submission says.
#[derive(Debug, Clone)]
pub struct JobRequest {
    pub submission_id: String,
    pub plugin: String,
    pub action: String,
    /// Which params file of the package this job runs with.
    pub params_number: usize,
    pub library_path: String,
    pub deadline: Option<Deadline>,
    /// What the job's entrypoint process asks the cluster for.
    pub resources: ActionResources,
    /// The Jobs API address the action's agent client talks to.
    pub agent_address: Option<String>,
    /// Run the action inside the job's loader process instead of an
    /// isolated child of it.
    pub in_process: bool,
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
    /// The command line the job runs, from inside the unpacked package. The
    /// inner loader runs the action isolated as usual, reads its params and
    /// environment from the package, takes nothing from the job's process
    /// environment (`--env-prefix ''`), and writes only JSON lines.
    pub fn entrypoint(&self) -> String {
        let mut words: Vec<String> = vec![
            "./loader".into(),
            "--plugins".into(),
            package::PLUGIN_DIR.into(),
            "run".into(),
            shell_quote(&self.plugin),
            shell_quote(&self.action),
            "--params".into(),
            format!("@{}", package::params_path(self.params_number)),
            "--env-file".into(),
            package::ENV_FILE.into(),
            "--env-prefix".into(),
            "''".into(),
            "--job-id".into(),
            shell_quote(&self.submission_id),
            "--events".into(),
            "jsonl".into(),
            "--quiet".into(),
        ];
        if let Some(deadline) = self.deadline {
            words.extend([
                "--timeout".into(),
                deadline.timeout.as_secs_f64().to_string(),
                "--grace".into(),
                deadline.grace.as_secs_f64().to_string(),
            ]);
        }
        if self.in_process {
            words.push("--in-process".into());
        }
        if let Some(address) = &self.agent_address {
            words.extend(["--ray-agent".into(), shell_quote(address)]);
        }
        words.join(" ")
    }

    /// The body of `POST /api/jobs/`.
    pub fn to_json(&self, package: &Package) -> Value {
        let mut body = Map::new();
        body.insert("entrypoint".into(), json!(self.entrypoint()));
        body.insert("submission_id".into(), json!(self.submission_id));
        body.insert("runtime_env".into(), json!({ "working_dir": package.uri() }));
        body.insert(
            "metadata".into(),
            json!({
                "loader.plugin": self.plugin,
                "loader.action": self.action,
                "loader.library": self.library_path,
                "loader.params": self.params_number.to_string(),
            }),
        );
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
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn request() -> JobRequest {
        JobRequest {
            submission_id: "job-1".into(),
            plugin: "probe".into(),
            action: "it's odd".into(),
            params_number: 3,
            library_path: "plugins/libprobe.so".into(),
            deadline: Some(Deadline {
                timeout: Duration::from_millis(1500),
                grace: Duration::from_secs(2),
            }),
            resources: ActionResources {
                num_cpus: Some(0.5),
                memory: Some(1 << 20),
                resources: BTreeMap::from([("accel".to_owned(), 1.0)]),
                ..ActionResources::default()
            },
            agent_address: Some("http://127.0.0.1:8265".into()),
            in_process: true,
        }
    }

    #[test]
    fn the_entrypoint_runs_the_packaged_loader_with_quoted_words() {
        let entry = request().entrypoint();
        assert!(
            entry.starts_with("./loader --plugins plugins run probe 'it'\\''s odd' --params @params/3.json"),
            "{entry}"
        );
        for part in [
            "--env-file plugin.env",
            "--env-prefix ''",
            "--job-id job-1",
            "--events jsonl --quiet",
            "--timeout 1.5 --grace 2",
            "--in-process --ray-agent http://127.0.0.1:8265",
        ] {
            assert!(entry.contains(part), "{part} missing in {entry}");
        }
    }

    #[test]
    fn the_body_names_the_package_the_id_and_only_the_resources_given() {
        let package = Package {
            name: "_ray_pkg_ab.zip".into(),
            zip: Vec::new(),
        };
        let body = request().to_json(&package);
        assert_eq!(body["submission_id"], "job-1");
        assert_eq!(body["runtime_env"]["working_dir"], "gcs://_ray_pkg_ab.zip");
        assert_eq!(body["entrypoint_num_cpus"], 0.5);
        assert_eq!(body["entrypoint_memory"], 1 << 20);
        assert_eq!(body["entrypoint_resources"], json!({"accel": 1.0}));
        assert!(body.get("entrypoint_num_gpus").is_none());
        assert_eq!(body["metadata"]["loader.plugin"], "probe");
    }

    #[test]
    fn the_body_reserves_what_the_manifest_declares_unless_a_flag_says_otherwise() {
        let declared = ActionResources::new()
            .num_cpus(1.0)
            .num_gpus(0.5)
            .resource("accel", 2.0);
        let flags = ActionResources::new().num_cpus(0.25).memory(64 << 20);
        let mut job = request();
        job.resources =
            super::super::job_resources(&declared, &flags, "plugins/libprobe.so".as_ref(), "train").unwrap();
        let package = Package {
            name: "_ray_pkg_ab.zip".into(),
            zip: Vec::new(),
        };
        let body = job.to_json(&package);
        assert_eq!(body["entrypoint_num_cpus"], 0.25);
        assert_eq!(body["entrypoint_num_gpus"], 0.5);
        assert_eq!(body["entrypoint_memory"], 64 << 20);
        assert_eq!(body["entrypoint_resources"], json!({"accel": 2.0}));
        job.resources = ActionResources::new();
        let bare = job.to_json(&package);
        for field in [
            "entrypoint_num_cpus",
            "entrypoint_num_gpus",
            "entrypoint_memory",
            "entrypoint_resources",
        ] {
            assert!(bare.get(field).is_none(), "{field} without a declaration or a flag");
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
