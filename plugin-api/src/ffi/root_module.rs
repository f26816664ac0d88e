//! The root module a plugin library exports: the `extern "C"` entry points
//! of [`PluginModule`], which catch every panic before it can reach the
//! boundary and report it as a failed action carrying the panic's message
//! and location.
//!
//! The entry points are generic over [`PluginExports`], what a plugin serves
//! through them (manifest, params validation, action runs, as JSON text).
//! This layer does not know how an author builds a plugin: the author-facing
//! `export` module implements [`PluginExports`] for what `export_plugin!`
//! declares.

use abi_stable::library::{__call_root_module_loader, CheckTypeLayout, LibHeader, RootModuleResult};
use abi_stable::prefix_type::WithMetadata;
use abi_stable::staticref;
use abi_stable::std_types::{RResult, RStr, RString};

use super::panics::catch_panic_message;
use super::plugin_side::HostHandle;
use super::{HostContext, PluginModule, PluginModuleRef};
use crate::failure::ActionFailure;

/// The symbol abi_stable looks a root module up by (checked by a unit test
/// against `abi_stable::library::ROOT_MODULE_LOADER_NAME`).
pub const ROOT_MODULE_SYMBOL: &str = "_1as_0lib_1header_0root_bmodule_bloader";

/// What a plugin library serves through its root module. Each function runs
/// inside the entry point's panic catcher.
pub trait PluginExports: 'static {
    /// Whether the manifest can be served: the reason it cannot (a
    /// declaration that does not validate, such as permissions) otherwise.
    /// Both manifest entry points answer with this error instead of a
    /// manifest, so a host reports the plugin as broken rather than act on
    /// a declaration it cannot honour. Added in 1.3; `Ok` by default.
    fn check_manifest() -> Result<(), String> {
        Ok(())
    }
    /// The manifest as JSON, with every action's schemas.
    fn manifest_json() -> String;
    /// The manifest as JSON, without schemas.
    fn summary_json() -> String;
    /// Runs `action` with params given as JSON; the result as JSON.
    fn run_action(action: &str, params_json: &str, host: HostHandle) -> Result<String, ActionFailure>;
    /// Checks params given as JSON for `action` without running it.
    fn validate_params(action: &str, params_json: &str) -> Result<(), ActionFailure>;
}

/// The library header a plugin exports under [`ROOT_MODULE_SYMBOL`]
/// (see [`__export_root_module!`](crate::__export_root_module)).
pub const fn lib_header<E: PluginExports>() -> LibHeader {
    // SAFETY: `construct_root_module::<E>` returns the root module produced
    // by `__call_root_module_loader` for a `PluginModuleRef`, the type given
    // here, which is what `from_constructor` requires.
    unsafe { LibHeader::from_constructor::<PluginModuleRef>(construct_root_module::<E>, CheckTypeLayout::Yes) }
}

/// Declares the exported root-module static for `$exports`, a type that
/// implements [`PluginExports`]. Used by `export_plugin!`; not by hand.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_root_module {
    ($exports:ty) => {
        /// The root module abi_stable looks up (see `ffi::root_module`).
        #[doc(hidden)]
        // SAFETY: the symbol is abi_stable's root-module symbol (checked by
        // a unit test against `ROOT_MODULE_LOADER_NAME`) and holds the type
        // abi_stable reads there, a `LibHeader`; a library defines it once
        // (a second use of the macro defines the symbol twice, which fails
        // to build).
        #[unsafe(export_name = "_1as_0lib_1header_0root_bmodule_bloader")]
        pub static __PLUGIN_API_ROOT_MODULE: $crate::__private::LibHeader =
            $crate::ffi::root_module::lib_header::<$exports>();
    };
}

extern "C" fn construct_root_module<E: PluginExports>() -> RootModuleResult {
    __call_root_module_loader(ModuleFor::<E>::module)
}

struct ModuleFor<E>(std::marker::PhantomData<E>);

impl<E: PluginExports> ModuleFor<E> {
    staticref!(const VALUE: WithMetadata<PluginModule> = WithMetadata::new(PluginModule {
        manifest: manifest::<E>,
        run_action: run_action::<E>,
        validate_params: validate_params::<E>,
        manifest_summary: manifest_summary::<E>,
    }));

    fn module() -> PluginModuleRef {
        PluginModuleRef(Self::VALUE.as_prefix())
    }
}

