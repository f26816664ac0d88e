//! `loader new`: writes a plugin crate that builds with one `cargo build`
//! (a `Cargo.toml` depending on plugin-api by path, an action of the chosen
//! kind with a unit test on `RecordingHost`, a README line). The files are
//! the templates in `loader/templates/`.

use std::path::{Path, PathBuf};

use crate::cli::NewArgs;
use crate::exit_code::CliError;

const CARGO_TOML: &str = include_str!("../../../../templates/Cargo.toml.tmpl");
const README: &str = include_str!("../../../../templates/README.md.tmpl");
const FUNCTION_ACTION: &str = include_str!("../../../../templates/function.rs.tmpl");
const CLASS_ACTION: &str = include_str!("../../../../templates/class.rs.tmpl");
const WORKFLOW_ACTION: &str = include_str!("../../../../templates/workflow.rs.tmpl");

/// The plugin-api this loader was built from, if its sources are still there.
const BUILT_FROM_API: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugin-api");

/// What kind of action the new plugin starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Function,
    Class,
    Workflow,
}

impl Kind {
    fn template(self) -> &'static str {
        match self {
            Kind::Function => FUNCTION_ACTION,
            Kind::Class => CLASS_ACTION,
            Kind::Workflow => WORKFLOW_ACTION,
        }
    }

    fn action(self) -> &'static str {
        match self {
            Kind::Function => "train",
            Kind::Class => "export",
            Kind::Workflow => "train_pipeline",
        }
    }
}

/// What `loader new` created.
#[derive(Debug)]
pub struct Created {
    /// The crate's folder.
    pub dir: PathBuf,
    /// The plugin's code (the crate's name).
    pub name: String,
    /// The action it starts with.
    pub action: &'static str,
}

impl Created {
    /// What to do next: test, build and run the plugin, as commands, the
    /// loader run as `loader` (see [`loader_command`]).
    pub fn next_steps(&self, loader: &str) -> String {
        format!(
            "created plugin `{name}` in `{dir}`\n\
             next:\n  \
             cd {dir}\n  \
             cargo test        # its unit test, on RecordingHost\n  \
             cargo build       # the plugin library, into target/debug\n  \
             {loader} --plugins target/debug run {name} {action}\n",
            name = self.name,
            dir = self.dir.display(),
            action = self.action,
        )
    }
}

/// How to run this loader from the new crate's folder: `loader` when that
/// name on `PATH` is this program, else its full path (a loader built in a
/// clone is usually not on `PATH`).
pub fn loader_command() -> String {
    let Ok(this) = std::env::current_exe().and_then(|exe| exe.canonicalize()) else {
        return "loader".to_owned();
    };
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| dir.join("loader").canonicalize().is_ok_and(|found| found == this))
    });
    if on_path {
        "loader".to_owned()
    } else {
        this.display().to_string()
    }
}

/// Runs `loader new`: PATH (under `--path` if given) becomes the crate's
/// folder, named after its last part as `cargo new` does.
pub fn new_plugin(args: &NewArgs) -> Result<Created, CliError> {
    let dir = match &args.path {
        Some(parent) => parent.join(&args.dir),
        None => args.dir.clone(),
    };
    let name = match &args.name {
        Some(name) => name.clone(),
        None => dir
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
            .ok_or_else(|| {
                CliError::usage(format!("`{}` does not end in a folder name", dir.display()))
                    .with_help("give the new folder's path, e.g. `loader new plugins/my-plugin`")
            })?,
    };
    check_name(&name)?;
    let kind = match (args.class, args.workflow) {
        (true, _) => Kind::Class,
        (_, true) => Kind::Workflow,
        _ => Kind::Function,
    };
    if dir.exists() && !dir.is_dir() {
        return Err(
            CliError::usage(format!("`{}` already exists and is not a folder", dir.display()))
                .with_help("choose another path"),
        );
    }
    if dir.read_dir().is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(
            CliError::usage(format!("`{}` already exists and is not empty", dir.display()))
                .with_help("choose another path: `loader new` writes only into a new or empty folder"),
        );
    }
    let parent = match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    let api = api_path(args.api_path.as_deref(), &parent)?;
    let files = render(&name, kind, &api);
    std::fs::create_dir_all(dir.join("src"))
        .map_err(|e| CliError::usage(format!("cannot create `{}`", dir.display())).with_causes(vec![e.to_string()]))?;
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| {
            CliError::usage(format!("cannot write `{}`", path.display())).with_causes(vec![e.to_string()])
        })?;
        tracing::debug!("wrote {}", path.display());
    }
    Ok(Created {
        dir,
        name,
        action: kind.action(),
    })
}

/// The files of the crate, relative to its folder.
pub fn render(name: &str, kind: Kind, api_path: &Path) -> Vec<(&'static str, String)> {
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{title}}", &title(name))
            .replace("{{action}}", kind.action())
            .replace("{{api_path}}", &toml_path(api_path))
    };
    vec![
        ("Cargo.toml", fill(CARGO_TOML)),
        ("README.md", fill(README)),
        ("src/lib.rs", fill(kind.template())),
        (".gitignore", "/target\nCargo.lock\n".to_owned()),
    ]
}

