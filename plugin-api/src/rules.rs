//! The argument rules of the context calls, shared by every host (the loader
//! and the test host) so that a plugin sees the same errors everywhere.

/// `set_progress` needs `total > 0` and `current <= total`.
pub fn check_progress(current: u64, total: u64, step: Option<&str>) -> Result<(), String> {
    let at = match step {
        Some(step) => format!(" (step {step:?})"),
        None => String::new(),
    };
    if total == 0 {
        return Err(format!("total must be greater than 0, got 0{at}"));
    }
    if current > total {
        return Err(format!("current {current} is outside 0..={total}{at}"));
    }
    Ok(())
}

/// `set_metrics` needs a non-empty step and a JSON object.
pub fn check_metrics(value_json: &str, step: &str) -> Result<(), String> {
    check_metrics_step(step)?;
    metrics_object(value_json).map(drop)
}

/// `set_metrics` needs a non-empty step.
pub fn check_metrics_step(step: &str) -> Result<(), String> {
    if step.trim().is_empty() {
        return Err("a non-empty step name is required".to_owned());
    }
    Ok(())
}

/// Parses metrics JSON, which must be an object.
pub fn metrics_object(value_json: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    match serde_json::from_str(value_json) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err("metrics must be a JSON object of name -> value".to_owned()),
        Err(e) => Err(format!("metrics are not valid JSON: {e}")),
    }
}

/// The kind of a JSON value in words (`a string`, `an object`), as error
/// messages name what they got.
pub fn json_kind(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_bounds() {
        assert!(check_progress(0, 10, None).is_ok());
        assert!(check_progress(10, 10, Some("train")).is_ok());
        assert_eq!(
            check_progress(1, 0, None).unwrap_err(),
            "total must be greater than 0, got 0"
        );
        assert_eq!(
            check_progress(11, 10, Some("train")).unwrap_err(),
            "current 11 is outside 0..=10 (step \"train\")"
        );
    }

    #[test]
    fn metrics_need_step_and_object() {
        assert!(check_metrics(r#"{"loss": 1}"#, "train").is_ok());
        assert!(check_metrics(r#"{"loss": 1}"#, " ")
            .unwrap_err()
            .contains("non-empty step"));
        assert!(check_metrics("[1]", "train").unwrap_err().contains("JSON object"));
    }
}
