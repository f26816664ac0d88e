//! Checking a plugin's layout against a released one, and saying in one
//! line what differs: abi_stable's own report prints every type on the way
//! to the mismatch, hundreds of lines, and calls a missing field "too many
//! fields". This keeps the path of field names from the root module to the
//! mismatch, and the mismatch in words.

use abi_stable::abi_stability::abi_checking::{
    check_layout_compatibility, AbiInstability, AbiInstabilityError, AbiInstabilityErrors,
};
use abi_stable::type_layout::{TLData, TLField, TLFieldOrFunction, TLFunction, TypeLayout};

/// Checks `plugin` (a library's root module layout) against `expected`
/// (the layout of the release it declares); the difference, in words.
pub fn check(expected: &'static TypeLayout, plugin: &'static TypeLayout) -> Result<(), String> {
    check_layout_compatibility(expected, plugin).map_err(|errors| describe(&errors))
}

/// One line: the path to each mismatch and what differs there.
pub fn describe(errors: &AbiInstabilityErrors) -> String {
    let found: Vec<String> = errors
        .errors
        .iter()
        .filter_map(|error| describe_error(errors, error))
        .collect();
    if found.is_empty() {
        return "abi_stable reports a difference it does not describe".to_owned();
    }
    let mut unique = Vec::new();
    for line in found {
        if !unique.contains(&line) {
            unique.push(line);
        }
    }
    unique.join("; ")
}

fn describe_error(all: &AbiInstabilityErrors, error: &AbiInstabilityError) -> Option<String> {
    let path = field_path(error);
    let (expected_type, found_type) = match error.stack_trace.last() {
        Some(last) => (layout_of(&last.expected), layout_of(&last.found)),
        None => (Some(all.interface), Some(all.implementation)),
    };
    let what: Vec<String> = error
        .errs
        .iter()
        .filter_map(|e| describe_instability(e, expected_type, found_type))
        .collect();
    if what.is_empty() {
        return None;
    }
    Some(match path.is_empty() {
        true => format!("root module: {}", what.join(", ")),
        false => format!("at {path}: {}", what.join(", ")),
    })
}

/// The field names from the root module down to the mismatch, joined with
/// dots; a function parameter is `(parameter N)`, a return `(return)`.
fn field_path(error: &AbiInstabilityError) -> String {
    let mut path: Vec<String> = Vec::new();
    let mut function: Option<&TLFunction> = None;
    for step in &error.stack_trace {
        match (&step.found, function.take()) {
            (TLFieldOrFunction::Function(f), _) => function = Some(f),
            (TLFieldOrFunction::Field(field), Some(f)) => path.push(parameter_name(f, field)),
            (TLFieldOrFunction::Field(field), None) => {
                let name = field.name();
                if name.chars().any(char::is_alphabetic) {
                    path.push(name.to_owned());
                }
            }
        }
    }
    path.join(".").replace(".(", " (")
}

/// `(parameter N)` (counted from 1) or `(return)` for a field of a function
/// signature.
fn parameter_name(function: &TLFunction, field: &TLField) -> String {
    if field.name() == "__returns" {
        return "(return)".to_owned();
    }
    let layout: *const TypeLayout = field.layout();
    function
        .param_type_layouts
        .iter()
        .position(|param| std::ptr::eq(param(), layout))
        .map(|index| format!("(parameter {})", index + 1))
        .unwrap_or_else(|| "(a parameter)".to_owned())
}

fn layout_of(step: &TLFieldOrFunction) -> Option<&'static TypeLayout> {
    match step {
        TLFieldOrFunction::Field(field) => Some(field.layout()),
        TLFieldOrFunction::Function(_) => None,
    }
}

fn field_names(layout: &TypeLayout) -> Vec<&'static str> {
    let fields = match layout.data() {
        TLData::Struct { fields } | TLData::Union { fields } => fields,
        TLData::PrefixType(prefix) => prefix.fields,
        TLData::Enum(e) => e.fields,
        TLData::Primitive(_) | TLData::Opaque => return Vec::new(),
    };
    fields.iter().map(|f| f.name()).collect()
}

