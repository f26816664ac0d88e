//! Sample plugin with class-based actions (`BaseAction`): `export` writes
//! generated annotation records into an output folder in shards (by default
//! in the run's work directory, `ctx.work_dir()`, the one place a sandboxed
//! plugin may always write), logging each file with its path, plus a
//! manifest; `inspect` checks an export
//! against its manifest; `publish` registers an export with the backend
//! through `ctx.client()`.

pub mod publish;
pub mod records;

use std::path::{Path, PathBuf};

use plugin_api::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::publish::{publish, PublishParams};
use crate::records::{record, Format, Record};

/// Params of `export`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ExportParams {
    /// Folder to write into (created if missing). Default: `export` in the
    /// run's work directory, or a new folder under the system temp folder
    /// when the loader gives no work directory.
    #[serde(default)]
    pub output_dir: Option<PathBuf>,
    #[serde(default)]
    pub format: Format,
    /// How many records to export.
    #[serde(default = "default_records")]
    pub records: u64,
    /// Records per file.
    #[serde(default = "default_shard_size")]
    pub shard_size: u64,
    /// Write into a folder that already has files.
    #[serde(default)]
    pub overwrite: bool,
}

fn default_records() -> u64 {
    100
}

fn default_shard_size() -> u64 {
    25
}

/// One file of an export, as listed in its `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedFile {
    pub file: String,
    pub records: u64,
    pub bytes: u64,
}

/// Exports generated records as shard files plus a manifest.
pub struct ExportAction {
    base: ActionBase<ExportParams>,
    /// Where this run writes: `output_dir`, or its default.
    output_dir: PathBuf,
    written: Vec<ExportedFile>,
}

/// The folder an export writes into when the params name none: `export` in
/// the run's work directory, else a folder of its own under the temp folder.
fn default_output_dir(ctx: &RuntimeContext) -> PathBuf {
    match ctx.work_dir() {
        Some(work_dir) => work_dir.join("export"),
        None => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos();
            std::env::temp_dir().join(format!("dataset-exporter-{}-{now}", std::process::id()))
        }
    }
}

impl ExportAction {
    fn prepare_output_dir(&self) -> Result<(), ActionError> {
        let dir = &self.output_dir;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let has_files = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_some();
        if has_files && !self.params().overwrite {
            return Err(ActionError::new(format!(
                "{} is not empty; pass \"overwrite\": true to write into it",
                dir.display()
            )));
        }
        Ok(())
    }

    fn write_shard(&mut self, index: u64, records: &[Record]) -> Result<(), ActionError> {
        let format = self.params().format;
        let name = format!("part-{index:04}.{}", format.extension());
        let path = self.output_dir.join(&name);
        let text = format.encode(records)?;
        std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
        let file = ExportedFile {
            file: name,
            records: records.len() as u64,
            bytes: text.len() as u64,
        };
        self.log(
            "file_exported",
            json!({ "records": file.records, "bytes": file.bytes }),
            Some(&path.display().to_string()),
        )?;
        self.written.push(file);
        Ok(())
    }
}

impl BaseAction for ExportAction {
    type Params = ExportParams;

    fn new(base: ActionBase<ExportParams>) -> Self {
        let output_dir = match &base.params.output_dir {
            Some(dir) => dir.clone(),
            None => default_output_dir(&base.ctx),
        };
        Self {
            base,
            output_dir,
            written: Vec::new(),
        }
    }

    fn base(&self) -> &ActionBase<ExportParams> {
        &self.base
    }

