//! `publish`: a function-based action that talks to the backend through
//! `ctx.client()`. It reads a data collection (with its file
//! specifications) and a base model, and registers the export as a new
//! model derived from both.

use plugin_api::prelude::*;
use schemars::JsonSchema;
use serde::Deserialize;

/// Params of `publish`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct PublishParams {
    /// The data collection the export came from.
    pub data_collection: u64,
    /// The model the export belongs to.
    pub model: u64,
    /// How many records the export holds.
    #[serde(default = "default_records")]
    pub records: u64,
}

fn default_records() -> u64 {
    100
}

pub fn publish(params: PublishParams, ctx: &RuntimeContext) -> ActionResult {
    let client = ctx
        .client()
        .ok_or_else(|| ActionError::new("publish needs a backend: run it with --backend URL (or SYNAPSE_HOST)"))?;
    ctx.set_progress(0, 3, Some("publish"))?;

    let collection = client.get_data_collection(params.data_collection)?;
    let specifications = collection["file_specifications"].as_array().map_or(0, Vec::len);
    ctx.log(
        "data_collection_loaded",
        json!({ "id": params.data_collection, "name": collection["name"], "file_specifications": specifications }),
        None,
    )?;
    ctx.set_progress(1, 3, Some("publish"))?;

    let base = client.get_model(params.model)?;
    ctx.log(
        "model_loaded",
        json!({ "id": params.model, "name": base["name"] }),
        None,
    )?;
    ctx.set_progress(2, 3, Some("publish"))?;

    let created = client.create_model(json!({
        "name": format!("{} (export of {})", base["name"].as_str().unwrap_or("model"), collection["name"].as_str().unwrap_or("data")),
        "parent": params.model,
        "data_collection": params.data_collection,
        "records": params.records,
    }))?;
    ctx.log("model_created", json!({ "id": created["id"] }), None)?;
    ctx.set_progress(3, 3, Some("publish"))?;
    ctx.log_message("Export published", MessageLevel::Success)?;
    Ok(json!({
        "data_collection": collection["name"],
        "file_specifications": specifications,
        "base_model": base["name"],
        "created_model": created["id"],
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use plugin_api::testing::RecordingHost;

    use super::*;

    #[test]
    fn without_a_backend_the_action_says_how_to_get_one() {
        let ctx = RuntimeContext::with_host(Arc::new(RecordingHost::default()));
        let params = PublishParams {
            data_collection: 1,
            model: 2,
            records: 3,
        };
        let error = publish(params, &ctx).unwrap_err();
        assert!(error.to_string().contains("--backend"), "{error}");
    }
}
