//! Actions: function-based (a typed params struct and a function, registered
//! with [`action!`](crate::action!)) and class-based (a type implementing
//! [`BaseAction`]). Both validate their params before running and return JSON.

use std::sync::{Arc, OnceLock};

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::context::{ContextError, Logger, RuntimeContext};
use crate::failure::{ActionFailure, FailureKind};
use crate::manifest::{ActionManifest, RunMethod};
use crate::resources::ActionResources;
use crate::validate::{params_schema, parse_params_with, ParamsMode};

/// An action's error: a message, optional structured details (the Python
/// `PluginError(message, details)`), and whether it was a cancellation.
///
/// Any `std::error::Error` converts into it, so `?` works on I/O, parse and
/// context errors alike.
pub struct ActionError {
    kind: FailureKind,
    message: String,
    details: Value,
}

/// What an action returns.
pub type ActionResult<T = Value> = Result<T, ActionError>;

/// `ctx.check_cancelled()?`: with the action's error type, so it lives here
/// (the context does not depend on actions).
impl RuntimeContext {
    /// `Err(ActionError::cancelled())` once the host asked the action to
    /// stop: `ctx.check_cancelled()?` in a loop.
    pub fn check_cancelled(&self) -> Result<(), ActionError> {
        if self.is_cancelled() {
            Err(ActionError::cancelled())
        } else {
            Ok(())
        }
    }
}

impl ActionError {
    /// An error of the action with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Failed,
            message: message.into(),
            details: Value::Null,
        }
    }

    /// The action stopped because the host asked it to.
    pub fn cancelled() -> Self {
        Self {
            kind: FailureKind::Cancelled,
            message: "the action was cancelled".to_owned(),
            details: Value::Null,
        }
    }

    /// Adds structured details (shown in the error event).
    pub fn with_details(mut self, details: impl Serialize) -> Self {
        self.details = serde_json::to_value(details).unwrap_or(Value::Null);
        self
    }

    /// The error's message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The structured details (`null` when there are none).
    pub fn details(&self) -> &Value {
        &self.details
    }

    /// Whether the action stopped because the host asked it to.
    pub fn is_cancelled(&self) -> bool {
        self.kind == FailureKind::Cancelled
    }

    /// What kind of failure this is (`failed`, `cancelled`, ...).
    pub fn kind(&self) -> FailureKind {
        self.kind
    }

    /// The same error reported as another kind (a workflow keeps the kind
    /// of the step that failed: a cancelled step cancels the workflow).
    pub fn with_kind(mut self, kind: FailureKind) -> Self {
        self.kind = kind;
        self
    }

    /// The same error, its message prefixed with what was being done
    /// (`reading data.csv: No such file ...`); kind and details are kept.
    pub(crate) fn prefixed(mut self, context: impl std::fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    pub(crate) fn into_failure(self) -> ActionFailure {
        ActionFailure::new(self.kind, self.message).with_details(self.details)
    }
}

impl std::fmt::Debug for ActionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionError")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("details", &self.details)
            .finish()
    }
}

impl std::fmt::Display for ActionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for ActionError {
    fn from(error: E) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Self::new(message)
    }
}

type Runner = dyn Fn(&str, ParamsMode, RuntimeContext) -> Result<Value, ActionFailure> + Send + Sync;
type Validator = dyn Fn(&str, ParamsMode) -> Result<(), ActionFailure> + Send + Sync;

/// One registered action: its manifest entry and how to run it. Schemas
/// are generated when a manifest asks for them, not when the plugin is
/// built, so that listing plugins runs no schema generation.
pub struct ActionDef {
    manifest: ActionManifest,
    params_schema: fn() -> Value,
    result_schema: Option<fn() -> Value>,
    params_mode: ParamsMode,
    runner: Box<Runner>,
    validator: Box<Validator>,
}

impl ActionDef {
    /// A function-based action: `f(params, &ctx)`. Prefer the
    /// [`action!`](crate::action!) macro, which names it after the function.
    pub fn function<P, R, F>(name: &str, f: F) -> Self
    where
        P: DeserializeOwned + JsonSchema + 'static,
        R: Serialize,
        F: Fn(P, &RuntimeContext) -> ActionResult<R> + Send + Sync + 'static,
    {
        Self::with_params::<P>(name, move |params, ctx| {
            let result = f(params, &ctx).map_err(ActionError::into_failure)?;
            serde_json::to_value(result).map_err(|e| {
                ActionFailure::new(
                    FailureKind::Failed,
                    format!("the result cannot be serialised to JSON: {e}"),
                )
            })
        })
    }

    /// A class-based action: a type implementing [`BaseAction`].
    pub fn class<A: BaseAction>(name: &str) -> Self {
        Self::with_params::<A::Params>(name, |params, ctx| {
            let mut action = A::new(ActionBase { params, ctx });
            action.execute().map_err(ActionError::into_failure)
        })
    }

