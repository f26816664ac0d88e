//! What an action asks a cluster for when it runs there: CPUs, GPUs,
//! memory and custom resources, named as Ray names them (`num_cpus`,
//! `num_gpus`, `memory` in bytes, `resources`), and the check a host
//! applies before using them.
//!
//! The amounts cross the library boundary inside the manifest's JSON. JSON
//! has no NaN or infinity, so a non-finite amount is written as text
//! (`"NaN"`, `"inf"`): the host then reports it instead of reading `null`
//! and silently dropping the declaration.

use std::collections::BTreeMap;

use serde::de::{self, Deserializer};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

/// The most CPUs, GPUs or units of a custom resource an action may ask for.
pub const MAX_UNITS: f64 = 1_000_000.0;

/// The most memory an action may ask for: 1 PiB.
pub const MAX_MEMORY_BYTES: u64 = 1 << 50;

/// Resource names Ray keeps for itself, which have their own fields.
const RESERVED_NAMES: [(&str, &str); 3] = [("CPU", "num_cpus"), ("GPU", "num_gpus"), ("memory", "memory")];

/// Resources an action's run reserves on a cluster; all optional. Declare
/// them with `ActionDef::resources` or the `resources = ...` argument of
/// the `action!` macro.
///
/// ```
/// use plugin_api::ActionResources;
/// let gpu_training = ActionResources::new().num_cpus(4.0).num_gpus(1.0).memory(8 << 30);
/// assert!(gpu_training.check().is_ok());
/// assert!(ActionResources::new().num_cpus(-1.0).check().is_err());
/// ```
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ActionResources {
    /// CPU cores (fractions allowed).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "amount")]
    pub num_cpus: Option<f64>,
    /// GPUs (fractions allowed).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "amount")]
    pub num_gpus: Option<f64>,
    /// Memory in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    /// Custom resources by name (`{"accelerator": 1}`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", with = "amounts")]
    pub resources: BTreeMap<String, f64>,
}

/// Two declarations are equal when they declare the same amounts, a NaN
/// amount included: the loader compares a plugin's manifest with its own
/// earlier description of it, and a declaration must equal itself for that.
impl PartialEq for ActionResources {
    fn eq(&self, other: &Self) -> bool {
        let same = |a: f64, b: f64| a == b || (a.is_nan() && b.is_nan());
        let same_option = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => same(a, b),
            (a, b) => a.is_none() && b.is_none(),
        };
        same_option(self.num_cpus, other.num_cpus)
            && same_option(self.num_gpus, other.num_gpus)
            && self.memory == other.memory
            && self.resources.len() == other.resources.len()
            && self
                .resources
                .iter()
                .zip(&other.resources)
                .all(|((name, a), (other_name, b))| name == other_name && same(*a, *b))
    }
}

/// A declared amount that no cluster can grant.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("resources.{field} = {value}: {problem}")]
pub struct ResourceError {
    /// The field, e.g. `num_cpus` or `resources.accelerator`.
    pub field: String,
    /// The value as declared.
    pub value: String,
    /// What is wrong with it.
    pub problem: String,
}

impl ActionResources {
    /// No resources declared.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reserves `cpus` CPU cores.
    pub fn num_cpus(mut self, cpus: f64) -> Self {
        self.num_cpus = Some(cpus);
        self
    }

    /// Reserves `gpus` GPUs.
    pub fn num_gpus(mut self, gpus: f64) -> Self {
        self.num_gpus = Some(gpus);
        self
    }

    /// Reserves `bytes` of memory.
    pub fn memory(mut self, bytes: u64) -> Self {
        self.memory = Some(bytes);
        self
    }

    /// Reserves `amount` of the custom resource `name`.
    pub fn resource(mut self, name: &str, amount: f64) -> Self {
        self.resources.insert(name.to_owned(), amount);
        self
    }

    /// Whether nothing is declared.
    pub fn is_empty(&self) -> bool {
        self.num_cpus.is_none() && self.num_gpus.is_none() && self.memory.is_none() && self.resources.is_empty()
    }

    /// Every amount declared, whether a cluster could grant it: finite,
    /// not negative, at most [`MAX_UNITS`] (memory: [`MAX_MEMORY_BYTES`]),
    /// and custom resources with a name of their own.
    pub fn check(&self) -> Result<(), ResourceError> {
        check_units("num_cpus", self.num_cpus)?;
        check_units("num_gpus", self.num_gpus)?;
        if let Some(bytes) = self.memory.filter(|&b| b > MAX_MEMORY_BYTES) {
            return Err(ResourceError {
                field: "memory".into(),
                value: bytes.to_string(),
                problem: format!("more than {MAX_MEMORY_BYTES} bytes (1 PiB); memory is given in bytes"),
            });
        }
        for (name, amount) in &self.resources {
            let field = format!("resources.{name}");
            if name.trim().is_empty() {
                return Err(ResourceError {
                    field,
                    value: amount.to_string(),
                    problem: "a custom resource needs a name".into(),
                });
            }
            if let Some((_, own_field)) = RESERVED_NAMES.iter().find(|(reserved, _)| reserved == name) {
                return Err(ResourceError {
                    field,
                    value: amount.to_string(),
                    problem: format!("{name:?} is not a custom resource: it has its own field, {own_field}"),
                });
            }
            check_units(&field, Some(*amount))?;
        }
        Ok(())
    }
}

