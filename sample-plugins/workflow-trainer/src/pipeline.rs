//! The steps of the training pipeline, over a `TrainContext`: load the
//! dataset (written as CSV to a work folder), split it, train, evaluate,
//! export the model. Steps that leave files behind undo them on rollback.

use std::path::{Path, PathBuf};

use plugin_api::prelude::*;
use plugin_api::steps::{Step, StepResult, TrainContext};

use crate::centroids::{generate, Centroids, Point};

/// Fails the step called `name` when the run's params ask for it (`fail_at`).
pub fn fail_if_requested(params: &Value, name: &str) -> Result<(), ActionError> {
    if params["fail_at"].as_str() == Some(name) {
        return Err(ActionError::new(format!(
            "failure requested at step {name:?} (fail_at)"
        )));
    }
    Ok(())
}

fn remove(path: &Path) -> Result<(), ActionError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ActionError::new(format!("cannot remove {}: {e}", path.display()))),
    }
}

fn points(value: &Value) -> Result<Vec<Point>, ActionError> {
    Ok(serde_json::from_value(value.clone())?)
}

/// Generates the dataset and writes it as CSV into the work folder.
pub struct LoadDataset;

impl Step<TrainContext> for LoadDataset {
    fn name(&self) -> &str {
        "load_dataset"
    }

    fn execute(&mut self, ctx: &mut TrainContext) -> Result<StepResult, ActionError> {
        fail_if_requested(&ctx.params, self.name())?;
        let samples = ctx.params["samples"].as_u64().unwrap_or(600) as usize;
        let work_dir = PathBuf::from(ctx.params["work_dir"].as_str().unwrap_or("."));
        std::fs::create_dir_all(&work_dir).with_context(|| format!("creating {}", work_dir.display()))?;
        let data = generate(samples, ctx.params["seed"].as_u64().unwrap_or(11));
        let path = work_dir.join("dataset.csv");
        let mut csv = String::from("x,y,label\n");
        for (i, p) in data.iter().enumerate() {
            csv.push_str(&format!("{},{},{}\n", p.x, p.y, p.label));
            if (i + 1) % 100 == 0 || i + 1 == data.len() {
                ctx.set_progress(i as u64 + 1, data.len() as u64)?;
            }
        }
        std::fs::write(&path, csv).with_context(|| format!("writing {}", path.display()))?;
        ctx.runtime_ctx.log(
            "dataset_written",
            json!({ "rows": data.len() }),
            Some(&path.display().to_string()),
        )?;
        ctx.dataset = Some(json!({ "all": data }));
        ctx.data_path = Some(path.clone());
        Ok(StepResult::ok(json!({ "rows": data.len(), "path": path })).with_rollback_data(json!(path)))
    }

    fn rollback(&mut self, ctx: &mut TrainContext, result: &StepResult) -> Result<(), ActionError> {
        let path = PathBuf::from(result.rollback_data.as_str().unwrap_or_default());
        remove(&path)?;
        ctx.log("dataset_removed", json!({ "path": path }))?;
        ctx.dataset = None;
        ctx.data_path = None;
        Ok(())
    }
}

/// Splits the dataset: every fifth point is kept for validation.
pub struct Split;

impl Step<TrainContext> for Split {
    fn name(&self) -> &str {
        "split"
    }

    fn execute(&mut self, ctx: &mut TrainContext) -> Result<StepResult, ActionError> {
        fail_if_requested(&ctx.params, self.name())?;
        let dataset = ctx
            .dataset
            .as_ref()
            .ok_or_else(|| ActionError::new("no dataset loaded"))?;
        let all = points(&dataset["all"])?;
        let validation: Vec<Point> = all.iter().step_by(5).copied().collect();
        let train: Vec<Point> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 5 != 0)
            .map(|(_, p)| *p)
            .collect();
        ctx.set_progress(1, 1)?;
        let sizes = json!({ "train": train.len(), "validation": validation.len() });
        ctx.dataset = Some(json!({ "train": train, "validation": validation }));
        Ok(StepResult::ok(sizes))
    }

    fn rollback(&mut self, ctx: &mut TrainContext, _: &StepResult) -> Result<(), ActionError> {
        ctx.log("split_discarded", json!({}))?;
        Ok(())
    }
}

