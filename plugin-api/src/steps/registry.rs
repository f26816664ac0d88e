//! `StepRegistry`: the ordered list of a workflow's steps, editable by name
//! so that a plugin can take a standard workflow and change one step.

use super::step::Step;

/// A registry edit that could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// The name is taken.
    #[error("a step named {0:?} is already registered")]
    Duplicate(String),
    /// No step has that name.
    #[error("no step named {name:?} (steps: {available})")]
    NotFound {
        /// The name asked for.
        name: String,
        /// The registered names.
        available: String,
    },
}

/// The steps of a workflow, in order.
pub struct StepRegistry<C> {
    steps: Vec<Box<dyn Step<C>>>,
}

impl<C> Default for StepRegistry<C> {
    fn default() -> Self {
        Self { steps: Vec::new() }
    }
}

impl<C> StepRegistry<C> {
    /// No steps yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a step.
    pub fn register(&mut self, step: impl Step<C> + 'static) -> Result<(), StepError> {
        self.check_new(step.name())?;
        self.steps.push(Box::new(step));
        Ok(())
    }

    /// Removes the step called `name` and returns it.
    pub fn unregister(&mut self, name: &str) -> Option<Box<dyn Step<C>>> {
        let index = self.position(name).ok()?;
        Some(self.steps.remove(index))
    }

    /// Inserts a step just before the step called `before`.
    pub fn insert_before(&mut self, before: &str, step: impl Step<C> + 'static) -> Result<(), StepError> {
        self.check_new(step.name())?;
        let index = self.position(before)?;
        self.steps.insert(index, Box::new(step));
        Ok(())
    }

    /// Inserts a step just after the step called `after`.
    pub fn insert_after(&mut self, after: &str, step: impl Step<C> + 'static) -> Result<(), StepError> {
        self.check_new(step.name())?;
        let index = self.position(after)?;
        self.steps.insert(index + 1, Box::new(step));
        Ok(())
    }

    /// The step names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.steps.iter().map(|s| s.name()).collect()
    }

    /// How many steps there are.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether there are no steps.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    pub(super) fn steps_mut(&mut self) -> &mut [Box<dyn Step<C>>] {
        &mut self.steps
    }

    fn position(&self, name: &str) -> Result<usize, StepError> {
        self.steps
            .iter()
            .position(|s| s.name() == name)
            .ok_or_else(|| StepError::NotFound {
                name: name.to_owned(),
                available: self.names().join(", "),
            })
    }

    fn check_new(&self, name: &str) -> Result<(), StepError> {
        match self.position(name) {
            Ok(_) => Err(StepError::Duplicate(name.to_owned())),
            Err(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::ActionError;
    use crate::steps::StepResult;

    struct Named(&'static str);

    impl Step<()> for Named {
        fn name(&self) -> &str {
            self.0
        }
        fn execute(&mut self, _: &mut ()) -> Result<StepResult, ActionError> {
            Ok(StepResult::ok(serde_json::Value::Null))
        }
    }

    #[test]
    fn steps_can_be_inserted_around_others_and_removed() {
        let mut registry = StepRegistry::new();
        registry.register(Named("load")).unwrap();
        registry.register(Named("train")).unwrap();
        registry.insert_before("train", Named("augment")).unwrap();
        registry.insert_after("train", Named("evaluate")).unwrap();
        assert_eq!(registry.names(), ["load", "augment", "train", "evaluate"]);
        assert_eq!(registry.unregister("augment").unwrap().name(), "augment");
        assert!(registry.unregister("augment").is_none());
        assert_eq!(registry.names(), ["load", "train", "evaluate"]);
    }

    #[test]
    fn duplicates_and_unknown_anchors_are_errors() {
        let mut registry = StepRegistry::new();
        registry.register(Named("load")).unwrap();
        assert_eq!(
            registry.register(Named("load")),
            Err(StepError::Duplicate("load".into()))
        );
        let err = registry.insert_after("nope", Named("x")).unwrap_err();
        assert_eq!(err.to_string(), "no step named \"nope\" (steps: load)");
        assert_eq!(registry.len(), 1);
    }
}
