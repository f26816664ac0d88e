//! The params of an action as a table for people (`loader info`): one row
//! per field with its type, default, whether it is required, and its
//! description, read from the action's JSON Schema.

use serde_json::{Map, Value};

/// One field of an action's params.
#[derive(Debug, PartialEq)]
pub struct ParamRow {
    pub name: String,
    pub type_name: String,
    pub default: String,
    pub required: bool,
    pub description: String,
}

/// The fields of a params schema, in the schema's order.
pub fn param_rows(schema: &Value) -> Vec<ParamRow> {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let defs = schema.get("$defs").and_then(Value::as_object);
    properties
        .iter()
        .map(|(name, field)| {
            let resolved = resolve(field, defs);
            ParamRow {
                name: name.clone(),
                type_name: type_name(field, defs),
                default: field.get("default").map(Value::to_string).unwrap_or_default(),
                required: required.contains(&name.as_str()),
                description: description(field)
                    .or_else(|| description(resolved))
                    .unwrap_or_default()
                    .to_owned(),
            }
        })
        .collect()
}

/// The rows laid out in aligned columns, with a header; `none` if there
/// are no params.
pub fn render(rows: &[ParamRow]) -> String {
    if rows.is_empty() {
        return "  none\n".to_owned();
    }
    let header = ["name", "type", "default", "required", "description"];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|row| {
            [
                row.name.clone(),
                row.type_name.clone(),
                row.default.clone(),
                if row.required { "yes" } else { "no" }.to_owned(),
                row.description.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: [&str; 5]| {
        let mut text = String::from(" ");
        for (cell, width) in cells.iter().zip(widths) {
            text.push_str(&format!(" {cell:width$} "));
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header);
    for row in &cells {
        line([&row[0], &row[1], &row[2], &row[3], &row[4]]);
    }
    out
}

fn description(field: &Value) -> Option<&str> {
    field.get("description").and_then(Value::as_str)
}

/// A `$ref` to `#/$defs/Name` replaced by the definition it names.
fn resolve<'a>(field: &'a Value, defs: Option<&'a Map<String, Value>>) -> &'a Value {
    field
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
        .and_then(|name| defs?.get(name))
        .unwrap_or(field)
}

/// `integer`, `string | null`, `"json" | "csv"`, `array of string`, ...
fn type_name(field: &Value, defs: Option<&Map<String, Value>>) -> String {
    let field = resolve(field, defs);
    if let Some(values) = field.get("enum").and_then(Value::as_array) {
        return values.iter().map(Value::to_string).collect::<Vec<_>>().join(" | ");
    }
    if let Some(constant) = field.get("const") {
        return constant.to_string();
    }
    for combinator in ["anyOf", "oneOf"] {
        if let Some(options) = field.get(combinator).and_then(Value::as_array) {
            return options
                .iter()
                .map(|option| type_name(option, defs))
                .collect::<Vec<_>>()
                .join(" | ");
        }
    }
    let types: Vec<&str> = match field.get("type") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => return "any".to_owned(),
    };
    types
        .iter()
        .map(|&t| match (t, field.get("items")) {
            ("array", Some(items)) => format!("array of {}", type_name(items, defs)),
            _ => t.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "$defs": { "Format": { "description": "The file format.", "enum": ["json", "csv"], "type": "string" } },
            "properties": {
                "format": { "$ref": "#/$defs/Format", "default": "json" },
                "output_dir": { "description": "Folder to write into.", "type": "string" },
                "epochs": { "default": null, "type": ["integer", "null"], "description": "Passes." },
                "tags": { "type": "array", "items": { "type": "string" } },
                "mode": { "anyOf": [{ "const": "fast" }, { "type": "integer" }] }
            },
            "required": ["output_dir"],
            "type": "object"
        })
    }

    #[test]
    fn each_field_becomes_a_row() {
        let rows = param_rows(&schema());
        let summary: Vec<(&str, &str, &str, bool, &str)> = rows
            .iter()
            .map(|r| {
                (
                    r.name.as_str(),
                    r.type_name.as_str(),
                    r.default.as_str(),
                    r.required,
                    r.description.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("epochs", "integer | null", "null", false, "Passes."),
                ("format", "\"json\" | \"csv\"", "\"json\"", false, "The file format."),
                ("mode", "\"fast\" | integer", "", false, ""),
                ("output_dir", "string", "", true, "Folder to write into."),
                ("tags", "array of string", "", false, ""),
            ]
        );
    }

    #[test]
    fn the_table_is_aligned_under_a_header() {
        let text = render(&param_rows(&schema()));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6);
        assert!(lines[0].starts_with("  name "), "{text}");
        let type_column = lines[0].find("type").unwrap();
        assert_eq!(lines[4].find("string"), Some(type_column), "{text}");
        assert!(lines[4].contains(" yes "), "{text}");
    }

    #[test]
    fn no_params_says_none() {
        assert_eq!(render(&param_rows(&json!({ "type": "object" }))), "  none\n");
    }
}