    fn execute(&mut self) -> ActionResult {
        if self.params().shard_size == 0 {
            return Err(ActionError::new("shard_size must be at least 1"));
        }
        self.prepare_output_dir()?;
        let (total, shard_size) = (self.params().records, self.params().shard_size);
        let shards = total.div_ceil(shard_size).max(1);
        self.logger().log_message(
            &format!("Exporting {total} records in {shards} files"),
            MessageLevel::Info,
        )?;
        for shard in 0..shards {
            self.ctx().check_cancelled()?;
            let start = shard * shard_size;
            let records: Vec<Record> = (start..(start + shard_size).min(total)).map(record).collect();
            self.write_shard(shard, &records)?;
            self.set_progress(shard + 1, shards, Some("export"))?;
        }
        let manifest_path = self.output_dir.join("manifest.json");
        let manifest = serde_json::to_string_pretty(&self.written)?;
        std::fs::write(&manifest_path, manifest).with_context(|| format!("writing {}", manifest_path.display()))?;
        self.log(
            "manifest_written",
            json!({ "files": self.written.len() }),
            Some(&manifest_path.display().to_string()),
        )?;
        let bytes: u64 = self.written.iter().map(|f| f.bytes).sum();
        self.set_metrics(
            json!({ "files": self.written.len(), "records": total, "bytes": bytes }),
            "export",
        )?;
        self.logger().log_message(
            &format!("Exported {total} records to {}", self.output_dir.display()),
            MessageLevel::Success,
        )?;
        Ok(json!({ "output_dir": self.output_dir, "files": self.written, "records": total, "bytes": bytes }))
    }
}

/// Params of `inspect`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct InspectParams {
    /// A folder written by `export`.
    pub output_dir: PathBuf,
}

/// Checks every file of an export against its manifest.
pub struct InspectAction {
    base: ActionBase<InspectParams>,
}

impl BaseAction for InspectAction {
    type Params = InspectParams;

    fn new(base: ActionBase<InspectParams>) -> Self {
        Self { base }
    }

    fn base(&self) -> &ActionBase<InspectParams> {
        &self.base
    }

    fn execute(&mut self) -> ActionResult {
        let dir: &Path = &self.params().output_dir;
        let manifest_path = dir.join("manifest.json");
        let text =
            std::fs::read_to_string(&manifest_path).with_context(|| format!("reading {}", manifest_path.display()))?;
        let files: Vec<ExportedFile> = serde_json::from_str(&text)?;
        let mut problems = Vec::new();
        for (index, file) in files.iter().enumerate() {
            let path = dir.join(&file.file);
            match std::fs::metadata(&path) {
                Ok(meta) if meta.len() == file.bytes => {}
                Ok(meta) => {
                    problems.push(json!({ "file": file.file, "expected_bytes": file.bytes, "found_bytes": meta.len() }))
                }
                Err(e) => problems.push(json!({ "file": file.file, "error": e.to_string() })),
            }
            self.set_progress(index as u64 + 1, files.len() as u64, Some("inspect"))?;
        }
        if !problems.is_empty() {
            self.logger().log_message(
                &format!("{} files do not match the manifest", problems.len()),
                MessageLevel::Danger,
            )?;
        }
        Ok(json!({ "files": files.len(), "ok": problems.is_empty(), "problems": problems }))
    }
}

fn plugin() -> Plugin {
    Plugin::new("dataset-exporter", "Dataset exporter", env!("CARGO_PKG_VERSION"))
        .category(Category::Export)
        .description("Exports annotation records to files, and checks exports")
        .action(
            ActionDef::class::<ExportAction>("export").description(
                "Write records in shards plus a manifest.json to output_dir (default: the work directory)",
            ),
        )
        .action(
            ActionDef::class::<InspectAction>("inspect")
                .description("Check an export's files against its manifest")
                .method(RunMethod::Task),
        )
        .action(action!(
            publish,
            params = PublishParams,
            description = "Read a data collection and a model from the backend and register the export as a new model"
        ))
}

