//! The guide's five action-specific contexts, each embedding a
//! `BaseStepContext` and holding the state fields its counterpart in the
//! original has (synapse-sdk 2026.2.17, `plugins/actions/*/context.py`).
//!
//! Every context is built the same way, `XContext::new(runtime_ctx,
//! params)`, with every other field at the original's default; steps fill
//! them in. Fields the original types as `Any` or `dict` are JSON values
//! here; fields holding live Python objects (exporters, handlers,
//! generators, storage sessions) have no counterpart.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value};

use super::context::BaseStepContext;
use crate::context::RuntimeContext;
use crate::step_context;

/// Training workflow state.
///
/// ```
/// use std::sync::Arc;
/// use plugin_api::prelude::*;
/// use plugin_api::testing::RecordingHost;
///
/// let runtime_ctx = RuntimeContext::with_host(Arc::new(RecordingHost::default()));
/// let mut ctx = TrainContext::new(runtime_ctx, json!({ "epochs": 3 }));
/// assert_eq!(ctx.param("epochs"), Some(&json!(3)));
/// ctx.model_path = Some("out/model.json".into());
/// ctx.trial_models.push(json!({ "trial": 1 }));
/// assert!(ctx.dataset.is_none() && ctx.tune_result.is_none());
/// ```
pub struct TrainContext {
    /// The shared step state (`runtime_ctx`, current step, step results, errors).
    pub base: BaseStepContext,
    /// The action's params.
    pub params: Value,
    /// The dataset (or a description of it) once loaded.
    pub dataset: Option<Value>,
    /// Where the trained model is (to be) written.
    pub model_path: Option<PathBuf>,
    /// The model (or its description) once trained.
    pub model: Option<Value>,
    /// Where the dataset is on disk.
    pub data_path: Option<PathBuf>,
    /// The result of a hyper-parameter tuning run.
    pub tune_result: Option<Value>,
    /// The models of the tuning trials.
    pub trial_models: Vec<Value>,
}

impl TrainContext {
    /// A context holding these params, every other field at the original's default.
    pub fn new(runtime_ctx: RuntimeContext, params: Value) -> Self {
        Self {
            base: BaseStepContext::new(runtime_ctx),
            params,
            dataset: None,
            model_path: None,
            model: None,
            data_path: None,
            tune_result: None,
            trial_models: Vec::new(),
        }
    }

    /// One param by name, `None` when absent (the original's `params.get(key)`).
    pub fn param(&self, key: &str) -> Option<&Value> {
        self.params.get(key)
    }
}

/// Inference workflow state.
///
/// ```
/// use std::sync::Arc;
/// use plugin_api::prelude::*;
/// use plugin_api::testing::RecordingHost;
///
/// let runtime_ctx = RuntimeContext::with_host(Arc::new(RecordingHost::default()));
/// let mut ctx = InferenceContext::new(runtime_ctx, json!({ "model_id": 7 }));
/// ctx.requests.push(json!({ "image": "a.png" }));
/// ctx.batch_size = 8;
/// ctx.results.push(json!({ "label": "cat" }));
/// ctx.processed_count += 1;
/// assert_eq!((ctx.model_id, ctx.processed_count), (None, 1));
/// ```
pub struct InferenceContext {
    /// The shared step state (`runtime_ctx`, current step, step results, errors).
    pub base: BaseStepContext,
    /// The action's params.
    pub params: Value,
    /// The ID of the model used for inference.
    pub model_id: Option<i64>,
    /// The model's record once fetched.
    pub model: Option<Value>,
    /// Local path of the downloaded (extracted) model.
    pub model_path: Option<PathBuf>,
    /// The input requests to process.
    pub requests: Vec<Value>,
    /// The inference results.
    pub results: Vec<Value>,
    /// Requests per batch (1 by default, as in the original).
    pub batch_size: usize,
    /// How many items have been processed.
    pub processed_count: u64,
}

impl InferenceContext {
    /// A context holding these params, every other field at the original's default.
    pub fn new(runtime_ctx: RuntimeContext, params: Value) -> Self {
        Self {
            base: BaseStepContext::new(runtime_ctx),
            params,
            model_id: None,
            model: None,
            model_path: None,
            requests: Vec::new(),
            results: Vec::new(),
            batch_size: 1,
            processed_count: 0,
        }
    }

    /// One param by name, `None` when absent (the original's `params.get(key)`).
    pub fn param(&self, key: &str) -> Option<&Value> {
        self.params.get(key)
    }
}

