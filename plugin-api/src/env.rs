//! `PluginEnvironment`: the environment variables an action may see, with
//! typed getters. A value that does not parse is an error naming the key and
//! the value. The Python original raises too for `get_int` / `get_float`,
//! but its `get_bool` silently reads anything it does not know as `false`;
//! here `get_bool` refuses it as well.
//!
//! A getter that misses a key can report the miss once per key
//! ([`PluginEnvironment::with_miss_reporter`]): a context does so with a dev
//! event named [`ENV_MISSING_EVENT`], so that a host can tell the user when
//! the variable was set but not passed to the plugin.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

/// The dev event a context logs the first time an action asks for an
/// environment variable it does not have: `log_dev_event("env_missing",
/// {"key": KEY})`. The value is never sent (there is none to send); the
/// loader answers with a warning when `KEY` is set in its own environment
/// but was not passed to the plugin.
pub const ENV_MISSING_EVENT: &str = "env_missing";

/// A value was present but could not be read as the type asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {key}={value:?} is not {expected}")]
pub struct EnvError {
    /// The variable's name.
    pub key: String,
    /// The value that did not parse.
    pub value: String,
    /// What the value should have been (`an integer`, `a number`, ...).
    pub expected: &'static str,
}

/// The environment of one action run (`ctx.env()`).
///
/// Two environments are equal when they hold the same variables; a miss
/// reporter is not part of the value (clones share it, `merge` and the
/// conversions drop it).
#[derive(Debug, Clone, Default)]
pub struct PluginEnvironment {
    vars: BTreeMap<String, String>,
    misses: MissReport,
}

impl PartialEq for PluginEnvironment {
    fn eq(&self, other: &Self) -> bool {
        self.vars == other.vars
    }
}

impl Eq for PluginEnvironment {}

/// Who hears about keys a getter missed, and which keys were told already.
#[derive(Clone, Default)]
struct MissReport(Option<Arc<MissReporter>>);

struct MissReporter {
    reported: Mutex<BTreeSet<String>>,
    report: Box<dyn Fn(&str) + Send + Sync>,
}

impl MissReport {
    /// Calls the reporter the first time `key` is missed.
    fn missed(&self, key: &str) {
        let Some(reporter) = &self.0 else { return };
        let first_time = reporter
            .reported
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(key.to_owned());
        if first_time {
            (reporter.report)(key);
        }
    }
}

impl fmt::Debug for MissReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "reported" } else { "unreported" })
    }
}

impl PluginEnvironment {
    /// An environment of exactly these variables.
    pub fn new(vars: BTreeMap<String, String>) -> Self {
        Self {
            vars,
            misses: MissReport::default(),
        }
    }

    /// The same environment, calling `report(key)` the first time one of
    /// the getters (`get*`, `parse`) is asked for a `key` it does not have,
    /// once per key for this environment and all its clones. `contains`,
    /// `iter` and `to_map` report nothing. A [`RuntimeContext`]'s
    /// environment reports through a dev event named [`ENV_MISSING_EVENT`].
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use plugin_api::PluginEnvironment;
    ///
    /// let missed = Arc::new(Mutex::new(Vec::new()));
    /// let seen = missed.clone();
    /// let env: PluginEnvironment = [("EPOCHS", "3")].into_iter().collect();
    /// let env = env.with_miss_reporter(move |key| seen.lock().unwrap().push(key.to_owned()));
    /// assert_eq!(env.get_int("EPOCHS", 1), Ok(3));
    /// assert_eq!(env.get_int("BATCH_SIZE", 32), Ok(32));
    /// assert_eq!(env.get_int("BATCH_SIZE", 32), Ok(32));
    /// assert_eq!(*missed.lock().unwrap(), ["BATCH_SIZE"]);
    /// ```
    ///
    /// [`RuntimeContext`]: crate::RuntimeContext
    pub fn with_miss_reporter(mut self, report: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.misses = MissReport(Some(Arc::new(MissReporter {
            reported: Mutex::new(BTreeSet::new()),
            report: Box::new(report),
        })));
        self
    }

    /// The value of `key`, reporting a miss.
    fn lookup(&self, key: &str) -> Option<&String> {
        let value = self.vars.get(key);
        if value.is_none() {
            self.misses.missed(key);
        }
        value
    }

