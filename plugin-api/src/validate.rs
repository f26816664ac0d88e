//! Params validation: turns the JSON params of a run into the action's typed
//! params struct, or into the list of every problem, each naming the field
//! path. Scalars are read as pydantic's lax mode reads them unless the
//! action asks for strict params ([`ParamsMode`]). Unknown fields are
//! refused even when the struct does not say `deny_unknown_fields`: a
//! misspelt param must not be silently ignored.

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use crate::field_problem::FieldProblem;
use crate::lax;
pub use crate::lax::ParamsMode;
use crate::rules::json_kind;

/// The params did not validate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamsError {
    /// Every problem found.
    pub problems: Vec<FieldProblem>,
}

impl std::fmt::Display for ParamsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("invalid params: ")?;
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            if p.path.is_empty() {
                f.write_str(&p.message)?;
            } else {
                write!(f, "{}: {}", p.path, p.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ParamsError {}

/// Parses and validates params JSON the way the original does (pydantic's
/// lax mode: `"5"` and `5.0` read as the integer 5, `"yes"` as `true`; see
/// [`lax`]), refusing unknown fields. Every problem is
/// reported, each naming its field. An empty text or `null` means "no
/// params" and reads as `{}`, so that an action whose params all have
/// defaults runs without any.
pub fn parse_params<P: DeserializeOwned + JsonSchema>(json: &str) -> Result<P, ParamsError> {
    parse_params_with(json, &params_schema::<P>(), ParamsMode::Lax)
}

/// [`parse_params`] with the params type's schema given (see
/// [`params_schema`]) and a choice of lax or strict reading.
pub fn parse_params_with<P: DeserializeOwned>(json: &str, schema: &Value, mode: ParamsMode) -> Result<P, ParamsError> {
    let value: Value = if json.trim().is_empty() {
        Value::Object(Default::default())
    } else {
        serde_json::from_str(json).map_err(|e| single("", format!("params are not valid JSON: {e}")))?
    };
    let mut value = if value.is_null() {
        Value::Object(Default::default())
    } else {
        value
    };
    if !value.is_object() {
        return Err(single(
            "",
            format!("params must be a JSON object, got {}", json_kind(&value)),
        ));
    }

    let mut problems = lax::check(&mut value, schema, mode);

    let mut unknown = Vec::new();
    let mut record_unknown = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
    let deserializer = serde_ignored::Deserializer::new(&value, &mut record_unknown);
    let parsed: Result<P, _> = serde_path_to_error::deserialize(deserializer);

    let mut add = |problem: FieldProblem| {
        if !problems.iter().any(|p| p.path == problem.path) {
            problems.push(problem);
        }
    };
    for path in unknown {
        add(FieldProblem {
            path,
            message: "unknown field".to_owned(),
        });
    }
    if let Err(e) = &parsed {
        add(problem_at(&e.path().to_string(), &e.inner().to_string()));
    }
    match parsed {
        Ok(params) if problems.is_empty() => Ok(params),
        _ => Err(ParamsError { problems }),
    }
}

/// The JSON Schema of a params type, with `additionalProperties: false` on
/// every object that lists its properties, as validation enforces.
pub fn params_schema<P: JsonSchema>() -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(P)).unwrap_or(Value::Null);
    close_objects(&mut schema);
    schema
}

fn close_objects(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".to_owned(), Value::Bool(false));
            }
            map.values_mut().for_each(close_objects);
        }
        Value::Array(items) => items.iter_mut().for_each(close_objects),
        _ => {}
    }
}

fn problem_at(path: &str, message: &str) -> FieldProblem {
    let path = if path == "." { "" } else { path };
    // serde reports a missing field at its parent: name the field itself.
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        let full = if path.is_empty() {
            field.to_owned()
        } else {
            format!("{path}.{field}")
        };
        return FieldProblem {
            path: full,
            message: "missing field".to_owned(),
        };
    }
    FieldProblem {
        path: path.to_owned(),
        message: in_words(message),
    }
}