    fn with_params<P>(
        name: &str,
        run: impl Fn(P, RuntimeContext) -> Result<Value, ActionFailure> + Send + Sync + 'static,
    ) -> Self
    where
        P: DeserializeOwned + JsonSchema + 'static,
    {
        let manifest = ActionManifest {
            name: name.to_owned(),
            description: String::new(),
            method: RunMethod::default(),
            params_schema: Value::Null,
            result_schema: None,
            resources: ActionResources::default(),
        };
        // The schema guides params reading; made on first use, then kept.
        let schema = Arc::new(OnceLock::new());
        let parse = move |json: &str, mode: ParamsMode| {
            parse_params_with::<P>(json, schema.get_or_init(params_schema::<P>), mode)
                .map_err(|e| ActionFailure::invalid_params(&e))
        };
        let validate = parse.clone();
        let runner = move |json: &str, mode: ParamsMode, ctx: RuntimeContext| {
            let params = parse(json, mode)?;
            run(params, ctx).map(wrap_result)
        };
        let validator = move |json: &str, mode: ParamsMode| validate(json, mode).map(drop);
        Self {
            manifest,
            params_schema: params_schema::<P>,
            result_schema: None,
            params_mode: ParamsMode::Lax,
            runner: Box::new(runner),
            validator: Box::new(validator),
        }
    }

    /// Reads this action's params strictly: no conversion of `"5"` to 5 or
    /// `"yes"` to `true` (by default params are read as pydantic's lax mode
    /// reads them, as the original does).
    ///
    /// ```
    /// # use plugin_api::{ActionDef, ActionResult, RuntimeContext};
    /// # #[derive(serde::Deserialize, schemars::JsonSchema)]
    /// # struct P { epochs: u32 }
    /// # fn train(p: P, _: &RuntimeContext) -> ActionResult<u32> { Ok(p.epochs) }
    /// let lax = ActionDef::function("train", train);
    /// assert!(lax.validate(r#"{"epochs": "5"}"#).is_ok());
    /// let strict = ActionDef::function("train", train).strict_params();
    /// assert!(strict.validate(r#"{"epochs": "5"}"#).is_err());
    /// ```
    pub fn strict_params(mut self) -> Self {
        self.params_mode = ParamsMode::Strict;
        self
    }

    /// Sets the description shown by `loader list` and `loader info`.
    pub fn description(mut self, description: &str) -> Self {
        self.manifest.description = description.to_owned();
        self
    }

    /// How the platform runs it (job by default).
    pub fn method(mut self, method: RunMethod) -> Self {
        self.manifest.method = method;
        self
    }

    /// Declares what a run on a cluster reserves (`loader run --on ray`
    /// asks for it unless a flag says otherwise):
    ///
    /// ```
    /// # use plugin_api::{ActionDef, ActionResources, ActionResult, RuntimeContext};
    /// # #[derive(serde::Deserialize, schemars::JsonSchema)]
    /// # struct P {}
    /// # fn train(_: P, _: &RuntimeContext) -> ActionResult { Ok(serde_json::json!({})) }
    /// let train = ActionDef::function("train", train).resources(ActionResources::new().num_cpus(2.0).num_gpus(1.0));
    /// assert_eq!(train.summary().resources.num_gpus, Some(1.0));
    /// ```
    pub fn resources(mut self, resources: ActionResources) -> Self {
        self.manifest.resources = resources;
        self
    }

    /// Declares the JSON Schema of the result.
    pub fn result_schema<R: JsonSchema>(mut self) -> Self {
        self.result_schema = Some(result_schema::<R>);
        self
    }

    /// The action's name, as `loader run PLUGIN ACTION` takes it.
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// The action's manifest entry, with its params (and result) schemas.
    pub fn manifest(&self) -> ActionManifest {
        ActionManifest {
            params_schema: (self.params_schema)(),
            result_schema: self.result_schema.map(|schema| schema()),
            ..self.manifest.clone()
        }
    }

    /// The manifest entry without schemas (`params_schema` is null).
    pub fn summary(&self) -> &ActionManifest {
        &self.manifest
    }

    /// Validates `params_json` and runs the action.
    pub fn run(&self, params_json: &str, ctx: RuntimeContext) -> Result<Value, ActionFailure> {
        (self.runner)(params_json, self.params_mode, ctx)
    }

    /// Validates `params_json` without running the action.
    pub fn validate(&self, params_json: &str) -> Result<(), ActionFailure> {
        (self.validator)(params_json, self.params_mode)
    }
}

fn result_schema<R: JsonSchema>() -> Value {
    serde_json::to_value(schemars::schema_for!(R)).unwrap_or(Value::Null)
}