    /// One environment from several, later ones winning on the same key (the
    /// original's `PluginEnvironment.merge(*envs)`).
    pub fn merge<'a>(envs: impl IntoIterator<Item = &'a PluginEnvironment>) -> Self {
        let mut vars = BTreeMap::new();
        for env in envs {
            vars.extend(env.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        Self::new(vars)
    }

    /// Every variable, by name (the original's `to_dict`).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.vars.clone()
    }

    /// Reads the JSON object of strings the host sends.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json).map(Self::new)
    }

    /// The variables as a JSON object (what crosses the boundary).
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.vars).expect("a map of strings always serialises")
    }

    /// The raw value of `key`, or `default` when it is not set.
    pub fn get<'a>(&'a self, key: &str, default: Option<&'a str>) -> Option<&'a str> {
        self.lookup(key).map(String::as_str).or(default)
    }

    /// The value of `key` as a string, or `default` when it is not set.
    pub fn get_str(&self, key: &str, default: Option<&str>) -> Option<String> {
        self.get(key, default).map(str::to_owned)
    }

    /// The value of `key` as an integer, or `default` when it is not set.
    pub fn get_int(&self, key: &str, default: i64) -> Result<i64, EnvError> {
        self.parse(key, "an integer").map(|v| v.unwrap_or(default))
    }

    /// The value of `key` as a float, or `default` when it is not set.
    pub fn get_float(&self, key: &str, default: f64) -> Result<f64, EnvError> {
        self.parse(key, "a number").map(|v| v.unwrap_or(default))
    }

    /// The value of `key` as a boolean (`true`/`1`/`yes` or `false`/`0`/`no`,
    /// any case), or `default` when it is not set.
    pub fn get_bool(&self, key: &str, default: bool) -> Result<bool, EnvError> {
        let Some(raw) = self.lookup(key) else {
            return Ok(default);
        };
        match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(self.error(key, "a boolean (true/1/yes or false/0/no)")),
        }
    }

    /// The value of `key` split on commas, each item trimmed and empty items
    /// dropped, or `default` when it is not set.
    pub fn get_list(&self, key: &str, default: &[&str]) -> Vec<String> {
        match self.lookup(key) {
            Some(raw) => raw
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            None => default.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// The value of `key` parsed as any `FromStr` type, `None` when unset:
    /// the typed getters without a default.
    pub fn parse<T: FromStr>(&self, key: &str, expected: &'static str) -> Result<Option<T>, EnvError> {
        match self.lookup(key) {
            None => Ok(None),
            Some(raw) => raw.trim().parse().map(Some).map_err(|_| self.error(key, expected)),
        }
    }

    /// Whether the variable is set.
    pub fn contains(&self, key: &str) -> bool {
        self.vars.contains_key(key)
    }

    /// How many variables there are.
    pub fn len(&self) -> usize {
        self.vars.len()
    }

    /// Whether there are no variables.
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// Every variable, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    fn error(&self, key: &str, expected: &'static str) -> EnvError {
        EnvError {
            key: key.to_owned(),
            value: self.vars.get(key).cloned().unwrap_or_default(),
            expected,
        }
    }
}

impl<'a> IntoIterator for &'a PluginEnvironment {
    type Item = (&'a str, &'a str);
    type IntoIter = Box<dyn Iterator<Item = (&'a str, &'a str)> + 'a>;