fn describe_instability(
    instability: &AbiInstability,
    expected: Option<&'static TypeLayout>,
    found: Option<&'static TypeLayout>,
) -> Option<String> {
    use AbiInstability as AI;
    let pair =
        |what: &str, e: &dyn std::fmt::Display, f: &dyn std::fmt::Display| format!("{what}: expected {e}, found {f}");
    Some(match instability {
        AI::FieldCountMismatch(counts) => {
            let type_name = expected.map(|t| format!("`{}` ", t.name())).unwrap_or_default();
            let mut text = format!(
                "the plugin's {type_name}has {} fields where the release has {}",
                counts.found, counts.expected
            );
            if let (Some(expected), Some(found)) = (expected, found) {
                let theirs = field_names(found);
                let missing: Vec<&str> = field_names(expected)
                    .into_iter()
                    .filter(|name| !theirs.contains(name))
                    .collect();
                if !missing.is_empty() {
                    text.push_str(&format!(" (missing: {})", missing.join(", ")));
                }
            }
            text
        }
        AI::UnexpectedField(fields) => format!(
            "a field is named `{}` where the release has `{}`",
            fields.found.name(),
            fields.expected.name()
        ),
        AI::Name(names) => pair("a different type", &names.expected, &names.found),
        AI::MismatchedPrimitive(p) => pair(
            "a different type",
            &format_args!("{:?}", p.expected),
            &format_args!("{:?}", p.found),
        ),
        AI::Size(sizes) => pair("a different size", &sizes.expected, &sizes.found),
        AI::Alignment(aligns) => pair("a different alignment", &aligns.expected, &aligns.found),
        AI::MismatchedPrefixSize(sizes) => format!(
            "{} fields before the last one fixed at 1.0 where the release has {}",
            sizes.found, sizes.expected
        ),
        AI::Package(packages) => pair("a different package", &packages.expected, &packages.found),
        AI::PackageVersion(versions) => pair("an incompatible package version", &versions.expected, &versions.found),
        AI::TooManyVariants(counts) => pair("a different number of variants", &counts.expected, &counts.found),
        AI::UnexpectedVariant(names) => pair("a different variant", &names.expected, &names.found),
        AI::ReprAttr(reprs) => pair(
            "a different representation",
            &format_args!("{:?}", reprs.expected),
            &format_args!("{:?}", reprs.found),
        ),
        AI::TLDataDiscriminant(kinds) => pair(
            "a different kind of type",
            &format_args!("{:?}", kinds.expected),
            &format_args!("{:?}", kinds.found),
        ),
        AI::FnQualifierMismatch(_) => "a function with different qualifiers (unsafe)".to_owned(),
        AI::FieldLifetimeMismatch(_) | AI::FnLifetimeMismatch(_) => "different lifetimes".to_owned(),
        other => format!("{other:?}"),
    })
}

#[cfg(test)]
mod tests {
    use abi_stable::StableAbi;

    use super::super::{test_layouts, v1_0, v1_1};
    use super::*;

    #[test]
    fn a_missing_field_is_named_and_counted_the_right_way_round() {
        let difference = check(v1_1::PluginModuleRef::LAYOUT, v1_0::PluginModuleRef::LAYOUT).unwrap_err();
        assert!(
            difference.contains("has 2 fields where the release has 4")
                && difference.contains("missing: validate_params, manifest_summary"),
            "{difference}"
        );
        assert!(!difference.contains("too many"), "{difference}");
        assert_eq!(difference.lines().count(), 1, "{difference}");
    }

    #[test]
    fn a_changed_parameter_is_reported_with_its_field_path() {
        let difference = check(
            v1_1::PluginModuleRef::LAYOUT,
            test_layouts::changed_parameter::PluginModuleRef::LAYOUT,
        )
        .unwrap_err();
        assert!(
            difference.contains("run_action (parameter 1).vtable.set_progress (parameter 3)")
                && difference.contains("expected u64, found u32"),
            "{difference}"
        );
        assert_eq!(difference.lines().count(), 1, "{difference}");
    }

    #[test]
    fn a_newer_layout_that_only_appends_passes() {
        check(v1_0::PluginModuleRef::LAYOUT, v1_1::PluginModuleRef::LAYOUT).unwrap();
        check(v1_1::PluginModuleRef::LAYOUT, v1_1::PluginModuleRef::LAYOUT).unwrap();
    }
}
