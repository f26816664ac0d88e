//! The environment an isolated child starts with: nothing of the shell's
//! but the few variables a program needs to run at all, plus the plugin's
//! own environment (what `ctx.env()` shows), so that a plugin, and every
//! library and program it uses, sees the same variables either way and no
//! secret of the shell leaks in.

use std::ffi::{OsStr, OsString};

use plugin_api::PluginEnvironment;

/// Variables passed through from the loader's environment, and why:
/// - `PATH`: programs the plugin starts are found as in the shell;
/// - `HOME`, `USER`, `LOGNAME`: libraries find their per-user config and
///   caches (`~/.cache`), and user look-ups agree with the process owner;
/// - `LANG`, `LANGUAGE`, `LC_*`, `TZ`: text encoding, messages and local
///   time as the user set them;
/// - `TMPDIR`: temporary files go where the user wants them;
/// - `LD_LIBRARY_PATH` (and `DYLD_LIBRARY_PATH` on macOS): the plugin
///   library's own native dependencies resolve as they would in the shell;
/// - `RUST_BACKTRACE`, `RUST_LIB_BACKTRACE`: panic reports as asked;
/// - `LOADER_LOG`: the loader's own diagnostics in the child.
///
/// Anything else a plugin needs is given to it explicitly (`--env`,
/// `--env-file`, `--env-prefix`), and then set in its process too.
pub const PASSED_THROUGH: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "LD_LIBRARY_PATH",
    "DYLD_LIBRARY_PATH",
    "RUST_BACKTRACE",
    "RUST_LIB_BACKTRACE",
    "LOADER_LOG",
];

/// Passed through by prefix: the locale categories.
pub const PASSED_THROUGH_PREFIX: &str = "LC_";

fn passed_through(name: &OsStr) -> bool {
    let name = name.to_string_lossy();
    PASSED_THROUGH.contains(&name.as_ref()) || name.starts_with(PASSED_THROUGH_PREFIX)
}

/// The child's whole environment: the passed-through variables of `from`
/// (the loader's environment), then the plugin's variables, which win.
/// Plugin variables no process environment can hold (an empty name, `=`
/// in a name, a NUL byte) stay visible through `ctx.env()` only.
pub fn child_environment(
    from: impl IntoIterator<Item = (OsString, OsString)>,
    plugin: &PluginEnvironment,
) -> Vec<(OsString, OsString)> {
    let mut vars: Vec<(OsString, OsString)> = from.into_iter().filter(|(name, _)| passed_through(name)).collect();
    for (name, value) in plugin.iter() {
        let valid = !name.is_empty() && !name.contains(['=', '\0']) && !value.contains('\0');
        if valid {
            vars.retain(|(existing, _)| existing != name);
            vars.push((name.into(), value.into()));
        }
    }
    vars
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn os(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs.iter().map(|(k, v)| (k.into(), v.into())).collect()
    }

    #[test]
    fn only_the_listed_variables_and_the_plugins_own_get_through() {
        let shell = os(&[
            ("PATH", "/usr/bin"),
            ("AWS_SECRET_ACCESS_KEY", "hunter2"),
            ("LC_TIME", "C"),
            ("SYNAPSE_TOKEN", "t"),
            ("HOME", "/home/me"),
        ]);
        let plugin = PluginEnvironment::new(BTreeMap::from([
            ("SYNAPSE_TOKEN".to_owned(), "t".to_owned()),
            ("HOME".to_owned(), "/plugin/home".to_owned()),
            ("BAD=NAME".to_owned(), "x".to_owned()),
        ]));
        let env = child_environment(shell, &plugin);
        assert_eq!(
            env,
            os(&[
                ("PATH", "/usr/bin"),
                ("LC_TIME", "C"),
                ("HOME", "/plugin/home"),
                ("SYNAPSE_TOKEN", "t"),
            ])
        );
    }
}