extern "C" fn manifest<E: PluginExports>() -> RResult<RString, RString> {
    serve_manifest::<E>(E::manifest_json)
}

extern "C" fn manifest_summary<E: PluginExports>() -> RResult<RString, RString> {
    serve_manifest::<E>(E::summary_json)
}

/// A manifest as `json` writes it, once [`PluginExports::check_manifest`]
/// passed; its error, or a panic's message, otherwise.
fn serve_manifest<E: PluginExports>(json: fn() -> String) -> RResult<RString, RString> {
    match catch_panic(|| E::check_manifest().map(|()| json())) {
        Ok(Ok(json)) => RResult::ROk(json.into()),
        Ok(Err(refused)) => RResult::RErr(refused.into()),
        Err(failure) => RResult::RErr(failure.message.into()),
    }
}

extern "C" fn run_action<E: PluginExports>(
    context: HostContext,
    action: RStr<'_>,
    params: RStr<'_>,
) -> RResult<RString, RString> {
    let outcome = catch_panic(|| E::run_action(action.as_str(), params.as_str(), HostHandle::new(context)))
        .and_then(|result| result);
    match outcome {
        Ok(result) => RResult::ROk(result.into()),
        Err(failure) => RResult::RErr(failure.to_json().into()),
    }
}

extern "C" fn validate_params<E: PluginExports>(action: RStr<'_>, params: RStr<'_>) -> RResult<(), RString> {
    match catch_panic(|| E::validate_params(action.as_str(), params.as_str())).and_then(|r| r) {
        Ok(()) => RResult::ROk(()),
        Err(failure) => RResult::RErr(failure.to_json().into()),
    }
}

/// Runs `f`, turning a panic into a failure with the panic's message and
/// location.
fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, ActionFailure> {
    catch_panic_message(f).map_err(ActionFailure::panicked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::FailureKind;

    /// A plugin that serves fixed answers, and panics where it is asked to.
    struct Fixed;

    impl PluginExports for Fixed {
        fn manifest_json() -> String {
            r#"{"code":"fixed"}"#.to_owned()
        }
        fn summary_json() -> String {
            panic!("summary exploded")
        }
        fn run_action(action: &str, _: &str, _: HostHandle) -> Result<String, ActionFailure> {
            Err(ActionFailure::new(FailureKind::UnknownAction, action))
        }
        fn validate_params(action: &str, params_json: &str) -> Result<(), ActionFailure> {
            match action {
                "ok" => Ok(()),
                _ => panic!("cannot validate {params_json}"),
            }
        }
    }

    /// A plugin whose declarations do not validate.
    struct Refusing;

    impl PluginExports for Refusing {
        fn check_manifest() -> Result<(), String> {
            Err("permissions.read entry \"data\": a relative path".to_owned())
        }
        fn manifest_json() -> String {
            unreachable!("a refused manifest is never written")
        }
        fn summary_json() -> String {
            unreachable!("a refused manifest is never written")
        }
        fn run_action(_: &str, _: &str, _: HostHandle) -> Result<String, ActionFailure> {
            Ok("{}".to_owned())
        }
        fn validate_params(_: &str, _: &str) -> Result<(), ActionFailure> {
            Ok(())
        }
    }

    #[test]
    fn a_manifest_whose_declarations_do_not_validate_is_refused_with_the_reason() {
        for served in [manifest::<Refusing>(), manifest_summary::<Refusing>()] {
            assert_eq!(
                served,
                RResult::RErr("permissions.read entry \"data\": a relative path".into())
            );
        }
    }

    #[test]
    fn answers_cross_as_json_text() {
        assert_eq!(manifest::<Fixed>().unwrap(), r#"{"code":"fixed"}"#);
        assert_eq!(validate_params::<Fixed>("ok".into(), "{}".into()), RResult::ROk(()));
    }

    #[test]
    fn a_panic_in_a_manifest_comes_back_as_its_message() {
        let message = manifest_summary::<Fixed>().unwrap_err();
        assert!(
            message.starts_with("the action panicked: summary exploded (at "),
            "{message}"
        );
    }

    #[test]
    fn a_panic_in_an_entry_point_comes_back_as_a_panicked_failure() {
        let failure = validate_params::<Fixed>("other".into(), "[1]".into()).unwrap_err();
        let failure = ActionFailure::from_json(&failure);
        assert_eq!(failure.kind, FailureKind::Panicked);
        assert!(failure.message.contains("cannot validate [1]"), "{}", failure.message);
    }
}
