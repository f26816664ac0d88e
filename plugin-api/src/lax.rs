//! Schema-guided params checking: walks the params JSON beside the params
//! type's JSON Schema, reporting every problem it finds (wrong types, missing
//! and unknown fields) rather than only the first, and, in lax mode,
//! converting scalars the way pydantic's lax mode does (synapse-sdk
//! 2026.2.17 ships pydantic 2.14):
//!
//! - integer fields take `5`, `5.0`, `"5"`, `" 5 "`, `"+5"`, `"1_000"`,
//!   `"5.0"` and `true`/`false` (1/0); not `5.5`, `"5.5"` or `"1e3"`;
//! - number fields take integers, numeric strings (`"1e3"`, `"1_000"`) and
//!   booleans;
//! - boolean fields take `0`/`1`, `0.0`/`1.0`, and the strings `0`, `1`,
//!   `true`/`false`, `t`/`f`, `yes`/`no`, `y`/`n`, `on`/`off` in any case;
//! - string fields take only strings (pydantic does not turn numbers into
//!   strings either).
//!
//! What the schema cannot say (enum variants, ranges of `u8`...) is left to
//! serde, which runs after this walk.

use serde_json::{Map, Number, Value};

use crate::field_problem::FieldProblem;

/// How params are read: lax converts scalars as pydantic does; strict only
/// checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParamsMode {
    /// Converts scalars as pydantic's lax mode does (the default, as in the original).
    #[default]
    Lax,
    /// Only checks: a scalar of the wrong type is a problem, never converted.
    Strict,
}

/// Walks `value` beside `schema` (a root schema with its `$defs`),
/// converting scalars in lax mode, and returns every problem found.
pub fn check(value: &mut Value, schema: &Value, mode: ParamsMode) -> Vec<FieldProblem> {
    let mut walk = Walk {
        root: schema,
        mode,
        problems: Vec::new(),
    };
    walk.visit(value, schema, &mut String::new(), 0);
    walk.problems
}

/// Deeper schemas than this are left to serde (recursive types).
const MAX_DEPTH: usize = 64;

struct Walk<'s> {
    root: &'s Value,
    mode: ParamsMode,
    problems: Vec<FieldProblem>,
}

impl<'s> Walk<'s> {
    fn visit(&mut self, value: &mut Value, schema: &'s Value, path: &mut String, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        let schema = self.resolve(schema);
        let Some(schema_map) = schema.as_object() else {
            return;
        };
        if let Some(branches) = schema_map
            .get("anyOf")
            .or_else(|| schema_map.get("oneOf"))
            .and_then(Value::as_array)
        {
            self.visit_branches(value, branches, path, depth);
            return;
        }
        if let Some(types) = schema_map.get("type") {
            let types = type_names(types);
            if !types.is_empty() && !types.iter().any(|t| matches_type(value, t)) {
                match self.convert(value, &types) {
                    Some(converted) => *value = converted,
                    None => {
                        self.problem(path, type_problem(value, &types, schema_map));
                        return;
                    }
                }
            }
            if types.contains(&"integer") && !integer_in_range(value, schema_map) {
                let message = format!("invalid value: expected {}, got {value}", integer_words(schema_map));
                self.problem(path, message);
                return;
            }
        }
        match value {
            Value::Object(map) => self.visit_object(map, schema_map, path, depth),
            Value::Array(items) => self.visit_array(items, schema_map, path, depth),
            _ => {}
        }
    }