/// A crate name cargo accepts and a plugin code people can type.
fn check_name(name: &str) -> Result<(), CliError> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err(CliError::usage(format!("`{name}` cannot be a plugin name"))
            .with_help("use letters, digits, '-' and '_', starting with a letter (e.g. my-plugin)"))
    }
}

/// `my-plugin` → `My plugin`.
fn title(name: &str) -> String {
    let words = name.replace(['-', '_'], " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The plugin-api to depend on: `--api-path`, else the repository's when
/// `near` is inside it, else the one this loader was built from.
fn api_path(given: Option<&Path>, near: &Path) -> Result<PathBuf, CliError> {
    let candidate = match given {
        Some(path) => Some(path.to_owned()),
        None => repository_api(near).or_else(|| Some(PathBuf::from(BUILT_FROM_API))),
    };
    let found = candidate
        .filter(|path| path.join("Cargo.toml").is_file())
        .and_then(|path| path.canonicalize().ok());
    found.ok_or_else(|| {
        CliError::usage("cannot find the plugin-api crate to depend on")
            .with_help("pass the folder of plugin-api's Cargo.toml with --api-path DIR")
    })
}

/// `plugin-api/` in `near` or a folder above it (`near` may not exist yet:
/// the search starts at its nearest existing folder).
fn repository_api(near: &Path) -> Option<PathBuf> {
    let start = near.ancestors().find_map(|dir| {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        dir.canonicalize().ok()
    })?;
    start
        .ancestors()
        .map(|dir| dir.join("plugin-api"))
        .find(|api| api.join("Cargo.toml").is_file())
}

/// A path as a TOML basic string's content.
fn toml_path(path: &Path) -> String {
    path.display().to_string().replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_titles_and_bad_names_are_refused() {
        assert_eq!(title("my-plugin"), "My plugin");
        assert_eq!(title("image_tools"), "Image tools");
        assert!(check_name("my-plugin2").is_ok());
        for bad in ["", "2fast", "my plugin", "../escape", "a/b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_placeholder_is_filled() {
        for kind in [Kind::Function, Kind::Class, Kind::Workflow] {
            for (file, text) in render("my-plugin", kind, Path::new("/x/plugin-api")) {
                assert!(!text.contains("{{"), "{file} of {kind:?}: {text}");
            }
        }
        let files = render("my-plugin", Kind::Class, Path::new("/x/plugin-api"));
        assert!(files[0].1.contains(r#"plugin-api = { path = "/x/plugin-api" }"#));
        assert!(files[2].1.contains("impl BaseAction for Export"));
    }

    #[test]
    fn the_repository_plugin_api_is_found_from_inside_it() {
        let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let api = repository_api(&here).unwrap();
        assert_eq!(api, Path::new(BUILT_FROM_API).canonicalize().unwrap());
        let not_yet = here.join("plugins/not-yet-made");
        assert_eq!(repository_api(&not_yet), Some(api));
    }

    #[test]
    fn an_api_path_without_a_crate_is_refused_with_help() {
        let empty = tempfile::tempdir().unwrap();
        let error = api_path(Some(empty.path()), Path::new(".")).unwrap_err();
        assert!(error.help.unwrap().contains("--api-path"));
        let given = api_path(Some(Path::new(BUILT_FROM_API)), Path::new("/")).unwrap();
        assert!(given.join("Cargo.toml").is_file());
    }

    #[test]
    fn a_non_empty_folder_is_not_overwritten() {
        let parent = tempfile::tempdir().unwrap();
        std::fs::create_dir(parent.path().join("taken")).unwrap();
        std::fs::write(parent.path().join("taken/keep.txt"), "mine").unwrap();
        let args = NewArgs {
            dir: "taken".into(),
            name: None,
            class: false,
            workflow: false,
            path: Some(parent.path().to_owned()),
            api_path: None,
        };
        let error = new_plugin(&args).unwrap_err();
        assert!(
            error.message.ends_with("taken` already exists and is not empty"),
            "{}",
            error.message
        );
        assert_eq!(
            std::fs::read_to_string(parent.path().join("taken/keep.txt")).unwrap(),
            "mine"
        );
    }

    #[test]
    fn the_crate_is_named_after_the_last_part_of_its_path() {
        let parent = tempfile::tempdir().unwrap();
        let args = NewArgs {
            dir: parent.path().join("nested/deeper/my-plugin"),
            name: None,
            class: false,
            workflow: false,
            path: None,
            api_path: Some(PathBuf::from(BUILT_FROM_API)),
        };
        let created = new_plugin(&args).unwrap();
        assert_eq!(created.name, "my-plugin");
        let manifest = std::fs::read_to_string(created.dir.join("Cargo.toml")).unwrap();
        assert!(manifest.contains(r#"name = "my-plugin""#), "{manifest}");
        let steps = created.next_steps("loader");
        for step in [
            "cargo test",
            "cargo build",
            "loader --plugins target/debug run my-plugin train",
        ] {
            assert!(steps.contains(step), "{step} in {steps}");
        }

        let renamed = NewArgs {
            dir: parent.path().join("other"),
            name: Some("renamed".into()),
            ..args
        };
        assert_eq!(new_plugin(&renamed).unwrap().name, "renamed");
    }
}