/// Export workflow state.
///
/// ```
/// use std::sync::Arc;
/// use plugin_api::prelude::*;
/// use plugin_api::testing::RecordingHost;
///
/// let runtime_ctx = RuntimeContext::with_host(Arc::new(RecordingHost::default()));
/// let mut ctx = ExportContext::new(runtime_ctx, json!({ "project": 3 }));
/// ctx.output_path = Some(std::env::temp_dir().join("export"));
/// ctx.total_count = 10;
/// ctx.exported_count += 9;
/// ctx.failed_count += 1;
/// ctx.output_paths.insert("labels".into(), "export/labels".into());
/// assert_eq!(ctx.label_output_dirname.as_deref(), Some("labels"));
/// assert!(ctx.sdk_managed_original_files);
/// ```
pub struct ExportContext {
    /// The shared step state (`runtime_ctx`, current step, step results, errors).
    pub base: BaseStepContext,
    /// The action's params.
    pub params: Value,
    /// What the fetch step found (the original's `results`).
    pub results: Option<Value>,
    /// How many items there are to export.
    pub total_count: u64,
    /// How many items were exported.
    pub exported_count: u64,
    /// How many items failed to export.
    pub failed_count: u64,
    /// The folder the export writes into.
    pub output_path: Option<PathBuf>,
    /// The root path of the export output.
    pub path_root: Option<PathBuf>,
    /// Storage settings (the original also allows a live session object).
    pub storage: Option<Value>,
    /// The project's configuration.
    pub configuration: Option<Value>,
    /// The project ID taken from the filter.
    pub project_id: Option<i64>,
    /// This run's own export folder (set by the initialise step).
    pub unique_export_path: Option<PathBuf>,
    /// Folder name of the label files (`labels` by default).
    pub label_output_dirname: Option<String>,
    /// Whether the SDK copies the original files (true by default).
    pub sdk_managed_original_files: bool,
    /// Named output folders.
    pub output_paths: BTreeMap<String, PathBuf>,
    /// The built export parameters (set by the prepare step).
    pub export_params: Map<String, Value>,
    /// Errors saving the JSON files.
    pub errors_json: Vec<Value>,
    /// Errors saving the original files.
    pub errors_original: Vec<Value>,
    /// Output-filename collisions resolved by renaming (0: no rename happened).
    pub filename_collision_count: u64,
    /// Files present in the label folder after saving (`None` when there is no
    /// standard label folder).
    pub written_file_count: Option<u64>,
    /// Pages that failed every retry, when partial results are allowed.
    pub page_failures: Vec<Value>,
    /// The action's configuration.
    pub config: Map<String, Value>,
    /// The filters of the first fetch, reused with a cursor to resume.
    pub fetch_filters: Map<String, Value>,
    /// The last original item the save loop finished with (a resume continues after it).
    pub last_completed_item: Option<Value>,
}

impl ExportContext {
    /// A context holding these params, every other field at the original's default.
    pub fn new(runtime_ctx: RuntimeContext, params: Value) -> Self {
        Self {
            base: BaseStepContext::new(runtime_ctx),
            params,
            results: None,
            total_count: 0,
            exported_count: 0,
            failed_count: 0,
            output_path: None,
            path_root: None,
            storage: None,
            configuration: None,
            project_id: None,
            unique_export_path: None,
            label_output_dirname: Some("labels".to_owned()),
            sdk_managed_original_files: true,
            output_paths: BTreeMap::new(),
            export_params: Map::new(),
            errors_json: Vec::new(),
            errors_original: Vec::new(),
            filename_collision_count: 0,
            written_file_count: None,
            page_failures: Vec::new(),
            config: Map::new(),
            fetch_filters: Map::new(),
            last_completed_item: None,
        }
    }

    /// One param by name, `None` when absent (the original's `params.get(key)`).
    pub fn param(&self, key: &str) -> Option<&Value> {
        self.params.get(key)
    }
}