    /// `Option<T>` and untagged enums: use the first branch the value fits
    /// as it is, else the first it converts to; report nothing here when
    /// none fits (serde names the problem).
    fn visit_branches(&mut self, value: &mut Value, branches: &'s [Value], path: &mut String, depth: usize) {
        let fits = |walk: &Self, branch: &'s Value, value: &Value| {
            let branch = walk.resolve(branch);
            match branch.get("type").map(type_names) {
                Some(types) => types.iter().any(|t| matches_type(value, t)),
                None => true,
            }
        };
        let chosen = branches.iter().find(|b| fits(self, b, value)).or_else(|| {
            branches.iter().find(|b| {
                let types = self.resolve(b).get("type").map(type_names).unwrap_or_default();
                self.convert(value, &types).is_some()
            })
        });
        if let Some(branch) = chosen {
            let mut inner = Walk {
                root: self.root,
                mode: self.mode,
                problems: Vec::new(),
            };
            inner.visit(value, branch, path, depth + 1);
            self.problems.extend(inner.problems);
        }
    }

    fn visit_object(
        &mut self,
        map: &mut Map<String, Value>,
        schema: &'s Map<String, Value>,
        path: &mut String,
        depth: usize,
    ) {
        let properties = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties");
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                if !map.contains_key(name) {
                    let mut field = path.clone();
                    push_field(&mut field, name);
                    self.problem(&field, "missing field".to_owned());
                }
            }
        }
        for (key, item) in map.iter_mut() {
            let len = path.len();
            push_field(path, key);
            match properties.and_then(|p| p.get(key)) {
                Some(property) => self.visit(item, property, path, depth + 1),
                None => match additional {
                    Some(Value::Bool(false)) if properties.is_some() => {
                        let known = properties.into_iter().flat_map(|p| p.keys().map(String::as_str));
                        let message = match crate::suggest::did_you_mean(key, known) {
                            Some(suggestion) => format!("unknown field, {suggestion}"),
                            None => "unknown field".to_owned(),
                        };
                        self.problem(path, message)
                    }
                    Some(extra @ Value::Object(_)) => self.visit(item, extra, path, depth + 1),
                    _ => {}
                },
            }
            path.truncate(len);
        }
    }

    fn visit_array(&mut self, items: &mut [Value], schema: &'s Map<String, Value>, path: &mut String, depth: usize) {
        let prefix = schema.get("prefixItems").and_then(Value::as_array);
        let rest = schema.get("items").filter(|i| i.is_object());
        for (index, item) in items.iter_mut().enumerate() {
            let item_schema = prefix.and_then(|p| p.get(index)).or(rest);
            if let Some(item_schema) = item_schema {
                let len = path.len();
                path.push_str(&format!("[{index}]"));
                self.visit(item, item_schema, path, depth + 1);
                path.truncate(len);
            }
        }
    }

    /// Follows a local `$ref` (`#/$defs/Name`).
    fn resolve(&self, schema: &'s Value) -> &'s Value {
        let mut schema = schema;
        for _ in 0..MAX_DEPTH {
            let Some(reference) = schema.get("$ref").and_then(Value::as_str) else {
                break;
            };
            match reference
                .strip_prefix('#')
                .and_then(|pointer| self.root.pointer(pointer))
            {
                Some(target) => schema = target,
                None => break,
            }
        }
        schema
    }

    /// The value converted to the first of `types` it converts to (lax only).
    fn convert(&self, value: &Value, types: &[&str]) -> Option<Value> {
        if self.mode == ParamsMode::Strict {
            return None;
        }
        types.iter().find_map(|t| match *t {
            "integer" => to_integer(value),
            "number" => to_number(value),
            "boolean" => to_boolean(value),
            _ => None,
        })
    }

    fn problem(&mut self, path: &str, message: String) {
        self.problems.push(FieldProblem {
            path: path.to_owned(),
            message,
        });
    }
}

fn push_field(path: &mut String, name: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(name);
}

