//! What the driver of a run on Ray is told (`ray-run.json` in the
//! package, read by `driver.py`): how the run is put on the cluster (one
//! loader in the job's entrypoint, one Ray task, or a batch of tasks), the
//! loader command every run starts with, and what each task reserves,
//! retries and may take. Only what is the same for every submission of the
//! same work is here, so that submitting it again finds the package on the
//! cluster; the run's id and the loader's address go on the entrypoint.

use plugin_api::ActionResources;
use serde::Serialize;
use serde_json::Value;

use super::package;
use crate::run::runner::Deadline;

/// How many times a line lost with its worker or node runs again (Ray's
/// own default for tasks).
pub const LOST_RETRIES: u32 = 3;

/// How a run is put on the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RayMode {
    /// One run, the loader started in the job's entrypoint, which holds
    /// the action's resources.
    Job,
    /// One run as a Ray task holding the action's resources.
    Task,
    /// One Ray task per params line.
    Batch,
}

/// The loader command each run starts with, before its params file, job
/// id and parent (which the driver adds).
#[derive(Debug, Clone)]
pub struct LoaderCommand {
    pub plugin: String,
    pub action: String,
    pub deadline: Option<Deadline>,
    /// Run the action in the loader's own process (`--in-process`).
    pub in_process: bool,
    /// The Jobs API address the action's agent client talks to.
    pub agent_address: Option<String>,
    pub max_event_bytes: usize,
    pub max_params_bytes: u64,
    /// How long an interrupted action gets to stop (`--grace`).
    pub grace_seconds: f64,
    pub checkpoint: Option<Value>,
    /// The sandbox's flags: `--sandbox MODE` and the grants resolved where
    /// the run was submitted (`--allow-read PATH`, …).
    pub sandbox: Vec<String>,
}

impl LoaderCommand {
    /// The words: the packaged loader runs the action isolated as usual
    /// (unless `--in-process`), reads its environment from the package,
    /// takes nothing from the process environment (`--env-prefix ''`) and
    /// writes only JSON lines: the driver adds `--events jsonl` to a single
    /// run, or `--params-each FILE` to several lines of a batch.
    pub fn argv(&self) -> Vec<String> {
        let (global, grants) = split_global(&self.sandbox);
        let mut words: Vec<String> = vec!["./loader".into()];
        words.extend(global);
        words.extend([
            "--plugins".into(),
            package::PLUGIN_DIR.into(),
            "run".into(),
            self.plugin.clone(),
            self.action.clone(),
            "--env-file".into(),
            package::ENV_FILE.into(),
            "--env-prefix".into(),
            String::new(),
            "--quiet".into(),
            "--grace".into(),
            self.grace_seconds.to_string(),
            "--max-event-bytes".into(),
            self.max_event_bytes.to_string(),
            "--max-params-bytes".into(),
            self.max_params_bytes.to_string(),
        ]);
        words.extend(grants);
        if let Some(deadline) = self.deadline {
            words.extend(["--timeout".into(), deadline.timeout.as_secs_f64().to_string()]);
        }
        if self.in_process {
            words.push("--in-process".into());
        }
        if let Some(address) = &self.agent_address {
            words.extend(["--ray-agent".into(), address.clone()]);
        }
        if let Some(checkpoint) = &self.checkpoint {
            words.extend(["--checkpoint".into(), checkpoint.to_string()]);
        }
        words
    }
}

/// `--sandbox MODE` (a flag of the loader, before `run`) and the rest (the
/// grants, flags of `run`).
fn split_global(flags: &[String]) -> (Vec<String>, Vec<String>) {
    match flags.iter().position(|f| f == "--sandbox") {
        Some(at) if at + 1 < flags.len() => {
            let mut rest = flags.to_vec();
            let global: Vec<String> = rest.drain(at..at + 2).collect();
            (global, rest)
        }
        _ => (Vec::new(), flags.to_vec()),
    }
}