/// Upload workflow state.
///
/// ```
/// use std::sync::Arc;
/// use plugin_api::prelude::*;
/// use plugin_api::testing::RecordingHost;
///
/// let runtime_ctx = RuntimeContext::with_host(Arc::new(RecordingHost::default()));
/// let mut ctx = UploadContext::new(runtime_ctx, json!({ "name": "Batch 1", "extra_params": { "tag": "a" } }));
/// ctx.organized_files.push(json!({ "path": "img/1.png" }));
/// ctx.uploaded_files.push(json!({ "path": "img/1.png", "id": 11 }));
/// assert_eq!(ctx.get_param("name"), Some(&json!("Batch 1")));
/// assert_eq!(ctx.get_param("tag"), Some(&json!("a")), "extra_params are read too");
/// assert!(ctx.lost_files.is_empty());
/// ```
pub struct UploadContext {
    /// The shared step state (`runtime_ctx`, current step, step results, errors).
    pub base: BaseStepContext,
    /// The action's params.
    pub params: Value,
    /// Allowed file extensions by file kind.
    pub allowed_extensions: Option<BTreeMap<String, Vec<String>>>,
    /// The storage's configuration (set by the init step).
    pub storage: Option<Value>,
    /// The data collection's configuration (set by the init step).
    pub data_collection: Option<Value>,
    /// The project's configuration (set by the init step).
    pub project: Option<Value>,
    /// The folder the upload reads from (the original's `pathlib_cwd`).
    pub pathlib_cwd: Option<PathBuf>,
    /// The files, organised for upload (one object each).
    pub organized_files: Vec<Value>,
    /// The files uploaded successfully (set by the upload step).
    pub uploaded_files: Vec<Value>,
    /// Files that were attempted but never landed.
    pub lost_files: Vec<String>,
    /// The data units created (set by the generate step).
    pub data_units: Vec<Value>,
    /// The parsed Excel metadata (set by the metadata step).
    pub excel_metadata: Option<Value>,
}

impl UploadContext {
    /// A context holding these params, every other field at the original's default.
    pub fn new(runtime_ctx: RuntimeContext, params: Value) -> Self {
        Self {
            base: BaseStepContext::new(runtime_ctx),
            params,
            allowed_extensions: None,
            storage: None,
            data_collection: None,
            project: None,
            pathlib_cwd: None,
            organized_files: Vec::new(),
            uploaded_files: Vec::new(),
            lost_files: Vec::new(),
            data_units: Vec::new(),
            excel_metadata: None,
        }
    }

    /// One param by name, looked up in `extra_params` too, as the
    /// original's `get_param` does (the backend drops undeclared keys there).
    pub fn get_param(&self, key: &str) -> Option<&Value> {
        self.params
            .get(key)
            .or_else(|| self.params.get("extra_params").and_then(|extra| extra.get(key)))
    }
}

/// Deployment (serving) workflow state.
///
/// ```
/// use std::sync::Arc;
/// use plugin_api::prelude::*;
/// use plugin_api::testing::RecordingHost;
///
/// let runtime_ctx = RuntimeContext::with_host(Arc::new(RecordingHost::default()));
/// let mut ctx = DeploymentContext::new(runtime_ctx, json!({ "model_id": 7 }));
/// ctx.serve_app_name = Some("detector".into());
/// ctx.route_prefix = Some("/detector".into());
/// ctx.ray_actor_options.insert("num_gpus".into(), json!(1));
/// ctx.deployed = true;
/// assert!(ctx.serve_options.is_empty());
/// ```
pub struct DeploymentContext {
    /// The shared step state (`runtime_ctx`, current step, step results, errors).
    pub base: BaseStepContext,
    /// The action's params.
    pub params: Value,
    /// The ID of the model to deploy.
    pub model_id: Option<i64>,
    /// The model's record from the backend.
    pub model: Option<Value>,
    /// Local path of the model's artifacts.
    pub model_path: Option<PathBuf>,
    /// The name of the Ray Serve application.
    pub serve_app_name: Option<String>,
    /// The ID of the created serve application.
    pub serve_app_id: Option<i64>,
    /// The URL route prefix the deployment is served under.
    pub route_prefix: Option<String>,
    /// Options of the serving actor (replicas, resources).
    pub ray_actor_options: Map<String, Value>,
    /// Options of the serve application.
    pub serve_options: Map<String, Value>,
    /// Whether the deployment succeeded.
    pub deployed: bool,
}

impl DeploymentContext {
    /// A context holding these params, every other field at the original's default.
    pub fn new(runtime_ctx: RuntimeContext, params: Value) -> Self {
        Self {
            base: BaseStepContext::new(runtime_ctx),
            params,
            model_id: None,
            model: None,
            model_path: None,
            serve_app_name: None,
            serve_app_id: None,
            route_prefix: None,
            ray_actor_options: Map::new(),
            serve_options: Map::new(),
            deployed: false,
        }
    }

    /// One param by name, `None` when absent (the original's `params.get(key)`).
    pub fn param(&self, key: &str) -> Option<&Value> {
        self.params.get(key)
    }
}

step_context!(TrainContext, base);
step_context!(InferenceContext, base);
step_context!(ExportContext, base);
step_context!(UploadContext, base);
step_context!(DeploymentContext, base);