fn type_names(types: &Value) -> Vec<&str> {
    match types {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn matches_type(value: &Value, name: &str) -> bool {
    match name {
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "null" => value.is_null(),
        _ => true,
    }
}

/// The bounds of an integer field (`minimum`, `maximum`: schemars writes
/// them for unsigned and small integer types).
fn integer_bounds(schema: &Map<String, Value>) -> (Option<i128>, Option<i128>) {
    let bound = |key: &str| {
        schema.get(key).and_then(|b| {
            b.as_i64()
                .map(i128::from)
                .or_else(|| b.as_u64().map(i128::from))
                .or_else(|| b.as_f64().map(|f| f.ceil() as i128))
        })
    };
    (bound("minimum"), bound("maximum"))
}

/// Whether an integer value lies within the field's bounds (true for
/// anything that is not an integer: the type check speaks for those).
fn integer_in_range(value: &Value, schema: &Map<String, Value>) -> bool {
    let Some(n) = value
        .as_i64()
        .map(i128::from)
        .or_else(|| value.as_u64().map(i128::from))
    else {
        return true;
    };
    let (min, max) = integer_bounds(schema);
    min.is_none_or(|min| n >= min) && max.is_none_or(|max| n <= max)
}

/// An integer field in words, with its bounds: "a non-negative integer",
/// "an integer from 0 to 255", "an integer".
fn integer_words(schema: &Map<String, Value>) -> String {
    match integer_bounds(schema) {
        (Some(0), None) => "a non-negative integer".to_owned(),
        (Some(min), Some(max)) => format!("an integer from {min} to {max}"),
        (Some(min), None) => format!("an integer of at least {min}"),
        (None, Some(max)) => format!("an integer of at most {max}"),
        (None, None) => "an integer".to_owned(),
    }
}

fn type_problem(value: &Value, types: &[&str], schema: &Map<String, Value>) -> String {
    let expected: Vec<String> = types
        .iter()
        .map(|t| match *t {
            "integer" => integer_words(schema),
            "number" => "a number".to_owned(),
            "boolean" => "a boolean".to_owned(),
            "string" => "a string".to_owned(),
            "array" => "an array".to_owned(),
            "object" => "an object".to_owned(),
            "null" => "null".to_owned(),
            other => other.to_owned(),
        })
        .collect();
    let got = match value {
        Value::Number(n) if n.is_f64() && types.contains(&"integer") => {
            format!("{n} (a number with a fractional part)")
        }
        other => {
            let mut text = other.to_string();
            if text.len() > 40 {
                text = format!("{}...", text.chars().take(40).collect::<String>());
            }
            text
        }
    };
    format!("invalid type: expected {}, got {got}", expected.join(" or "))
}

/// pydantic's lax integer: whole floats, booleans, and integer strings
/// (trimmed, signed, `_` between digits, or with a zero fraction).
fn to_integer(value: &Value) -> Option<Value> {
    match value {
        Value::Bool(b) => Some(Value::from(u8::from(*b))),
        Value::Number(n) => n.as_f64().and_then(whole_number),
        Value::String(s) => {
            let text = without_underscores(s.trim())?;
            if let Ok(n) = text.parse::<i64>() {
                return Some(Value::from(n));
            }
            if let Ok(n) = text.trim_start_matches('+').parse::<u64>() {
                return Some(Value::from(n));
            }
            let (whole, fraction) = text.split_once('.')?;
            let digits = whole.trim_start_matches(['+', '-']);
            let plain = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
            (plain && fraction.bytes().all(|b| b == b'0')).then_some(())?;
            to_integer(&Value::String(whole.to_owned()))
        }
        _ => None,
    }
}

fn whole_number(x: f64) -> Option<Value> {
    if x.fract() != 0.0 || !x.is_finite() {
        return None;
    }
    if x >= i64::MIN as f64 && x < i64::MAX as f64 {
        Some(Value::from(x as i64))
    } else if x >= 0.0 && x < u64::MAX as f64 {
        Some(Value::from(x as u64))
    } else {
        None
    }
}

/// pydantic's lax float: booleans and numeric strings. Strings that name
/// NaN or infinity are refused: JSON cannot carry them.
fn to_number(value: &Value) -> Option<Value> {
    match value {
        Value::Bool(b) => Some(Value::from(if *b { 1.0 } else { 0.0 })),
        Value::String(s) => {
            let text = without_underscores(s.trim())?;
            let looks_numeric = text
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'));
            let x: f64 = text.parse().ok().filter(|_| looks_numeric)?;
            Number::from_f64(x).map(Value::Number)
        }
        _ => None,
    }
}

/// pydantic's lax bool.
fn to_boolean(value: &Value) -> Option<Value> {
    match value {
        Value::Number(n) => {
            let x = n.as_f64()?;
            (x == 0.0 || x == 1.0).then_some(Value::Bool(x == 1.0))
        }
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "0" | "off" | "f" | "false" | "n" | "no" => Some(Value::Bool(false)),
            "1" | "on" | "t" | "true" | "y" | "yes" => Some(Value::Bool(true)),
            _ => None,
        },
        _ => None,
    }
}

/// `1_000` -> `1000`; an underscore must sit between two digits.
fn without_underscores(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'_' {
            let between_digits =
                i > 0 && i + 1 < bytes.len() && bytes[i - 1].is_ascii_digit() && bytes[i + 1].is_ascii_digit();
            if !between_digits {
                return None;
            }
        }
    }
    Some(text.replace('_', ""))
}