/// The whole of `ray-run.json`.
#[derive(Debug, Clone, Serialize)]
pub struct RunSpec {
    pub mode: RayMode,
    /// The loader command of every run.
    pub loader: Vec<String>,
    /// The params lines (numbers of `params/<n>.json`) of a batch; `[1]`
    /// for one run.
    pub lines: Vec<usize>,
    /// What each task reserves (the entrypoint's, in `job` mode, is set on
    /// the job instead).
    pub resources: ActionResources,
    /// Further attempts of a line whose action failed.
    pub retries: u32,
    /// Further attempts of a line lost with its worker or node.
    pub lost_retries: u32,
    /// Lines at a time; `None`: as many as the cluster's resources hold.
    pub parallel: Option<usize>,
    /// The run's `--timeout` and `--grace`, in seconds: the driver kills a
    /// run still going 10 s past both.
    pub timeout: Option<f64>,
    pub grace: f64,
}

impl RunSpec {
    /// A spec of `mode` running `command` over `lines`.
    pub fn new(mode: RayMode, command: &LoaderCommand, lines: Vec<usize>) -> Self {
        RunSpec {
            mode,
            loader: command.argv(),
            lines,
            resources: ActionResources::default(),
            retries: 0,
            lost_retries: LOST_RETRIES,
            parallel: None,
            timeout: command.deadline.map(|d| d.timeout.as_secs_f64()),
            grace: command
                .deadline
                .map_or(command.grace_seconds, |d| d.grace.as_secs_f64()),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a run spec is plain data")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn command() -> LoaderCommand {
        LoaderCommand {
            plugin: "probe".into(),
            action: "it's odd".into(),
            deadline: Some(Deadline {
                timeout: Duration::from_millis(1500),
                grace: Duration::from_secs(2),
            }),
            in_process: true,
            agent_address: Some("http://127.0.0.1:8265".into()),
            max_event_bytes: 4096,
            max_params_bytes: 1 << 20,
            grace_seconds: 2.0,
            checkpoint: Some(serde_json::json!({"category": "base", "path": "/m"})),
            sandbox: ["--sandbox", "require", "--allow-read", "/data", "--allow-net"]
                .map(str::to_owned)
                .to_vec(),
        }
    }

    #[test]
    fn the_loader_command_runs_the_packaged_loader_with_every_flag_of_the_run() {
        let argv = command().argv();
        assert_eq!(
            argv[..8],
            [
                "./loader",
                "--sandbox",
                "require",
                "--plugins",
                "plugins",
                "run",
                "probe",
                "it's odd"
            ]
        );
        let line = argv.join(" ");
        for part in [
            "--env-file plugin.env --env-prefix  --quiet",
            "--grace 2 --max-event-bytes 4096 --max-params-bytes 1048576",
            "--timeout 1.5 --in-process --ray-agent http://127.0.0.1:8265",
            r#"--checkpoint {"category":"base","path":"/m"}"#,
            "--allow-read /data --allow-net",
        ] {
            assert!(line.contains(part), "{part} missing in {line}");
        }
        assert!(!line.contains("--params"), "the driver adds each run's params: {line}");
    }

    #[test]
    fn the_spec_names_the_mode_lines_and_limits() {
        let mut spec = RunSpec::new(RayMode::Batch, &command(), vec![1, 3]);
        spec.retries = 2;
        spec.resources = ActionResources::new().num_cpus(0.5).resource("special", 1.0);
        let json: Value = serde_json::from_str(&spec.to_json()).unwrap();
        assert_eq!(json["mode"], "batch");
        assert_eq!(json["lines"], serde_json::json!([1, 3]));
        assert_eq!(json["retries"], 2);
        assert_eq!(json["lost_retries"], LOST_RETRIES);
        assert_eq!(json["parallel"], Value::Null);
        assert_eq!(json["timeout"], 1.5);
        assert_eq!(json["grace"], 2.0);
        assert_eq!(
            json["resources"],
            serde_json::json!({"num_cpus": 0.5, "resources": {"special": 1.0}})
        );
    }
}
