//! What a job's entrypoint reserves on the cluster: the resources the
//! action declares in its manifest, overridden field by field (custom
//! resources name by name) by the run's flags, each side checked before
//! anything is submitted.

use std::path::{Path, PathBuf};

use plugin_api::{ActionResources, ResourceError};

/// Resources nobody should submit.
#[derive(Debug, thiserror::Error)]
pub enum ResourcesError {
    #[error("{}: action {action:?} declares {source} (fix the plugin, or override it with a flag)", .library.display())]
    Declared {
        library: PathBuf,
        action: String,
        source: ResourceError,
    },
    #[error("{flag} {value}: {problem}")]
    Flag {
        flag: String,
        value: String,
        problem: String,
    },
}

/// The flag that sets a resource field.
fn flag_of(field: &str) -> String {
    match field.strip_prefix("resources.") {
        Some(name) => format!("--resources {name:?}:"),
        None => format!("--{}", field.replace('_', "-")),
    }
}

/// The job's resources: `declared` (from the action in `library`), with
/// every field `flags` sets taking precedence. A declared field that a
/// flag overrides is not used, so a flag is the way around a plugin that
/// declares something wrong.
pub fn job_resources(
    declared: &ActionResources,
    flags: &ActionResources,
    library: &Path,
    action: &str,
) -> Result<ActionResources, ResourcesError> {
    flags.check().map_err(|e| ResourcesError::Flag {
        flag: flag_of(&e.field),
        value: e.value,
        problem: e.problem,
    })?;
    let mut resources = declared.resources.clone();
    resources.extend(flags.resources.iter().map(|(name, amount)| (name.clone(), *amount)));
    let merged = ActionResources {
        num_cpus: flags.num_cpus.or(declared.num_cpus),
        num_gpus: flags.num_gpus.or(declared.num_gpus),
        memory: flags.memory.or(declared.memory),
        resources,
    };
    // The flags passed their check: what fails now was declared.
    merged.check().map_err(|source| ResourcesError::Declared {
        library: library.to_owned(),
        action: action.to_owned(),
        source,
    })?;
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn library() -> &'static Path {
        Path::new("plugins/libtrainer.so")
    }

    #[test]
    fn the_manifest_fills_what_no_flag_sets_and_flags_win_field_by_field() {
        let declared = ActionResources::new()
            .num_cpus(1.0)
            .num_gpus(1.0)
            .resource("accelerator", 1.0)
            .resource("disk", 2.0);
        let flags = ActionResources::new()
            .num_cpus(0.5)
            .memory(1 << 20)
            .resource("disk", 4.0);
        let job = job_resources(&declared, &flags, library(), "train").unwrap();
        assert_eq!(job.num_cpus, Some(0.5));
        assert_eq!(job.num_gpus, Some(1.0));
        assert_eq!(job.memory, Some(1 << 20));
        assert_eq!(job.resources["accelerator"], 1.0);
        assert_eq!(job.resources["disk"], 4.0);
        let none = job_resources(&ActionResources::new(), &ActionResources::new(), library(), "train").unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn a_bad_declaration_names_the_plugin_file_the_action_and_the_field() {
        let declared = ActionResources::new().num_cpus(f64::NAN);
        let error = job_resources(&declared, &ActionResources::new(), library(), "train").unwrap_err();
        let text = error.to_string();
        for part in [
            "plugins/libtrainer.so",
            "\"train\"",
            "resources.num_cpus = NaN",
            "not a finite number",
        ] {
            assert!(text.contains(part), "{part} missing in {text}");
        }
        let overridden = job_resources(&declared, &ActionResources::new().num_cpus(1.0), library(), "train");
        assert_eq!(
            overridden.unwrap().num_cpus,
            Some(1.0),
            "a flag overrides a broken declaration"
        );
    }

    #[test]
    fn a_bad_flag_is_named_as_the_user_typed_it() {
        let text = |flags: ActionResources| {
            job_resources(&ActionResources::new(), &flags, library(), "train")
                .unwrap_err()
                .to_string()
        };
        assert_eq!(text(ActionResources::new().num_gpus(-2.0)), "--num-gpus -2: negative");
        assert!(text(ActionResources::new().memory(u64::MAX)).starts_with("--memory 18446744073709551615: more than"));
        assert!(text(ActionResources::new().resource("CPU", 1.0)).contains("its own field, num_cpus"));
        assert!(text(ActionResources::new().resource("tpu", 1e9)).starts_with("--resources \"tpu\": 1000000000"));
    }
}
