//! Sample plugin with step-based workflows: `train_pipeline` (function-based)
//! runs load_dataset → split → train → evaluate → export on a
//! `TrainContext`; `export_pipeline` (class-based) runs prepare → write →
//! index on an `ExportContext`. Both take `fail_at` to make a step fail on
//! demand, so the rollback (the failed step first, then the completed ones
//! in reverse) can be seen.

pub mod centroids;
pub mod pipeline;

use std::path::PathBuf;

use plugin_api::prelude::*;
use plugin_api::steps::{ExportContext, Orchestrator, Step, StepRegistry, StepResult, TrainContext};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Params of `train_pipeline`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct TrainPipelineParams {
    /// Points to generate.
    #[serde(default = "default_samples")]
    pub samples: u64,
    #[serde(default = "default_seed")]
    pub seed: u64,
    #[serde(default = "default_epochs")]
    pub epochs: u64,
    /// Where the dataset CSV is written (default: the run's work directory,
    /// or a folder under the system temp dir when the loader gives none).
    #[serde(default)]
    pub work_dir: Option<PathBuf>,
    /// Where model.json is written (default: the work folder).
    #[serde(default)]
    pub output_dir: Option<PathBuf>,
    #[serde(default)]
    pub skip_evaluation: bool,
    /// Make this step fail (load_dataset, split, train, evaluate or export).
    #[serde(default)]
    pub fail_at: Option<String>,
}

fn default_samples() -> u64 {
    600
}

fn default_seed() -> u64 {
    11
}

fn default_epochs() -> u64 {
    5
}

fn default_work_dir(ctx: &RuntimeContext) -> PathBuf {
    if let Some(work_dir) = ctx.work_dir() {
        return work_dir.to_owned();
    }
    let run = ctx
        .job_id()
        .map(str::to_owned)
        .unwrap_or_else(|| std::process::id().to_string());
    std::env::temp_dir().join(format!("workflow-trainer-{run}"))
}

/// The standard training workflow; a plugin can edit it (insert, remove, replace steps).
pub fn training_steps() -> StepRegistry<TrainContext> {
    let mut registry = StepRegistry::new();
    let distinct = "the standard step names are distinct";
    registry.register(pipeline::LoadDataset).expect(distinct);
    registry.register(pipeline::Split).expect(distinct);
    registry.register(pipeline::Train).expect(distinct);
    registry.register(pipeline::Evaluate).expect(distinct);
    registry.register(pipeline::Export).expect(distinct);
    registry
}

pub fn train_pipeline(mut params: TrainPipelineParams, ctx: &RuntimeContext) -> ActionResult {
    let work_dir = params.work_dir.clone().unwrap_or_else(|| default_work_dir(ctx));
    params.output_dir.get_or_insert_with(|| work_dir.clone());
    params.work_dir = Some(work_dir);
    let mut context = TrainContext::new(ctx.clone(), serde_json::to_value(&params)?);
    context.log_message("Training pipeline started", MessageLevel::Info)?;
    let report = Orchestrator::new(training_steps()).run(&mut context);
    if report.success {
        context.log_message("Training pipeline completed", MessageLevel::Success)?;
    } else {
        context.log_message(
            &format!(
                "Training pipeline failed; rolled back: {}",
                report.rolled_back.join(", ")
            ),
            MessageLevel::Danger,
        )?;
    }
    let mut result = report.into_result()?;
    // What the steps reported with set_metrics, read back from the logger.
    let logger = ctx.logger();
    result["metrics"] = json!({
        "train_accuracy": logger.get_metrics(Some("train")).get("accuracy"),
        "val_accuracy": logger.get_metrics(Some("evaluate")).get("val_accuracy"),
    });
    result["model_path"] = json!(context.model_path);
    Ok(result)
}

/// Params of `export_pipeline`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ExportPipelineParams {
    pub output_dir: PathBuf,
    /// Files to write.
    #[serde(default = "default_files")]
    pub files: u64,
    /// Make this step fail (prepare, write or index).
    #[serde(default)]
    pub fail_at: Option<String>,
}

fn default_files() -> u64 {
    3
}

/// The export folder, set before the workflow runs.
fn output_path(ctx: &ExportContext) -> Result<&std::path::Path, ActionError> {
    ctx.output_path
        .as_deref()
        .ok_or_else(|| ActionError::new("the export has no output path"))
}

