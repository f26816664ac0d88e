//! Sample plugin with function-based actions: `train` fits a logistic
//! regression on a synthetic dataset it generates, reporting per-epoch
//! progress and metrics (and per-batch progress, which the host coalesces);
//! `evaluate` scores a saved model on fresh data.

pub mod data;
pub mod model;

use std::path::{Path, PathBuf};

use plugin_api::prelude::*;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::model::Model;

/// Params of `train`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct TrainParams {
    /// Passes over the training data (default: the EPOCHS env variable, else 5).
    #[serde(default)]
    pub epochs: Option<u64>,
    /// Samples per gradient step (default: the BATCH_SIZE env variable, else 32).
    #[serde(default)]
    pub batch_size: Option<u64>,
    /// Gradient step size.
    #[serde(default = "default_learning_rate")]
    pub learning_rate: f64,
    /// How many samples to generate (a fifth are kept for validation).
    #[serde(default = "default_samples")]
    pub samples: u64,
    /// Seed of the generated dataset.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Folder to write `model.json` into.
    #[serde(default)]
    pub output_dir: Option<PathBuf>,
}

fn default_learning_rate() -> f64 {
    0.1
}

fn default_samples() -> u64 {
    2000
}

fn default_seed() -> u64 {
    7
}

/// Params of `evaluate`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct EvaluateParams {
    /// A `model.json` written by `train`.
    pub model_path: PathBuf,
    #[serde(default = "default_samples")]
    pub samples: u64,
    /// Seed of the evaluation data (differs from training's by default).
    #[serde(default = "default_evaluation_seed")]
    pub seed: u64,
}

fn default_evaluation_seed() -> u64 {
    1234
}

/// The starting weights: the checkpoint's model if it can be read, else zeros.
fn starting_model(ctx: &RuntimeContext) -> Result<Model, ActionError> {
    let Some(checkpoint) = ctx.checkpoint() else {
        return Ok(Model::default());
    };
    match Model::load(Path::new(&checkpoint.path)) {
        Ok(model) => {
            let kind = if checkpoint.is_base() {
                "base model".to_owned()
            } else {
                format!("fine-tuned model {}", checkpoint.category)
            };
            ctx.log_message(
                &format!("Starting from checkpoint ({kind}) at {}", checkpoint.path),
                MessageLevel::Info,
            )?;
            Ok(model)
        }
        Err(reason) => {
            ctx.log_message(
                &format!("Checkpoint not usable, starting from scratch: {reason}"),
                MessageLevel::Warning,
            )?;
            Ok(Model::default())
        }
    }
}

fn positive(name: &str, value: i64) -> Result<u64, ActionError> {
    u64::try_from(value)
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| ActionError::new(format!("{name} must be a positive integer, got {value}")))
}

pub fn train(params: TrainParams, ctx: &RuntimeContext) -> ActionResult {
    let epochs = match params.epochs {
        Some(epochs) => epochs,
        None => positive("EPOCHS", ctx.env().get_int("EPOCHS", 5)?)?,
    };
    let batch_size = match params.batch_size {
        Some(size) => size,
        None => positive("BATCH_SIZE", ctx.env().get_int("BATCH_SIZE", 32)?)?,
    };
    if epochs == 0 || batch_size == 0 || params.samples < 10 {
        return Err(ActionError::new(
            "epochs and batch_size must be positive and samples at least 10",
        ));
    }
    ctx.log_message(
        &format!("Training started: {epochs} epochs, batch size {batch_size}"),
        MessageLevel::Info,
    )?;
    let (train_set, validation_set) = data::split(data::generate(params.samples, params.seed), 0.2);
    ctx.log(
        "data_loaded",
        json!({ "train": train_set.len(), "validation": validation_set.len() }),
        None,
    )?;

    let mut model = starting_model(ctx)?;
    ctx.log_dev_event(
        "Model initialised",
        Some(json!({ "kind": "logistic_regression", "features": 2, "weights": model.weights })),
    )?;
    let batches = train_set.len().div_ceil(batch_size as usize) as u64;
    let mut last = None;
    for epoch in 0..epochs {
        ctx.check_cancelled()?;
        for (index, batch) in train_set.chunks(batch_size as usize).enumerate() {
            model.step(batch, params.learning_rate);
            ctx.set_progress(index as u64 + 1, batches, Some("batch"))?;
        }
        let train_scores = model.score(&train_set);
        let validation = model.score(&validation_set);
        ctx.set_progress(epoch + 1, epochs, Some("train"))?;
        ctx.set_metrics(
            json!({ "epoch": epoch + 1, "loss": train_scores.loss, "accuracy": train_scores.accuracy, "val_accuracy": validation.accuracy }),
            "train",
        )?;
        last = Some((train_scores, validation));
    }
    let (train_scores, validation) = last.expect("at least one epoch ran");

    let model_path = match &params.output_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let path = dir.join("model.json");
            model.save(&path).map_err(ActionError::new)?;
            let path_text = path.display().to_string();
            ctx.log(
                "model_saved",
                json!({ "epochs": epochs, "val_accuracy": validation.accuracy }),
                Some(&path_text),
            )?;
            Some(path_text)
        }
        None => None,
    };
    ctx.log_message(
        &format!("Training completed: validation accuracy {:.3}", validation.accuracy),
        MessageLevel::Success,
    )?;
    Ok(json!({
        "status": "completed",
        "epochs": epochs,
        "batch_size": batch_size,
        "final_loss": train_scores.loss,
        "accuracy": train_scores.accuracy,
        "val_accuracy": validation.accuracy,
        "weights": model.weights,
        "bias": model.bias,
        "model_path": model_path,
    }))
}

