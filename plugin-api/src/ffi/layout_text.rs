//! A readable text fingerprint of a boundary layout: every type reachable
//! from the given roots (through fields, function parameters and returns,
//! and the prefix types behind prefix references), with its size,
//! alignment, representation and fields, in the order they are reached.
//!
//! The layout snapshots under `plugin-api/abi/` are this text. It leaves out
//! what abi_stable records but does not mean a layout change: source lines,
//! module paths and the crate's version (which every release changes; the
//! version a snapshot is for is its file name and first line).
//!
//! abi_stable names some generic types without their arguments (`RResult`
//! for both `RResult<(), RString>` and `RResult<RString, RString>`), so
//! distinct types with the same name are told apart by the order they are
//! reached in: `RResult`, `RResult#2`, ... Which of them a field refers to
//! is then part of the text.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Write;

use abi_stable::std_types::UTypeId;
use abi_stable::type_layout::{TLData, TLField, TLFunction, TypeLayout};

/// A named starting point of the fingerprint.
pub struct Root {
    /// The name the fingerprint's `root` line gives this starting point.
    pub label: &'static str,
    /// The layout described, with every type it reaches.
    pub layout: &'static TypeLayout,
}

/// The fingerprint of everything reachable from `roots`, one type a block.
pub fn describe(roots: &[Root]) -> String {
    let order = reachable(roots.iter().map(|r| r.layout));
    let names = Names::assign(&order);
    let mut text = String::new();
    for root in roots {
        let _ = writeln!(text, "root {}: {}", root.label, names.of(root.layout));
    }
    for layout in order {
        describe_type(&mut text, layout, &names);
    }
    text
}

/// Every type reachable from `roots`, each once, breadth first.
fn reachable(roots: impl Iterator<Item = &'static TypeLayout>) -> Vec<&'static TypeLayout> {
    let mut order: Vec<&'static TypeLayout> = Vec::new();
    let mut seen = HashSet::new();
    let mut queue: VecDeque<&'static TypeLayout> = roots.collect();
    while let Some(layout) = queue.pop_front() {
        if seen.insert(layout.get_utypeid()) {
            order.push(layout);
            queue.extend(references(layout));
        }
    }
    order
}

/// The types a type refers to, in field order.
fn references(layout: &'static TypeLayout) -> Vec<&'static TypeLayout> {
    let mut found = Vec::new();
    let phantoms: Vec<TLField> = layout.phantom_fields().iter().collect();
    for field in fields(layout).iter().chain(&phantoms) {
        found.push(field.layout());
        for function in field.function_range().iter() {
            found.extend(function.param_type_layouts.iter().map(|layout| layout()));
            found.extend(function.return_type_layout().map(|layout| layout()));
        }
    }
    found
}

fn fields(layout: &TypeLayout) -> Vec<TLField> {
    match layout.data() {
        TLData::Struct { fields } | TLData::Union { fields } => fields.iter().collect(),
        TLData::Enum(e) => e.fields.iter().collect(),
        TLData::PrefixType(p) => p.fields.iter().collect(),
        TLData::Primitive(_) | TLData::Opaque => Vec::new(),
    }
}

/// A unique display name for every reached type.
struct Names(HashMap<UTypeId, String>);

impl Names {
    fn assign(order: &[&'static TypeLayout]) -> Self {
        let mut taken: HashMap<String, usize> = HashMap::new();
        let mut names = HashMap::new();
        for layout in order {
            let base = type_name(layout);
            let count = taken.entry(base.clone()).or_insert(0);
            *count += 1;
            let name = match *count {
                1 => base,
                n => format!("{base}#{n}"),
            };
            names.insert(layout.get_utypeid(), name);
        }
        Names(names)
    }

    fn of(&self, layout: &TypeLayout) -> String {
        self.0
            .get(&layout.get_utypeid())
            .cloned()
            .unwrap_or_else(|| type_name(layout))
    }
}

/// Writes one type's block.
fn describe_type(text: &mut String, layout: &'static TypeLayout, names: &Names) {
    let _ = writeln!(
        text,
        "\ntype {} in {}: size {}, align {}, {:?}, {}",
        names.of(layout),
        layout.package(),
        layout.size(),
        layout.alignment(),
        layout.repr_attr(),
        kind(layout),
    );
    for field in fields(layout) {
        describe_field(text, "field", &field, names);
    }
    for field in layout.phantom_fields().iter() {
        describe_field(text, "phantom", &field, names);
    }
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

fn describe_field(text: &mut String, what: &str, field: &TLField, names: &Names) {
    let _ = write!(text, "  {what} {}: {}", field.name(), names.of(field.layout()));
    for function in field.function_range().iter() {
        let _ = write!(text, " = {}", signature(&function, names));
    }
    text.push('\n');
}

/// `fn(param: Type, ...) -> Type`.
fn signature(function: &TLFunction, names: &Names) -> String {
    let param_names = function.param_names.as_str().split([',', ';']);
    let params: Vec<String> = function
        .param_type_layouts
        .iter()
        .zip(param_names.chain(std::iter::repeat("")))
        .map(|(layout, name)| match name {
            "" => names.of(layout()),
            name => format!("{name}: {}", names.of(layout())),
        })
        .collect();
    let returns = function
        .return_type_layout()
        .map_or_else(|| "()".to_owned(), |layout| names.of(layout()));
    let qualifier = if function.fn_qualifs.is_unsafe() { "unsafe " } else { "" };
    format!("{qualifier}fn({}) -> {returns}", params.join(", "))
}

/// The type's name as abi_stable prints it, spaced once.
fn type_name(layout: &TypeLayout) -> String {
    layout
        .full_type()
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