export_plugin!(plugin);

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use plugin_api::testing::RecordingHost;

    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dataset-exporter-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn run(
        def: ActionDef,
        params: serde_json::Value,
    ) -> (Arc<RecordingHost>, Result<Value, plugin_api::ActionFailure>) {
        let host = Arc::new(RecordingHost::default());
        let result = def.run(&params.to_string(), RuntimeContext::with_host(host.clone()));
        (host, result)
    }

    fn export() -> ActionDef {
        ActionDef::class::<ExportAction>("export")
    }

    #[test]
    fn export_writes_shards_and_a_manifest_and_logs_each_file() {
        let dir = temp_dir("shards");
        let (host, result) = run(
            export(),
            json!({ "output_dir": dir, "records": 10, "shard_size": 4, "format": "csv" }),
        );
        let result = result.unwrap();
        assert_eq!(result["records"], 10);
        assert_eq!(result["files"].as_array().unwrap().len(), 3);
        let part = std::fs::read_to_string(dir.join("part-0002.csv")).unwrap();
        assert_eq!(part.lines().count(), 3, "header + the last 2 records");
        let logged: Vec<String> = host
            .calls()
            .into_iter()
            .filter(|c| c.starts_with("log file_exported"))
            .collect();
        assert_eq!(logged.len(), 3);
        assert!(logged[0].contains(&dir.join("part-0000.csv").display().to_string()));

        let (_, inspected) = run(
            ActionDef::class::<InspectAction>("inspect"),
            json!({ "output_dir": dir }),
        );
        assert_eq!(inspected.unwrap()["ok"], true);
        std::fs::write(dir.join("part-0001.csv"), "tampered").unwrap();
        let (_, inspected) = run(
            ActionDef::class::<InspectAction>("inspect"),
            json!({ "output_dir": dir }),
        );
        assert_eq!(inspected.unwrap()["problems"][0]["file"], "part-0001.csv");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_non_empty_folder_is_refused_unless_overwrite() {
        let dir = temp_dir("full");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("keep.txt"), "mine").unwrap();
        let (_, refused) = run(export(), json!({ "output_dir": dir, "records": 2 }));
        let failure = refused.unwrap_err();
        assert!(failure.message.contains("is not empty") && failure.message.contains(&dir.display().to_string()));
        let (_, written) = run(export(), json!({ "output_dir": dir, "records": 2, "overwrite": true }));
        assert_eq!(written.unwrap()["files"].as_array().unwrap().len(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn without_an_output_dir_the_export_goes_into_the_work_dir() {
        let work_dir = temp_dir("work");
        std::fs::create_dir_all(&work_dir).unwrap();
        let host = Arc::new(RecordingHost::default().with_work_dir(&work_dir));
        let params = r#"{"records": 3, "format": "jsonl"}"#;
        let result = export().run(params, RuntimeContext::with_host(host.clone()));
        let result = result.unwrap();
        let exported = work_dir.join("export");
        assert_eq!(result["output_dir"], json!(exported));
        assert!(exported.join("part-0000.jsonl").is_file() && exported.join("manifest.json").is_file());
        let files: Vec<Option<String>> = host.logs().into_iter().map(|l| l.file).collect();
        assert!(files
            .iter()
            .all(|f| f.as_deref().unwrap().starts_with(&*work_dir.to_string_lossy())));
        std::fs::remove_dir_all(work_dir).unwrap();
    }

    #[test]
    fn without_an_output_dir_or_a_work_dir_the_export_goes_into_a_new_temp_folder() {
        let (_, first) = run(export(), json!({ "records": 1 }));
        let (_, second) = run(export(), json!({ "records": 1 }));
        let dirs: Vec<PathBuf> = [first, second]
            .into_iter()
            .map(|r| PathBuf::from(r.unwrap()["output_dir"].as_str().unwrap()))
            .collect();
        assert_ne!(dirs[0], dirs[1], "each run has a folder of its own");
        for dir in dirs {
            assert!(dir.starts_with(std::env::temp_dir()), "{}", dir.display());
            assert!(dir.join("manifest.json").is_file());
            std::fs::remove_dir_all(dir).unwrap();
        }
    }

    #[test]
    fn bad_params_name_the_field() {
        let (_, result) = run(export(), json!({ "output_dir": "/tmp/x", "format": "xml" }));
        assert!(result.unwrap_err().message.contains("format"));
    }
}
