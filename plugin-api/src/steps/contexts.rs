//! The guide's five action-specific contexts, each embedding a
//! `BaseStepContext` with the fields its workflows need.

use std::path::PathBuf;

use serde_json::{Map, Value};

use super::context::BaseStepContext;
use crate::context::RuntimeContext;
use crate::step_context;

/// Training workflow state.
pub struct TrainContext {
    /// The shared step state (`runtime_ctx`, current step, results).
    pub base: BaseStepContext,
    /// The action's params.
    pub params: Value,
    /// The dataset (or a description of it) once loaded.
    pub dataset: Option<Value>,
    /// Where the dataset is on disk.
    pub data_path: Option<PathBuf>,
    /// Where the trained model is (to be) written.
    pub model_path: Option<PathBuf>,
    /// The model (or its description) once trained.
    pub model: Option<Value>,
    /// Metrics gathered by the steps.
    pub metrics: Map<String, Value>,
}

impl TrainContext {
    /// A training context with these params, before any step.
    pub fn new(runtime_ctx: RuntimeContext, params: Value) -> Self {
        Self {
            base: BaseStepContext::new(runtime_ctx),
            params,
            dataset: None,
            data_path: None,
            model_path: None,
            model: None,
            metrics: Map::new(),
        }
    }
}

/// Inference workflow state.
pub struct InferenceContext {
    /// The shared step state (`runtime_ctx`, current step, results).
    pub base: BaseStepContext,
    /// The model serving the requests, once loaded.
    pub model_id: Option<String>,
    /// The inputs to run inference on.
    pub requests: Vec<Value>,
    /// One output per request, in order.
    pub results: Vec<Value>,
    /// Requests per inference batch.
    pub batch_size: usize,
}

impl InferenceContext {
    /// An inference context for these requests, before any step.
    pub fn new(runtime_ctx: RuntimeContext, requests: Vec<Value>, batch_size: usize) -> Self {
        Self {
            base: BaseStepContext::new(runtime_ctx),
            model_id: None,
            requests,
            results: Vec::new(),
            batch_size: batch_size.max(1),
        }
    }
}

/// Export workflow state.
pub struct ExportContext {
    /// The shared step state (`runtime_ctx`, current step, results).
    pub base: BaseStepContext,
    /// The action's params.
    pub params: Value,
    /// The folder the export writes into.
    pub output_path: PathBuf,
    /// Every file written so far.
    pub exported_files: Vec<PathBuf>,
    /// Records written so far.
    pub total_records: u64,
}

impl ExportContext {
    /// An export context writing into `output_path`, before any step.
    pub fn new(runtime_ctx: RuntimeContext, params: Value, output_path: PathBuf) -> Self {
        Self {
            base: BaseStepContext::new(runtime_ctx),
            params,
            output_path,
            exported_files: Vec::new(),
            total_records: 0,
        }
    }
}

/// Upload workflow state.
pub struct UploadContext {
    /// The shared step state (`runtime_ctx`, current step, results).
    pub base: BaseStepContext,
    /// The action's params.
    pub params: Value,
    /// Where the files to upload are.
    pub source_path: PathBuf,
    /// The files, grouped as the upload needs them (group name -> files).
    pub organized_files: Map<String, Value>,
    /// What has been uploaded (ids, paths) so far.
    pub uploaded: Vec<Value>,
}

impl UploadContext {
    /// An upload context reading from `source_path`, before any step.
    pub fn new(runtime_ctx: RuntimeContext, params: Value, source_path: PathBuf) -> Self {
        Self {
            base: BaseStepContext::new(runtime_ctx),
            params,
            source_path,
            organized_files: Map::new(),
            uploaded: Vec::new(),
        }
    }
}

/// Deployment (serving) workflow state.
pub struct DeploymentContext {
    /// The shared step state (`runtime_ctx`, current step, results).
    pub base: BaseStepContext,
    /// The name of the serving application.
    pub serve_app_name: String,
    /// The URL prefix the application is served under.
    pub route_prefix: String,
    /// Options of the serving actor (replicas, resources).
    pub actor_options: Value,
    /// Options of the serve application.
    pub serve_options: Value,
    /// Whether the deployment finished.
    pub deployed: bool,
}

impl DeploymentContext {
    /// A deployment context for this application, before any step.
    pub fn new(runtime_ctx: RuntimeContext, serve_app_name: &str, route_prefix: &str) -> Self {
        Self {
            base: BaseStepContext::new(runtime_ctx),
            serve_app_name: serve_app_name.to_owned(),
            route_prefix: route_prefix.to_owned(),
            actor_options: Value::Object(Map::new()),
            serve_options: Value::Object(Map::new()),
            deployed: false,
        }
    }
}

step_context!(TrainContext, base);
step_context!(InferenceContext, base);
step_context!(ExportContext, base);
step_context!(UploadContext, base);
step_context!(DeploymentContext, base);