/// Trains the centroids, one epoch at a time.
pub struct Train;

impl Step<TrainContext> for Train {
    fn name(&self) -> &str {
        "train"
    }

    fn execute(&mut self, ctx: &mut TrainContext) -> Result<StepResult, ActionError> {
        fail_if_requested(&ctx.params, self.name())?;
        let epochs = ctx.params["epochs"].as_u64().unwrap_or(5).max(1);
        let dataset = ctx
            .dataset
            .as_ref()
            .ok_or_else(|| ActionError::new("the dataset was not split"))?;
        let train = points(&dataset["train"])?;
        let mut model = Centroids::new(3);
        for epoch in 1..=epochs {
            ctx.runtime_ctx.check_cancelled()?;
            model.epoch(&train, 0.05);
            let accuracy = model.accuracy(&train);
            ctx.set_progress(epoch, epochs)?;
            ctx.set_metrics(json!({ "epoch": epoch, "accuracy": accuracy }))?;
        }
        ctx.model = Some(serde_json::to_value(&model)?);
        Ok(StepResult::ok(
            json!({ "epochs": epochs, "accuracy": model.accuracy(&train) }),
        ))
    }

    fn rollback(&mut self, ctx: &mut TrainContext, _: &StepResult) -> Result<(), ActionError> {
        ctx.model = None;
        ctx.log("model_discarded", json!({}))?;
        Ok(())
    }

    fn progress_weight(&self) -> f64 {
        3.0
    }
}

/// Scores the model on the validation points (skippable).
pub struct Evaluate;

impl Step<TrainContext> for Evaluate {
    fn name(&self) -> &str {
        "evaluate"
    }

    fn can_skip(&self, ctx: &TrainContext) -> bool {
        ctx.params["skip_evaluation"].as_bool().unwrap_or(false)
    }

    fn execute(&mut self, ctx: &mut TrainContext) -> Result<StepResult, ActionError> {
        fail_if_requested(&ctx.params, self.name())?;
        let model: Centroids =
            serde_json::from_value(ctx.model.clone().ok_or_else(|| ActionError::new("no trained model"))?)?;
        let validation = points(
            &ctx.dataset
                .as_ref()
                .map(|d| d["validation"].clone())
                .unwrap_or_default(),
        )?;
        let accuracy = model.accuracy(&validation);
        ctx.set_progress(1, 1)?;
        ctx.set_metrics(json!({ "val_accuracy": accuracy }))?;
        Ok(StepResult::ok(json!({ "val_accuracy": accuracy })))
    }
}

/// Writes the model as JSON into the output folder.
pub struct Export;

impl Step<TrainContext> for Export {
    fn name(&self) -> &str {
        "export"
    }

    fn execute(&mut self, ctx: &mut TrainContext) -> Result<StepResult, ActionError> {
        fail_if_requested(&ctx.params, self.name())?;
        let model = ctx.model.clone().ok_or_else(|| ActionError::new("no trained model"))?;
        let dir = PathBuf::from(ctx.params["output_dir"].as_str().unwrap_or("."));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("model.json");
        std::fs::write(&path, serde_json::to_string_pretty(&model)?)
            .with_context(|| format!("writing {}", path.display()))?;
        ctx.set_progress(1, 1)?;
        ctx.runtime_ctx
            .log("model_exported", json!({}), Some(&path.display().to_string()))?;
        ctx.model_path = Some(path.clone());
        Ok(StepResult::ok(json!({ "model_path": path })).with_rollback_data(json!(path)))
    }

    fn rollback(&mut self, ctx: &mut TrainContext, result: &StepResult) -> Result<(), ActionError> {
        remove(Path::new(result.rollback_data.as_str().unwrap_or_default()))?;
        ctx.model_path = None;
        Ok(())
    }
}
