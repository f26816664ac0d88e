//! `loader grant`: records, lists and revokes a plugin's permissions.

use crate::cli::GrantArgs;
use crate::exit_code::{CliError, ExitCode};
use crate::plugin_folder::PluginFolder;
use crate::sandbox_grants::{grant_book, permission_lines};
use crate::stdout::outln;

/// `loader grant`.
pub fn grant(folder: impl FnOnce() -> Result<PluginFolder, CliError>, args: &GrantArgs) -> Result<ExitCode, CliError> {
    let mut book = grant_book(args.state_dir.as_deref())?;
    if args.list {
        if book.all().is_empty() {
            outln!("no grants recorded in `{}`", book.path().display());
        }
        for (code, grant) in book.all() {
            outln!("{code} (granted {})", grant.granted_at);
            for line in permission_lines(&grant.permissions) {
                outln!("  {line}");
            }
        }
        return Ok(ExitCode::Success);
    }
    let name = args.plugin.as_deref().unwrap_or_default();
    if args.revoke {
        let code = match book.recorded(name) {
            Some(_) => name.to_owned(),
            None => folder()?.describe(name)?.manifest.code.clone(),
        };
        return if book
            .revoke(&code)
            .map_err(|e| CliError::new(ExitCode::ActionFailed, e.to_string()))?
        {
            eprintln!("revoked the permissions granted to {code}");
            Ok(ExitCode::Success)
        } else {
            Err(CliError::new(
                ExitCode::NotFound,
                format!("no grant recorded for {code:?}"),
            ))
        };
    }
    let plugin = folder()?.describe(name)?;
    let manifest = &plugin.manifest;
    let lines = permission_lines(&manifest.permissions);
    if lines.is_empty() {
        eprintln!(
            "{} declares no permissions beyond the sandbox's defaults; nothing to grant",
            manifest.code
        );
        return Ok(ExitCode::Success);
    }
    let now = loader::events::time::Rfc3339::new(std::time::SystemTime::now())
        .as_str()
        .to_owned();
    book.grant(&manifest.code, manifest.permissions.clone(), now)
        .map_err(|e| CliError::new(ExitCode::ActionFailed, e.to_string()))?;
    eprintln!("granted {} (`{}`):", manifest.code, plugin.path.display());
    for line in lines {
        eprintln!("  {line}");
    }
    eprintln!("a version that declares a different set will need granting again");
    Ok(ExitCode::Success)
}