pub fn evaluate(params: EvaluateParams, ctx: &RuntimeContext) -> ActionResult {
    let model = Model::load(&params.model_path).map_err(ActionError::new)?;
    let samples = data::generate(params.samples, params.seed);
    let chunk = (samples.len() / 10).max(1);
    let chunks = samples.len().div_ceil(chunk) as u64;
    let (mut loss, mut correct) = (0.0, 0.0);
    for (index, part) in samples.chunks(chunk).enumerate() {
        let scores = model.score(part);
        loss += scores.loss * part.len() as f64;
        correct += scores.accuracy * part.len() as f64;
        ctx.set_progress(index as u64 + 1, chunks, Some("evaluate"))?;
    }
    let n = samples.len().max(1) as f64;
    let (loss, accuracy) = (loss / n, correct / n);
    ctx.set_metrics(
        json!({ "loss": loss, "accuracy": accuracy, "samples": samples.len() }),
        "evaluate",
    )?;
    Ok(json!({ "loss": loss, "accuracy": accuracy, "samples": samples.len() }))
}

fn plugin() -> Plugin {
    Plugin::new("tabular-trainer", "Tabular trainer", env!("CARGO_PKG_VERSION"))
        .category(Category::NeuralNet)
        .description("Trains and evaluates a logistic regression on a generated tabular dataset")
        .action(action!(
            train,
            params = TrainParams,
            description = "Train a model; epochs and batch size default to EPOCHS / BATCH_SIZE",
            resources = ActionResources::new().num_cpus(1.0)
        ))
        .action(action!(
            evaluate,
            params = EvaluateParams,
            description = "Score a saved model on freshly generated data"
        ))
}

export_plugin!(plugin);

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use plugin_api::testing::{HostCall, RecordingHost};

    use super::*;

    fn params(json: serde_json::Value) -> TrainParams {
        serde_json::from_value(json).unwrap()
    }

    fn context(host: RecordingHost) -> (Arc<RecordingHost>, RuntimeContext) {
        let host = Arc::new(host);
        (host.clone(), RuntimeContext::with_host(host))
    }

    #[test]
    fn train_learns_and_reports_every_epoch() {
        let (host, ctx) = context(RecordingHost::default().with_env("EPOCHS", "4"));
        let result = train(params(json!({ "samples": 600 })), &ctx).unwrap();
        assert_eq!(result["epochs"], 4, "EPOCHS comes from the environment");
        assert!(result["val_accuracy"].as_f64().unwrap() > 0.85, "{result}");
        let train_progress: Vec<u64> = host
            .progress()
            .iter()
            .filter(|p| p.step.as_deref() == Some("train"))
            .map(|p| p.current)
            .collect();
        assert_eq!(train_progress, [1, 2, 3, 4]);
        assert_eq!(host.metrics().len(), 4);
        assert_eq!(host.metrics()[3].value["epoch"], 4);
        assert!(matches!(host.recorded().last(), Some(HostCall::Message(m)) if m.level == MessageLevel::Success));
    }

    #[test]
    fn a_bad_env_value_names_the_key() {
        let (_, ctx) = context(RecordingHost::default().with_env("BATCH_SIZE", "big"));
        let err = train(params(json!({ "epochs": 1 })), &ctx).unwrap_err();
        assert!(err.message().contains("BATCH_SIZE=\"big\""), "{err}");
    }

    #[test]
    fn saves_a_model_that_evaluate_and_a_checkpoint_can_use() {
        let dir = std::env::temp_dir().join(format!("tabular-trainer-{}", std::process::id()));
        let (host, ctx) = context(RecordingHost::default());
        let result = train(params(json!({ "epochs": 3, "samples": 500, "output_dir": dir })), &ctx).unwrap();
        let model_path = result["model_path"].as_str().unwrap().to_owned();
        assert!(host
            .logs()
            .iter()
            .any(|log| log.event == "model_saved" && log.file.as_deref() == Some(model_path.as_str())));

        let (_, ctx) = context(RecordingHost::default());
        let scores = evaluate(
            EvaluateParams {
                model_path: model_path.clone().into(),
                samples: 400,
                seed: 99,
            },
            &ctx,
        )
        .unwrap();
        assert!(scores["accuracy"].as_f64().unwrap() > 0.85, "{scores}");

        let checkpoint = json!({ "category": "base", "path": model_path });
        let (host, ctx) = context(RecordingHost::default().with_checkpoint(checkpoint));
        let warm = train(params(json!({ "epochs": 1, "samples": 500 })), &ctx).unwrap();
        assert!(host
            .messages()
            .iter()
            .any(|m| m.content.contains("Starting from checkpoint (base model)")));
        assert!(warm["val_accuracy"].as_f64().unwrap() > 0.85);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_unusable_checkpoint_is_a_warning_not_a_failure() {
        let (host, ctx) = context(
            RecordingHost::default().with_checkpoint(json!({ "category": "tuned-v2", "path": "/no/model.json" })),
        );
        train(params(json!({ "epochs": 1, "samples": 100 })), &ctx).unwrap();
        assert!(host
            .messages()
            .iter()
            .any(|m| m.level == MessageLevel::Warning && m.content.starts_with("Checkpoint not usable")));
    }

    #[test]
    fn evaluate_names_a_missing_model() {
        let (_, ctx) = context(RecordingHost::default());
        let err = evaluate(
            EvaluateParams {
                model_path: "/no/such/model.json".into(),
                samples: 10,
                seed: 1,
            },
            &ctx,
        )
        .unwrap_err();
        assert!(err.message().contains("/no/such/model.json"));
    }

    #[test]
    fn cancellation_stops_training() {
        let (host, ctx) = context(RecordingHost::default());
        host.cancel();
        assert!(train(params(json!({ "epochs": 2, "samples": 100 })), &ctx)
            .unwrap_err()
            .is_cancelled());
    }
}