    /// Every variable in name order: `for (key, value) in ctx.env() { .. }`.
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for PluginEnvironment {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self::new(iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> PluginEnvironment {
        pairs.iter().copied().collect()
    }

    #[test]
    fn get_returns_raw_value_or_default() {
        let e = env(&[("MY_VAR", " spaced ")]);
        assert_eq!(e.get("MY_VAR", Some("d")), Some(" spaced "));
        assert_eq!(e.get("MISSING", Some("d")), Some("d"));
        assert_eq!(e.get("MISSING", None), None);
        assert_eq!(e.get_str("MISSING", Some("x")), Some("x".to_owned()));
    }

    #[test]
    fn get_int_parses_or_names_key_and_value() {
        let e = env(&[("BATCH_SIZE", "64"), ("BAD", "6four"), ("NEG", " -3 ")]);
        assert_eq!(e.get_int("BATCH_SIZE", 32), Ok(64));
        assert_eq!(e.get_int("NEG", 0), Ok(-3));
        assert_eq!(e.get_int("MISSING", 32), Ok(32));
        assert_eq!(e.parse::<i64>("MISSING", "an integer"), Ok(None));
        let err = e.get_int("BAD", 32).unwrap_err();
        assert_eq!(err.to_string(), "environment variable BAD=\"6four\" is not an integer");
    }

    #[test]
    fn get_float_parses_or_errors() {
        let e = env(&[("LR", "0.01"), ("EXP", "1e-3"), ("BAD", "fast")]);
        assert_eq!(e.get_float("LR", 0.001), Ok(0.01));
        assert_eq!(e.get_float("EXP", 0.0), Ok(0.001));
        assert_eq!(e.get_float("MISSING", 0.5), Ok(0.5));
        assert!(e
            .get_float("BAD", 0.0)
            .unwrap_err()
            .to_string()
            .contains("BAD=\"fast\""));
    }

    #[test]
    fn get_bool_accepts_the_documented_spellings_in_any_case() {
        for yes in ["true", "TRUE", "1", "yes", "Yes"] {
            assert_eq!(env(&[("D", yes)]).get_bool("D", false), Ok(true), "{yes}");
        }
        for no in ["false", "False", "0", "no", "NO"] {
            assert_eq!(env(&[("D", no)]).get_bool("D", true), Ok(false), "{no}");
        }
        assert_eq!(env(&[]).get_bool("D", true), Ok(true));
        let err = env(&[("DEBUG", "maybe")]).get_bool("DEBUG", false).unwrap_err();
        assert_eq!(err.key, "DEBUG");
        assert_eq!(err.value, "maybe");
    }

    #[test]
    fn get_list_splits_trims_and_drops_empty_items() {
        let e = env(&[("GPU_IDS", " 0, 1 ,,2 "), ("EMPTY", "")]);
        assert_eq!(e.get_list("GPU_IDS", &["0"]), vec!["0", "1", "2"]);
        assert_eq!(e.get_list("EMPTY", &["0"]), Vec::<String>::new());
        assert_eq!(e.get_list("MISSING", &["0"]), vec!["0"]);
        assert_eq!(e.get_list("MISSING", &[]), Vec::<String>::new());
    }

    #[test]
    fn merge_lets_later_environments_win_and_keeps_the_rest() {
        // synapse-sdk 2026.2.17: `PluginEnvironment.merge(a, b)` updates a
        // dict with a, then b.
        let base = env(&[("A", "1"), ("B", "base")]);
        let file = env(&[("B", "file"), ("C", "3")]);
        let merged = PluginEnvironment::merge([&base, &file]);
        assert_eq!(
            merged.to_map(),
            BTreeMap::from([
                ("A".to_owned(), "1".to_owned()),
                ("B".to_owned(), "file".to_owned()),
                ("C".to_owned(), "3".to_owned())
            ])
        );
        let keys: Vec<&str> = (&merged).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["A", "B", "C"]);
        let mut seen = 0;
        for (_, value) in &merged {
            seen += value.len();
        }
        assert_eq!(seen, 6);
        assert!(PluginEnvironment::merge([]).is_empty());
    }

    #[test]
    fn each_missed_key_is_reported_once_by_every_getter_and_clone() {
        let missed = Arc::new(Mutex::new(Vec::new()));
        let seen = missed.clone();
        let e = env(&[("SET", "1")]).with_miss_reporter(move |key| seen.lock().unwrap().push(key.to_owned()));
        let copy = e.clone();
        assert_eq!(copy, env(&[("SET", "1")]), "the reporter is not part of the value");
        assert_eq!(e.get("SET", None), Some("1"));
        assert!(!e.contains("ASKED_BY_CONTAINS"));
        assert_eq!(e.get("A", Some("d")), Some("d"));
        assert_eq!(copy.get_str("A", None), None);
        assert_eq!(e.get_int("B", 1), Ok(1));
        assert_eq!(e.get_float("C", 1.0), Ok(1.0));
        assert_eq!(e.get_bool("D", true), Ok(true));
        assert_eq!(e.get_list("E", &[]), Vec::<String>::new());
        assert_eq!(e.parse::<u8>("F", "a byte"), Ok(None));
        assert_eq!(copy.get_int("B", 2), Ok(2));
        assert_eq!(*missed.lock().unwrap(), ["A", "B", "C", "D", "E", "F"]);
    }

    #[test]
    fn an_environment_without_a_reporter_reports_nothing_and_merging_drops_it() {
        let reports = Arc::new(Mutex::new(0));
        let counter = reports.clone();
        let reported = env(&[]).with_miss_reporter(move |_| *counter.lock().unwrap() += 1);
        let merged = PluginEnvironment::merge([&reported]);
        assert_eq!(merged.get("X", None), None);
        assert_eq!(env(&[]).get("X", None), None);
        assert_eq!(*reports.lock().unwrap(), 0);
        assert_eq!(
            format!("{reported:?}"),
            "PluginEnvironment { vars: {}, misses: reported }"
        );
    }

    #[test]
    fn json_round_trip() {
        let e = env(&[("A", "1"), ("B", "x,y")]);
        assert_eq!(PluginEnvironment::from_json(&e.to_json()).unwrap(), e);
    }
}