fn item_path(ctx: &ExportContext, index: u64) -> Result<PathBuf, ActionError> {
    Ok(output_path(ctx)?.join(format!("item-{index:03}.json")))
}

/// The files written so far.
fn exported_files(ctx: &ExportContext) -> Result<Vec<PathBuf>, ActionError> {
    (0..ctx.exported_count).map(|i| item_path(ctx, i)).collect()
}

struct Prepare;

impl Step<ExportContext> for Prepare {
    fn name(&self) -> &str {
        "prepare"
    }

    fn execute(&mut self, ctx: &mut ExportContext) -> Result<StepResult, ActionError> {
        pipeline::fail_if_requested(&ctx.params, self.name())?;
        let output = output_path(ctx)?;
        let existed = output.exists();
        std::fs::create_dir_all(output).with_context(|| format!("creating {}", output.display()))?;
        Ok(StepResult::ok(json!({ "created": !existed })).with_rollback_data(json!(!existed)))
    }

    fn rollback(&mut self, ctx: &mut ExportContext, result: &StepResult) -> Result<(), ActionError> {
        if result.rollback_data == json!(true) {
            let output = output_path(ctx)?;
            std::fs::remove_dir(output).with_context(|| format!("removing {}", output.display()))?;
        }
        Ok(())
    }
}

struct Write;

impl Step<ExportContext> for Write {
    fn name(&self) -> &str {
        "write"
    }

    fn execute(&mut self, ctx: &mut ExportContext) -> Result<StepResult, ActionError> {
        pipeline::fail_if_requested(&ctx.params, self.name())?;
        let files = ctx.params["files"].as_u64().unwrap_or(1);
        ctx.total_count = files;
        for i in 0..files {
            let path = item_path(ctx, i)?;
            std::fs::write(&path, json!({ "item": i }).to_string())
                .with_context(|| format!("writing {}", path.display()))?;
            ctx.runtime_ctx
                .log("file_exported", json!({ "item": i }), Some(&path.display().to_string()))?;
            ctx.exported_count += 1;
            ctx.set_progress(i + 1, files)?;
        }
        Ok(StepResult::ok(json!({ "files": files })))
    }

    fn rollback(&mut self, ctx: &mut ExportContext, _: &StepResult) -> Result<(), ActionError> {
        for i in 0..ctx.exported_count {
            let path = item_path(ctx, i)?;
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
        ctx.exported_count = 0;
        Ok(())
    }

    fn progress_weight(&self) -> f64 {
        4.0
    }
}

struct Index;

impl Step<ExportContext> for Index {
    fn name(&self) -> &str {
        "index"
    }

    fn execute(&mut self, ctx: &mut ExportContext) -> Result<StepResult, ActionError> {
        pipeline::fail_if_requested(&ctx.params, self.name())?;
        let path = output_path(ctx)?.join("index.json");
        std::fs::write(&path, serde_json::to_string_pretty(&exported_files(ctx)?)?)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(StepResult::ok(json!({ "index": path })))
    }
}

/// The export workflow as a class-based action.
pub struct ExportPipeline {
    base: ActionBase<ExportPipelineParams>,
}

impl BaseAction for ExportPipeline {
    type Params = ExportPipelineParams;

    fn new(base: ActionBase<ExportPipelineParams>) -> Self {
        Self { base }
    }

    fn base(&self) -> &ActionBase<ExportPipelineParams> {
        &self.base
    }

    fn execute(&mut self) -> ActionResult {
        let params = serde_json::to_value(self.params())?;
        let mut context = ExportContext::new(self.ctx().clone(), params);
        context.output_path = Some(self.params().output_dir.clone());
        let mut registry = StepRegistry::new();
        registry.register(Prepare)?;
        registry.register(Write)?;
        registry.register(Index)?;
        let report = Orchestrator::new(registry).run(&mut context);
        let mut result = report.into_result()?;
        result["exported_files"] = json!(exported_files(&context)?);
        Ok(result)
    }
}

fn plugin() -> Plugin {
    Plugin::new("workflow-trainer", "Workflow trainer", env!("CARGO_PKG_VERSION"))
        .category(Category::NeuralNet)
        .description("Step-based workflows with weighted progress and rollback")
        .action(action!(
            train_pipeline,
            params = TrainPipelineParams,
            description =
                "load_dataset → split → train → evaluate → export; fail_at makes a step fail to show rollback"
        ))
        .action(
            ActionDef::class::<ExportPipeline>("export_pipeline")
                .description("prepare → write → index, as a class-based action"),
        )
}

export_plugin!(plugin);

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use plugin_api::testing::RecordingHost;