#[cfg(test)]
mod tests {
    //! Expected values from pydantic 2.14.4 (the one synapse-sdk 2026.2.17
    //! installs), `Model.model_validate_json('{"v": ...}')` with `v: int`,
    //! `v: float`, `v: bool` and `v: str`.

    use super::*;
    use serde_json::json;

    fn lax(value: Value, ty: &str) -> Option<Value> {
        let schema = json!({"type": "object", "properties": {"v": {"type": ty}}, "additionalProperties": false});
        let mut params = json!({ "v": value });
        check(&mut params, &schema, ParamsMode::Lax)
            .is_empty()
            .then(|| params["v"].clone())
    }

    #[test]
    fn integers_as_pydantic_reads_them() {
        for (input, expected) in [
            (json!("5"), 5),
            (json!(" 5 "), 5),
            (json!("5.0"), 5),
            (json!("1_000"), 1000),
            (json!("+5"), 5),
            (json!("-5"), -5),
            (json!(5.0), 5),
            (json!(true), 1),
            (json!(false), 0),
            (json!("0.0"), 0),
        ] {
            assert_eq!(lax(input.clone(), "integer"), Some(json!(expected)), "{input}");
        }
        for input in [
            json!("5.5"),
            json!("1e3"),
            json!(5.5),
            json!("yes"),
            json!(""),
            json!(1e20),
            json!(null),
        ] {
            assert_eq!(lax(input.clone(), "integer"), None, "{input}");
        }
    }

    #[test]
    fn numbers_as_pydantic_reads_them() {
        for (input, expected) in [
            (json!("5"), 5.0),
            (json!(" 5.5 "), 5.5),
            (json!("1e3"), 1000.0),
            (json!("1_000"), 1000.0),
            (json!(true), 1.0),
        ] {
            assert_eq!(lax(input.clone(), "number"), Some(json!(expected)), "{input}");
        }
        assert_eq!(lax(json!(2), "number"), Some(json!(2)), "integers are numbers already");
        for input in [json!("yes"), json!(""), json!("five"), json!(null)] {
            assert_eq!(lax(input.clone(), "number"), None, "{input}");
        }
    }

    #[test]
    fn booleans_as_pydantic_reads_them() {
        for input in ["yes", "on", "TRUE", "t", "y", "1", "True"] {
            assert_eq!(lax(json!(input), "boolean"), Some(json!(true)), "{input}");
        }
        for input in ["no", "off", "false", "f", "n", "0"] {
            assert_eq!(lax(json!(input), "boolean"), Some(json!(false)), "{input}");
        }
        assert_eq!(lax(json!(1), "boolean"), Some(json!(true)));
        assert_eq!(lax(json!(0.0), "boolean"), Some(json!(false)));
        for input in [
            json!(2),
            json!("2"),
            json!("maybe"),
            json!(""),
            json!(2.0),
            json!("1.0"),
        ] {
            assert_eq!(lax(input.clone(), "boolean"), None, "{input}");
        }
    }

    #[test]
    fn strings_stay_strict_as_in_pydantic() {
        assert_eq!(lax(json!("5"), "string"), Some(json!("5")));
        for input in [json!(5), json!(5.0), json!(true)] {
            assert_eq!(lax(input.clone(), "string"), None, "{input}");
        }
    }

    #[test]
    fn strict_mode_converts_nothing_and_names_the_field() {
        let schema = json!({"type": "object", "properties": {"v": {"type": "integer"}}});
        let mut params = json!({ "v": "5" });
        let problems = check(&mut params, &schema, ParamsMode::Strict);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path, "v");
        assert_eq!(problems[0].message, "invalid type: expected an integer, got \"5\"");
        assert_eq!(params["v"], "5");
    }
}