/// serde's message with its Rust type names (`expected u64`) put in the
/// words the schema-guided checks use (`expected a non-negative integer`).
fn in_words(message: &str) -> String {
    const WORDS: [(&str, &str); 14] = [
        ("u8", "an integer from 0 to 255"),
        ("u16", "an integer from 0 to 65535"),
        ("u32", "an integer from 0 to 4294967295"),
        ("u64", "a non-negative integer"),
        ("u128", "a non-negative integer"),
        ("usize", "a non-negative integer"),
        ("i8", "an integer from -128 to 127"),
        ("i16", "an integer from -32768 to 32767"),
        ("i32", "an integer from -2147483648 to 2147483647"),
        ("i64", "an integer"),
        ("i128", "an integer"),
        ("isize", "an integer"),
        ("f32", "a number"),
        ("f64", "a number"),
    ];
    for (rust, words) in WORDS {
        if let Some(head) = message.strip_suffix(&format!("expected {rust}")) {
            return format!("{head}expected {words}");
        }
    }
    message.to_owned()
}

fn single(path: &str, message: String) -> ParamsError {
    ParamsError {
        problems: vec![FieldProblem {
            path: path.to_owned(),
            message,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, JsonSchema, PartialEq)]
    struct Optimizer {
        lr: f64,
        #[serde(default)]
        momentum: f64,
    }

    #[derive(Debug, Deserialize, JsonSchema, PartialEq)]
    struct TrainParams {
        #[serde(default = "ten")]
        epochs: u32,
        optimizer: Optimizer,
        #[serde(default)]
        layers: Vec<u32>,
    }

    fn ten() -> u32 {
        10
    }

    fn problems(json: &str) -> Vec<(String, String)> {
        parse_params::<TrainParams>(json)
            .unwrap_err()
            .problems
            .into_iter()
            .map(|p| (p.path, p.message))
            .collect()
    }

    #[test]
    fn valid_params_parse_with_defaults() {
        let p: TrainParams = parse_params(r#"{"optimizer": {"lr": 0.1}}"#).unwrap();
        assert_eq!(
            p,
            TrainParams {
                epochs: 10,
                optimizer: Optimizer { lr: 0.1, momentum: 0.0 },
                layers: vec![]
            }
        );
    }

    #[test]
    fn wrong_type_names_the_nested_path() {
        let found = problems(r#"{"optimizer": {"lr": "fast"}}"#);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "optimizer.lr");
        assert!(found[0].1.contains("invalid type"), "{found:?}");
    }

    #[test]
    fn wrong_type_in_a_list_names_the_index() {
        let found = problems(r#"{"optimizer": {"lr": 1}, "layers": [1, -2]}"#);
        assert_eq!(found[0].0, "layers[1]");
    }

    #[test]
    fn missing_field_names_the_field() {
        assert_eq!(
            problems(r#"{"optimizer": {}}"#),
            vec![("optimizer.lr".to_owned(), "missing field".to_owned())]
        );
        assert_eq!(
            problems("{}"),
            vec![("optimizer".to_owned(), "missing field".to_owned())]
        );
    }

    #[test]
    fn unknown_fields_are_refused_at_any_depth() {
        let found = problems(r#"{"epochs": 3, "epoch": 4, "optimizer": {"lr": 1, "beta": 2}}"#);
        let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, vec!["epoch", "optimizer.beta"]);
        assert_eq!(found[0].1, "unknown field, did you mean `epochs`?");
        assert_eq!(found[1].1, "unknown field");
    }

    #[test]
    fn integers_out_of_range_are_named_in_words() {
        #[derive(Debug, Deserialize, JsonSchema)]
        struct Params {
            #[serde(default)]
            _epochs: u64,
            #[serde(default)]
            _small: u8,
            #[serde(default)]
            _count: u32,
            #[serde(default)]
            _offset: i64,
        }
        let found = |json: &str| {
            let err = parse_params::<Params>(json).unwrap_err();
            assert_eq!(err.problems.len(), 1, "{err}");
            err.problems[0].message.clone()
        };
        assert_eq!(
            found(r#"{"_epochs": -1}"#),
            "invalid value: expected a non-negative integer, got -1"
        );
        assert_eq!(
            found(r#"{"_small": 300}"#),
            "invalid value: expected an integer from 0 to 255, got 300"
        );
        assert_eq!(
            found(r#"{"_epochs": "many"}"#),
            "invalid type: expected a non-negative integer, got \"many\""
        );
        assert_eq!(
            found(r#"{"_offset": 1.5}"#),
            "invalid type: expected an integer, got 1.5 (a number with a fractional part)"
        );
        assert_eq!(
            found(r#"{"_count": 5000000000}"#),
            "invalid value: integer `5000000000`, expected an integer from 0 to 4294967295"
        );
    }

    #[test]
    fn non_object_and_bad_json_are_refused() {
        assert!(problems("[1]")[0].1.contains("must be a JSON object, got an array"));
        assert!(problems("{epochs").remove(0).1.contains("not valid JSON"));
    }

    #[test]
    fn empty_or_null_params_mean_all_defaults() {
        #[derive(Deserialize, JsonSchema)]
        struct AllDefault {
            #[serde(default)]
            _n: u32,
        }
        assert!(parse_params::<AllDefault>("").is_ok());
        assert!(parse_params::<AllDefault>("null").is_ok());
    }

    #[test]
    fn error_message_lists_every_problem() {
        let err = parse_params::<TrainParams>(r#"{"epoch": 1, "optimizer": {"beta": 1, "lr": "a"}}"#).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(
                "invalid params: epoch: unknown field, did you mean `epochs`?; optimizer.beta: unknown field; optimizer.lr: invalid type"
            ),
            "{text}"
        );
    }

    #[test]
    fn every_problem_is_reported_each_naming_its_field() {
        // pydantic (synapse-sdk 2026.2.17) lists every error of a model, not
        // only the first.
        let found = problems(
            r#"{"epochs": "many", "optimizer": {"lr": "fast", "momentum": []}, "layers": [1, "x", 3], "extra": 1}"#,
        );
        let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        for expected in ["epochs", "optimizer.lr", "optimizer.momentum", "layers[1]", "extra"] {
            assert!(paths.contains(&expected), "{expected} in {found:?}");
        }
        assert_eq!(found.len(), 5, "{found:?}");
        let missing = problems(r#"{"epochs": "x"}"#);
        assert_eq!(
            missing,
            [
                ("optimizer".to_owned(), "missing field".to_owned()),
                (
                    "epochs".to_owned(),
                    "invalid type: expected a non-negative integer, got \"x\"".to_owned()
                )
            ]
        );
    }

    #[test]
    fn scalars_are_read_as_pydantic_lax_mode_reads_them() {
        #[derive(Debug, Deserialize, JsonSchema, PartialEq)]
        struct Params {
            epochs: u32,
            lr: f64,
            augment: bool,
            name: Option<String>,
            ratio: Option<f32>,
            flags: Vec<bool>,
        }
        let p: Params =
            parse_params(r#"{"epochs": "5", "lr": "0.01", "augment": "yes", "ratio": 1, "flags": ["on", 0, "False"]}"#)
                .unwrap();
        assert_eq!(
            p,
            Params {
                epochs: 5,
                lr: 0.01,
                augment: true,
                name: None,
                ratio: Some(1.0),
                flags: vec![true, false, false],
            }
        );
        let p: Params = parse_params(r#"{"epochs": 5.0, "lr": 1, "augment": 1, "flags": []}"#).unwrap();
        assert_eq!((p.epochs, p.augment), (5, true));
        let err =
            parse_params::<Params>(r#"{"epochs": 5.5, "lr": 1, "augment": true, "name": 3, "flags": []}"#).unwrap_err();
        let paths: Vec<&str> = err.problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["epochs", "name"], "{err}");
        assert!(err.to_string().contains("a number with a fractional part"), "{err}");
    }

    #[test]
    fn strict_mode_refuses_what_lax_mode_converts() {
        let schema = params_schema::<TrainParams>();
        let json = r#"{"epochs": "5", "optimizer": {"lr": "0.1"}}"#;
        let lax: TrainParams = parse_params_with(json, &schema, ParamsMode::Lax).unwrap();
        assert_eq!((lax.epochs, lax.optimizer.lr), (5, 0.1));
        let strict = parse_params_with::<TrainParams>(json, &schema, ParamsMode::Strict).unwrap_err();
        let paths: Vec<&str> = strict.problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["epochs", "optimizer.lr"]);
    }

    #[test]
    fn schema_closes_objects_and_lists_properties() {
        let schema = params_schema::<TrainParams>();
        assert_eq!(schema["additionalProperties"], Value::Bool(false));
        assert!(schema["properties"]["epochs"].is_object());
        assert!(schema["required"].as_array().unwrap().iter().any(|v| v == "optimizer"));
    }
}