/// A result that is not a JSON object is wrapped as `{"result": value}`, as
/// the Python original does, so that results are always objects.
fn wrap_result(value: Value) -> Value {
    match value {
        Value::Object(_) => value,
        other => serde_json::json!({ "result": other }),
    }
}

/// What every class-based action holds: its validated params and its context
/// (the Python `self.params` and `self.ctx`).
pub struct ActionBase<P> {
    /// The validated params.
    pub params: P,
    /// The context the action runs with.
    pub ctx: RuntimeContext,
}

/// A class-based action (the Python `BaseAction[Params]`). Embed the
/// [`ActionBase`] you are given in your type; the helper methods forward to
/// the context.
///
/// ```
/// use plugin_api::prelude::*;
/// # use serde::Deserialize; use schemars::JsonSchema;
/// #[derive(Deserialize, JsonSchema)]
/// struct Params { epochs: u64 }
///
/// struct Train { base: ActionBase<Params> }
///
/// impl BaseAction for Train {
///     type Params = Params;
///     fn new(base: ActionBase<Params>) -> Self { Self { base } }
///     fn base(&self) -> &ActionBase<Params> { &self.base }
///     fn execute(&mut self) -> ActionResult {
///         for epoch in 0..self.params().epochs {
///             self.set_progress(epoch + 1, self.params().epochs, Some("train"))?;
///         }
///         Ok(json!({ "status": "completed" }))
///     }
/// }
/// ```
pub trait BaseAction: Sized + 'static {
    /// The params type: deserialised and validated against its JSON Schema before `execute`.
    type Params: DeserializeOwned + JsonSchema + 'static;

    /// Builds the action from its params and context.
    fn new(base: ActionBase<Self::Params>) -> Self;

    /// The embedded params and context.
    fn base(&self) -> &ActionBase<Self::Params>;

    /// Runs the action.
    fn execute(&mut self) -> ActionResult;

    /// The validated params (`self.params`).
    fn params(&self) -> &Self::Params {
        &self.base().params
    }

    /// The context (`self.ctx`).
    fn ctx(&self) -> &RuntimeContext {
        &self.base().ctx
    }

    /// Same as `self.ctx().log(...)`.
    fn log(&self, event: &str, data: impl Serialize, file: Option<&str>) -> Result<(), ContextError> {
        self.ctx().log(event, data, file)
    }

    /// Same as `self.ctx().set_progress(...)`.
    fn set_progress(&self, current: u64, total: u64, step: Option<&str>) -> Result<(), ContextError> {
        self.ctx().set_progress(current, total, step)
    }

    /// Same as `self.ctx().set_metrics(...)`.
    fn set_metrics(&self, value: impl Serialize, step: &str) -> Result<(), ContextError> {
        self.ctx().set_metrics(value, step)
    }

    /// Same as `self.ctx().logger()`.
    fn logger(&self) -> &Logger {
        self.ctx().logger()
    }
}