    use super::*;

    fn run(def: ActionDef, params: Value) -> (Arc<RecordingHost>, Result<Value, plugin_api::ActionFailure>) {
        let host = Arc::new(RecordingHost::default());
        let result = def.run(&params.to_string(), RuntimeContext::with_host(host.clone()));
        (host, result)
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("workflow-trainer-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn train_def() -> ActionDef {
        ActionDef::function("train_pipeline", train_pipeline)
    }

    #[test]
    fn the_pipeline_trains_evaluates_and_exports() {
        let dir = temp("ok");
        let (host, result) = run(train_def(), json!({ "work_dir": dir, "epochs": 4 }));
        let result = result.unwrap();
        assert_eq!(result["success"], true);
        let steps: Vec<&str> = result["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["status"].as_str().unwrap())
            .collect();
        assert_eq!(steps, ["succeeded"; 5]);
        assert!(result["metrics"]["val_accuracy"].as_f64().unwrap() > 0.85, "{result}");
        assert!(dir.join("model.json").is_file() && dir.join("dataset.csv").is_file());
        assert!(host.calls().contains(&"progress 10000/10000 step=None".to_owned()));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_requested_failure_rolls_back_the_failed_step_then_the_completed_ones() {
        let dir = temp("fail");
        let (host, result) = run(train_def(), json!({ "work_dir": dir, "fail_at": "evaluate" }));
        let failure = result.unwrap_err();
        assert_eq!(
            failure.message,
            "step \"evaluate\" failed: failure requested at step \"evaluate\" (fail_at)"
        );
        assert_eq!(
            failure.details["rolled_back"],
            json!(["evaluate", "train", "split", "load_dataset"])
        );
        assert!(
            !dir.join("dataset.csv").exists(),
            "load_dataset's rollback removed the file"
        );
        assert!(host.calls().iter().any(|c| c.starts_with(
            "message danger Training pipeline failed; rolled back: evaluate, train, split, load_dataset"
        )));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn without_a_work_dir_param_the_run_writes_into_the_hosts_work_dir() {
        let dir = temp("host-work-dir");
        std::fs::create_dir_all(&dir).unwrap();
        let host = Arc::new(RecordingHost::default().with_work_dir(&dir));
        let result = train_def().run(r#"{"epochs": 1}"#, RuntimeContext::with_host(host));
        let result = result.unwrap();
        assert_eq!(result["model_path"], json!(dir.join("model.json")));
        assert!(dir.join("dataset.csv").is_file() && dir.join("model.json").is_file());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn evaluation_can_be_skipped() {
        let dir = temp("skip");
        let (_, result) = run(train_def(), json!({ "work_dir": dir, "skip_evaluation": true }));
        let result = result.unwrap();
        assert_eq!(result["steps"][3]["status"], "skipped");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_class_based_export_pipeline_runs_and_rolls_back() {
        let dir = temp("export");
        let def = || ActionDef::class::<ExportPipeline>("export_pipeline");
        let (_, result) = run(def(), json!({ "output_dir": dir, "files": 2 }));
        assert_eq!(result.unwrap()["exported_files"].as_array().unwrap().len(), 2);
        assert!(dir.join("index.json").is_file());
        std::fs::remove_dir_all(&dir).unwrap();

        let (_, result) = run(def(), json!({ "output_dir": dir, "files": 2, "fail_at": "index" }));
        assert_eq!(
            result.unwrap_err().details["rolled_back"],
            json!(["index", "write", "prepare"])
        );
        assert!(!dir.exists(), "prepare's rollback removed the folder it created");
    }

    #[test]
    fn the_standard_workflow_can_be_edited() {
        let mut steps = training_steps();
        steps.unregister("evaluate");
        steps.insert_after("train", pipeline::Evaluate).unwrap();
        assert_eq!(steps.names(), ["load_dataset", "split", "train", "evaluate", "export"]);
    }
}
