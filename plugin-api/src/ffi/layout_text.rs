//! A readable text fingerprint of a boundary layout: every type reachable
//! from the given roots (through fields, function parameters and returns,
//! and the prefix types behind prefix references), with its size,
//! alignment, representation and fields, in the order they are reached.
//!
//! The layout snapshots under `plugin-api/abi/` are this text. It leaves out
//! what abi_stable records but does not mean a layout change: source lines,
//! module paths and the crate's version (which every release changes; the
//! version a snapshot is for is its file name and first line).

use std::collections::HashSet;
use std::fmt::Write;

use abi_stable::type_layout::{TLData, TLField, TLFunction, TypeLayout};

/// A named starting point of the fingerprint.
pub struct Root {
    pub label: &'static str,
    pub layout: &'static TypeLayout,
}

/// The fingerprint of everything reachable from `roots`, one type a block.
pub fn describe(roots: &[Root]) -> String {
    let mut text = String::new();
    for root in roots {
        let _ = writeln!(text, "root {}: {}", root.label, type_name(root.layout));
    }
    let mut seen = HashSet::new();
    let mut queue: Vec<&'static TypeLayout> = roots.iter().map(|r| r.layout).collect();
    queue.reverse();
    while let Some(layout) = queue.pop() {
        if !seen.insert(layout.get_utypeid()) {
            continue;
        }
        let reached = describe_type(&mut text, layout);
        queue.extend(reached.into_iter().rev());
    }
    text
}

/// Writes one type's block; returns the types it refers to, in order.
fn describe_type(text: &mut String, layout: &'static TypeLayout) -> Vec<&'static TypeLayout> {
    let _ = writeln!(
        text,
        "\ntype {} in {}: size {}, align {}, {:?}, {}",
        type_name(layout),
        layout.package(),
        layout.size(),
        layout.alignment(),
        layout.repr_attr(),
        kind(layout),
    );
    let mut reached = Vec::new();
    let fields = match layout.data() {
        TLData::Struct { fields } | TLData::Union { fields } => fields.iter().collect(),
        TLData::Enum(e) => e.fields.iter().collect(),
        TLData::PrefixType(p) => p.fields.iter().collect(),
        TLData::Primitive(_) | TLData::Opaque => Vec::new(),
    };
    for field in fields {
        describe_field(text, "field", &field, &mut reached);
    }
    for field in layout.phantom_fields().iter() {
        describe_field(text, "phantom", &field, &mut reached);
    }
    reached
}

fn kind(layout: &TypeLayout) -> String {
    match layout.data() {
        TLData::Primitive(p) => format!("primitive {p:?}"),
        TLData::Opaque => "opaque".to_owned(),
        TLData::Struct { .. } => "struct".to_owned(),
        TLData::Union { .. } => "union".to_owned(),
        TLData::Enum(e) => format!(
            "enum (variants {}; fields per variant {:?}; {:?})",
            e.variant_names.as_str().trim_end_matches(';'),
            e.field_count.as_slice(),
            e.exhaustiveness,
        ),
        TLData::PrefixType(p) => format!(
            "prefix type ({} prefix fields, the rest appended in minor versions)",
            p.first_suffix_field
        ),
    }
}

fn describe_field(text: &mut String, what: &str, field: &TLField, reached: &mut Vec<&'static TypeLayout>) {
    let layout = field.layout();
    let _ = write!(text, "  {what} {}: {}", field.name(), type_name(layout));
    reached.push(layout);
    for function in field.function_range().iter() {
        let _ = write!(text, " = {}", signature(&function, reached));
    }
    text.push('\n');
}

/// `fn(param: Type, ...) -> Type`, with the parameters' and return's types
/// added to `reached`.
fn signature(function: &TLFunction, reached: &mut Vec<&'static TypeLayout>) -> String {
    let names = function.param_names.as_str().split([',', ';']);
    let params: Vec<String> = function
        .param_type_layouts
        .iter()
        .zip(names.chain(std::iter::repeat("")))
        .map(|(layout, name)| {
            let layout = layout();
            reached.push(layout);
            match name {
                "" => type_name(layout),
                name => format!("{name}: {}", type_name(layout)),
            }
        })
        .collect();
    let returns = match function.return_type_layout() {
        Some(layout) => {
            let layout = layout();
            reached.push(layout);
            type_name(layout)
        }
        None => "()".to_owned(),
    };
    let qualifier = if function.fn_qualifs.is_unsafe() { "unsafe " } else { "" };
    format!("{qualifier}fn({}) -> {returns}", params.join(", "))
}

/// The type's name with its generic arguments, spaced once.
fn type_name(layout: &TypeLayout) -> String {
    layout
        .full_type()
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