/// Registers a function-based action, the Rust form of
/// `@action(params=..., description=...)`:
///
/// ```
/// # use plugin_api::{action, ActionResources, ActionResult, RunMethod, RuntimeContext};
/// # use serde::Deserialize;
/// # #[derive(Deserialize, schemars::JsonSchema)]
/// # struct TrainParams { epochs: u32 }
/// # fn train(p: TrainParams, _: &RuntimeContext) -> ActionResult { Ok(serde_json::json!({ "epochs": p.epochs })) }
/// # fn serve_model(_: TrainParams, _: &RuntimeContext) -> ActionResult { Ok(serde_json::Value::Null) }
/// let strict = action!(train, params = TrainParams, name = "train_strict", strict = true);
/// let train = action!(train, params = TrainParams, description = "Train a model");
/// let serve = action!(serve_model, params = TrainParams, description = "Serve", method = RunMethod::Serve);
/// assert_eq!(train.name(), "train");
/// assert!(train.validate(r#"{"epochs": "3"}"#).is_ok(), "lax by default, as pydantic");
/// assert!(strict.validate(r#"{"epochs": "3"}"#).is_err());
/// assert_eq!(serve.name(), "serve_model");
/// let on_a_gpu = action!(serve_model, params = TrainParams, name = "gpu", resources = ActionResources::new().num_gpus(1.0));
/// assert_eq!(on_a_gpu.summary().resources.num_gpus, Some(1.0));
/// ```
///
/// The action is named after the function; `name = "..."` overrides that.
/// `resources = ...` declares what a run on a cluster reserves (see
/// [`ActionDef::resources`]).
/// `strict = true` reads its params strictly (see
/// [`ActionDef::strict_params`]).
#[macro_export]
macro_rules! action {
    ($function:ident, params = $params:ty $(, name = $name:expr)? $(, description = $description:expr)? $(, method = $method:expr)? $(, resources = $resources:expr)? $(, strict = $strict:expr)? $(,)?) => {{
        #[allow(unused_mut, unused_assignments)]
        let mut name: &str = ::core::stringify!($function);
        $( name = $name; )?
        let def = $crate::ActionDef::function::<$params, _, _>(name, $function);
        $( let def = def.description($description); )?
        $( let def = def.method($method); )?
        $( let def = def.resources($resources); )?
        $( let def = if $strict { def.strict_params() } else { def }; )?
        def
    }};
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::testing::RecordingHost;
    use serde::Deserialize;

    #[derive(Deserialize, JsonSchema)]
    struct Params {
        #[serde(default = "three")]
        epochs: u64,
    }

    fn three() -> u64 {
        3
    }

    fn train(params: Params, ctx: &RuntimeContext) -> ActionResult<u64> {
        for epoch in 0..params.epochs {
            ctx.set_progress(epoch + 1, params.epochs, Some("train"))?;
        }
        Ok(params.epochs)
    }

    struct Export {
        base: ActionBase<Params>,
    }

    impl BaseAction for Export {
        type Params = Params;
        fn new(base: ActionBase<Params>) -> Self {
            Self { base }
        }
        fn base(&self) -> &ActionBase<Params> {
            &self.base
        }
        fn execute(&mut self) -> ActionResult {
            self.log(
                "exported",
                serde_json::json!({"n": self.params().epochs}),
                Some("/out/a.json"),
            )?;
            self.set_metrics(serde_json::json!({"files": 1}), "export")?;
            Ok(serde_json::json!({"files": 1}))
        }
    }

    fn context() -> (Arc<RecordingHost>, RuntimeContext) {
        let host = Arc::new(RecordingHost::default());
        (host.clone(), RuntimeContext::with_host(host))
    }

    #[test]
    fn function_action_runs_with_defaults_and_wraps_scalar_results() {
        let def = crate::action!(train, params = Params, description = "Train");
        assert_eq!(def.name(), "train");
        assert_eq!(def.manifest().description, "Train");
        assert!(
            def.summary().params_schema.is_null(),
            "no schema is generated for a summary"
        );
        assert_eq!(def.manifest().params_schema["properties"]["epochs"]["default"], 3);
        let (host, ctx) = context();
        assert_eq!(def.run("{}", ctx).unwrap(), serde_json::json!({"result": 3}));
        assert_eq!(host.calls().len(), 3);
    }

    #[test]
    fn invalid_params_never_reach_the_function() {
        let def = ActionDef::function("train", train);
        let (host, ctx) = context();
        let failure = def.run(r#"{"epochs": "many"}"#, ctx).unwrap_err();
        assert_eq!(failure.kind, FailureKind::InvalidParams);
        assert!(failure.message.contains("epochs"), "{}", failure.message);
        assert!(host.calls().is_empty());
        assert!(def.validate(r#"{"epochz": 1}"#).is_err());
        assert!(def.validate(r#"{"epochs": 1}"#).is_ok());
    }

    #[test]
    fn context_errors_fail_the_action_with_their_message() {
        fn bad(_: Params, ctx: &RuntimeContext) -> ActionResult {
            ctx.set_progress(2, 1, None)?;
            Ok(Value::Null)
        }
        let (_, ctx) = context();
        let failure = ActionDef::function("bad", bad).run("{}", ctx).unwrap_err();
        assert_eq!(failure.kind, FailureKind::Failed);
        assert!(
            failure.message.contains("current 2 is outside 0..=1"),
            "{}",
            failure.message
        );
    }

    #[test]
    fn class_action_helpers_forward_to_the_context() {
        let def = ActionDef::class::<Export>("export")
            .method(RunMethod::Task)
            .resources(ActionResources::new().num_cpus(0.5).resource("disk", 2.0));
        assert_eq!(def.manifest().method, RunMethod::Task);
        let declared = serde_json::to_value(def.summary()).unwrap();
        assert_eq!(
            declared["resources"],
            serde_json::json!({"num_cpus": 0.5, "resources": {"disk": 2.0}})
        );
        let (host, ctx) = context();
        assert_eq!(
            def.run(r#"{"epochs": 1}"#, ctx).unwrap(),
            serde_json::json!({"files": 1})
        );
        assert_eq!(
            host.calls(),
            vec![
                "log exported {\"n\":1} file=Some(\"/out/a.json\")",
                "metrics {\"files\":1} step=export"
            ]
        );
    }

    #[test]
    fn errors_keep_their_sources_and_details() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err: ActionError = io.into();
        assert_eq!(err.message(), "no such file");
        let failure = ActionError::new("disk full")
            .with_details(serde_json::json!({"free": 0}))
            .into_failure();
        assert_eq!(failure.details, serde_json::json!({"free": 0}));
        assert!(ActionError::cancelled().is_cancelled());
    }
}