fn check_units(field: &str, amount: Option<f64>) -> Result<(), ResourceError> {
    let Some(amount) = amount else { return Ok(()) };
    let problem = if !amount.is_finite() {
        "not a finite number"
    } else if amount < 0.0 {
        "negative"
    } else if amount > MAX_UNITS {
        "more than a million; no cluster has that many"
    } else {
        return Ok(());
    };
    Err(ResourceError {
        field: field.to_owned(),
        value: amount.to_string(),
        problem: problem.to_owned(),
    })
}

/// A number as JSON, or as text when JSON cannot hold it (NaN, infinity).
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Amount {
    Number(f64),
    Text(String),
}

impl Amount {
    fn of(value: f64) -> Self {
        if value.is_finite() {
            Amount::Number(value)
        } else {
            Amount::Text(value.to_string())
        }
    }

    fn value<E: de::Error>(self) -> Result<f64, E> {
        match self {
            Amount::Number(value) => Ok(value),
            Amount::Text(text) => text.parse().map_err(|_| E::custom(format!("{text:?} is not a number"))),
        }
    }
}

/// Serde for `Option<f64>` amounts.
mod amount {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Option<f64>, serializer: S) -> Result<S::Ok, S::Error> {
        value.map(Amount::of).serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
        Option::<Amount>::deserialize(deserializer)?
            .map(Amount::value)
            .transpose()
    }
}

/// Serde for maps of named amounts.
mod amounts {
    use super::*;

    pub fn serialize<S: Serializer>(map: &BTreeMap<String, f64>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(map.iter().map(|(name, value)| (name, Amount::of(*value))))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<String, f64>, D::Error> {
        BTreeMap::<String, Amount>::deserialize(deserializer)?
            .into_iter()
            .map(|(name, amount)| Ok((name, amount.value()?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_declaration_equals_itself_after_crossing_as_json_even_with_nan() {
        let declared = ActionResources::new()
            .num_cpus(f64::NAN)
            .resource("accelerator", f64::INFINITY);
        let crossed: ActionResources = serde_json::from_str(&serde_json::to_string(&declared).unwrap()).unwrap();
        assert_eq!(crossed, declared);
        assert_ne!(crossed, ActionResources::new().num_cpus(1.0));
        assert_ne!(ActionResources::new().num_cpus(f64::NAN), ActionResources::new());
    }

    #[test]
    fn declared_amounts_cross_as_json_and_nothing_is_written_when_nothing_is_declared() {
        let declared = ActionResources::new()
            .num_cpus(0.5)
            .memory(1 << 20)
            .resource("accelerator", 1.0);
        let text = serde_json::to_value(&declared).unwrap();
        assert_eq!(
            text,
            json!({"num_cpus": 0.5, "memory": 1048576, "resources": {"accelerator": 1.0}})
        );
        assert_eq!(serde_json::from_value::<ActionResources>(text).unwrap(), declared);
        assert_eq!(serde_json::to_value(ActionResources::new()).unwrap(), json!({}));
        assert!(ActionResources::new().is_empty() && !declared.is_empty());
    }

    #[test]
    fn non_finite_amounts_survive_the_trip_so_the_host_can_refuse_them() {
        let bad = ActionResources::new().num_gpus(f64::NAN).resource("tpu", f64::INFINITY);
        let text = serde_json::to_string(&bad).unwrap();
        let back: ActionResources = serde_json::from_str(&text).unwrap();
        assert!(back.num_gpus.unwrap().is_nan(), "{text}");
        assert_eq!(back.resources["tpu"], f64::INFINITY);
        let error = back.check().unwrap_err();
        assert_eq!(error.field, "num_gpus");
        assert!(error.to_string().contains("not a finite number"), "{error}");
        assert!(serde_json::from_str::<ActionResources>(r#"{"num_cpus": "two"}"#).is_err());
    }

    #[test]
    fn negative_absurd_and_misnamed_amounts_are_refused_naming_the_field() {
        let refused = |resources: ActionResources| resources.check().unwrap_err();
        assert_eq!(refused(ActionResources::new().num_cpus(-1.0)).problem, "negative");
        assert_eq!(refused(ActionResources::new().num_cpus(2e6)).field, "num_cpus");
        assert_eq!(refused(ActionResources::new().memory(u64::MAX)).field, "memory");
        let named = refused(ActionResources::new().resource("GPU", 1.0));
        assert!(named.to_string().contains("its own field, num_gpus"), "{named}");
        assert_eq!(
            refused(ActionResources::new().resource(" ", 1.0)).problem,
            "a custom resource needs a name"
        );
        assert_eq!(
            refused(ActionResources::new().resource("tpu", -0.5)).field,
            "resources.tpu"
        );
        assert!(ActionResources::new()
            .num_cpus(0.0)
            .num_gpus(8.0)
            .memory(1 << 40)
            .check()
            .is_ok());
    }
}
