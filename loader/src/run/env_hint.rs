//! The warning for a variable the plugin asked for that the loader did not
//! pass: a plugin's environment getter reports a miss as the dev event
//! [`ENV_MISSING_EVENT`] `{"key": KEY}`, and when `KEY` is set in the
//! loader's own environment (a shell `BATCH_SIZE=4`, filtered out by the
//! `--env-prefix` rule), [`EnvHintSink`] adds a warning message naming the
//! key and the fix, once per key and run. It warns too when only a prefixed
//! copy is set (`SYNAPSE_BATCH_SIZE`): that one was passed, but under its
//! full name, since a prefix is never removed. For a credential (see
//! [`is_credential_name`]), which no prefix passes, it says so and how to
//! pass it explicitly. The value is never read into the message, only
//! whether the variable is set.
//!
//! The sink sits in the process that has the loader's real environment:
//! the loader itself, also for isolated runs, whose child process starts
//! from a cleared environment and forwards its events here.

use std::collections::BTreeSet;
use std::sync::Mutex;

use plugin_api::ENV_MISSING_EVENT;
use serde_json::json;

use crate::events::{lock, Event, EventKind, EventSink, Level, RunInfo};
use crate::run::environment::{is_credential_name, is_variable_name};

/// The event name of the warning (kind `message`, level `warning`, data
/// `{content, key}`).
pub const ENV_NOT_PASSED_EVENT: &str = "env_not_passed";

/// Passes every event on to `inner`, adding the warning after an
/// `env_missing` dev event whose key is set in the loader's environment.
pub struct EnvHintSink<S> {
    inner: S,
    prefixes: Vec<String>,
    is_set: fn(&str) -> bool,
    warned: Mutex<BTreeSet<String>>,
}

impl<S: EventSink> EnvHintSink<S> {
    /// A sink that looks keys up in this process's environment; `prefixes`
    /// are the run's `--env-prefix` values (named in the warning).
    pub fn new(inner: S, prefixes: &[String]) -> Self {
        Self::with_lookup(inner, prefixes, |key| std::env::var_os(key).is_some())
    }

    /// A sink that asks `is_set` whether a variable is set.
    pub fn with_lookup(inner: S, prefixes: &[String], is_set: fn(&str) -> bool) -> Self {
        Self {
            inner,
            prefixes: prefixes.iter().filter(|p| !p.is_empty()).cloned().collect(),
            is_set,
            warned: Mutex::new(BTreeSet::new()),
        }
    }

    /// The warning for `event`, if it is a miss of a variable set here and
    /// not warned about yet.
    fn warning_for(&self, event: &Event) -> Option<Event> {
        if event.kind != EventKind::DevEvent || event.data.get("message")?.as_str()? != ENV_MISSING_EVENT {
            return None;
        }
        let key = event.data.get("data")?.get("key")?.as_str()?;
        if key.len() > MAX_KEY_LEN || !is_variable_name(key) {
            return None;
        }
        let text = if (self.is_set)(key) && is_credential_name(key) {
            credential_text(key, key)
        } else if (self.is_set)(key) {
            not_passed_text(key, &self.prefixes)
        } else {
            let prefixed = self
                .prefixes
                .iter()
                .map(|prefix| format!("{prefix}{key}"))
                .find(|name| (self.is_set)(name))?;
            if is_credential_name(&prefixed) {
                credential_text(key, &prefixed)
            } else {
                passed_prefixed_text(key, &prefixed)
            }
        };
        if !lock(&self.warned).insert(key.to_owned()) {
            return None;
        }
        let mut warning = Event::new(
            EventKind::Message,
            ENV_NOT_PASSED_EVENT,
            Level::Warning,
            json!({ "content": text, "key": key }),
        );
        warning.step = event.step.clone();
        Some(warning)
    }
}

/// What the warning says: which key, why it was not passed, and how to pass
/// it, with the shell expanding the value rather than the loader printing it.
fn not_passed_text(key: &str, prefixes: &[String]) -> String {
    let rule = match prefixes {
        [] => "no variable is passed from the shell (--env-prefix is empty)".to_owned(),
        many => format!(
            "only variables starting with {} are, and they keep the prefix",
            many.join(", ")
        ),
    };
    format!(
        "the action read {key}, which is set in the loader's environment but not passed to the plugin \
         ({rule}); pass it with --env {key}=\"${key}\""
    )
}

/// What the warning says when the action read `key`, a credential, and
/// `set` (the key itself, or the key with a prefix) is set here.
fn credential_text(key: &str, set: &str) -> String {
    let which = if key == set {
        format!("{key}, which is set in the loader's environment")
    } else {
        format!("{key}, which is not set; {set} is set in the loader's environment, but")
    };
    format!(
        "the action read {which} not passed to the plugin: it is a credential, and --env-prefix never passes \
         credentials (ctx.client() and ctx.agent_client() need none: the loader makes their calls); if the plugin \
         must have it, pass it explicitly with --env {key}=\"${set}\""
    )
}

/// What the warning says when only `prefixed` (the key with a prefix) is
/// set: the plugin got it, but under that name.
fn passed_prefixed_text(key: &str, prefixed: &str) -> String {
    format!(
        "the action read {key}, which is not set; {prefixed} is passed to the plugin, but under its full name \
         (a prefix is not removed); pass it as {key} with --env {key}=\"${prefixed}\""
    )
}

/// The longest key a hint is given for (a plugin may report anything).
const MAX_KEY_LEN: usize = 256;

impl<S: EventSink> EventSink for EnvHintSink<S> {
    fn start(&self, run: &RunInfo) {
        lock(&self.warned).clear();
        self.inner.start(run)
    }

    fn emit(&self, run: &RunInfo, event: &Event) {
        self.inner.emit(run, event);
        if let Some(warning) = self.warning_for(event) {
            self.inner.emit(run, &warning);
        }
    }

    /// Only dev events are read here, and those never carry raw data.
    fn takes_raw_data(&self) -> bool {
        self.inner.takes_raw_data()
    }

    fn finish(&self, run: &RunInfo) {
        self.inner.finish(run)
    }

    fn flush(&self) {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::events::MemorySink;

    /// The content of a warning event.
    fn warning_content(event: &Event) -> Option<&str> {
        (event.event == ENV_NOT_PASSED_EVENT).then(|| event.data.get("content").and_then(serde_json::Value::as_str))?
    }

    fn set_in_loader(key: &str) -> bool {
        key == "BATCH_SIZE" || key == "SYNAPSE_EPOCHS"
    }

    fn hinted() -> (EnvHintSink<Arc<MemorySink>>, Arc<MemorySink>) {
        let memory = Arc::new(MemorySink::default());
        let sink = EnvHintSink::with_lookup(memory.clone(), &["SYNAPSE_".to_owned()], set_in_loader);
        (sink, memory)
    }

    fn miss(key: &str) -> Event {
        let mut event = Event::dev_event(ENV_MISSING_EVENT, Some(json!({ "key": key })));
        event.step = Some("train".into());
        event
    }

    #[test]
    fn a_miss_of_a_variable_set_here_warns_once_naming_the_key_and_the_fix() {
        let (sink, memory) = hinted();
        let run = RunInfo::new("p", "a");
        sink.start(&run);
        sink.emit(&run, &miss("BATCH_SIZE"));
        sink.emit(&run, &miss("BATCH_SIZE"));
        let events = memory.events();
        assert_eq!(events.len(), 3, "both dev events pass, one warning: {events:#?}");
        let warning = &events[1];
        assert_eq!(
            (warning.kind, warning.level, warning.step.as_deref()),
            (EventKind::Message, Level::Warning, Some("train"))
        );
        assert_eq!(warning.data["key"], json!("BATCH_SIZE"));
        let text = warning_content(warning).unwrap();
        assert!(text.contains("starting with SYNAPSE_"), "{text}");
        assert!(text.contains("--env BATCH_SIZE=\"$BATCH_SIZE\""), "{text}");
    }

    #[test]
    fn misses_of_unset_or_malformed_keys_and_other_dev_events_pass_alone() {
        let (sink, memory) = hinted();
        let run = RunInfo::new("p", "a");
        sink.emit(&run, &miss("LR"));
        sink.emit(&run, &miss("BATCH_SIZE\u{1b}[2J"));
        sink.emit(&run, &Event::dev_event(ENV_MISSING_EVENT, None));
        sink.emit(&run, &Event::dev_event("other", Some(json!({ "key": "BATCH_SIZE" }))));
        sink.emit(&run, &Event::message(Level::Info, ENV_MISSING_EVENT));
        assert_eq!(memory.events().len(), 5);
        assert!(memory.events().iter().all(|e| warning_content(e).is_none()));
    }

    #[test]
    fn a_prefixed_copy_is_named_with_the_way_to_pass_it_under_the_plain_name() {
        let (sink, memory) = hinted();
        let run = RunInfo::new("p", "a");
        sink.emit(&run, &miss("EPOCHS"));
        let events = memory.events();
        assert_eq!(events.len(), 2, "{events:#?}");
        let text = warning_content(&events[1]).unwrap();
        assert!(
            text.contains("SYNAPSE_EPOCHS is passed to the plugin, but under its full name"),
            "{text}"
        );
        assert!(text.contains("--env EPOCHS=\"$SYNAPSE_EPOCHS\""), "{text}");
    }

    #[test]
    fn a_credential_read_by_the_action_is_named_with_the_explicit_way_to_pass_it() {
        let memory = Arc::new(MemorySink::default());
        let sink = EnvHintSink::with_lookup(memory.clone(), &["SYNAPSE_".to_owned()], |key| {
            key == "SYNAPSE_ACCESS_TOKEN" || key == "SYNAPSE_DB_PASSWORD"
        });
        let run = RunInfo::new("p", "a");
        sink.emit(&run, &miss("SYNAPSE_ACCESS_TOKEN"));
        sink.emit(&run, &miss("DB_PASSWORD"));
        let texts: Vec<String> = memory
            .events()
            .iter()
            .filter_map(warning_content)
            .map(str::to_owned)
            .collect();
        assert_eq!(texts.len(), 2, "{texts:?}");
        assert!(
            texts[0].contains("--env-prefix never passes credentials"),
            "{}",
            texts[0]
        );
        assert!(
            texts[0].contains("--env SYNAPSE_ACCESS_TOKEN=\"$SYNAPSE_ACCESS_TOKEN\""),
            "{}",
            texts[0]
        );
        assert!(
            texts[1].contains("SYNAPSE_DB_PASSWORD is set in the loader's environment, but not passed"),
            "{}",
            texts[1]
        );
        assert!(
            texts[1].contains("--env DB_PASSWORD=\"$SYNAPSE_DB_PASSWORD\""),
            "{}",
            texts[1]
        );
    }

    #[test]
    fn each_run_is_warned_afresh() {
        let (sink, memory) = hinted();
        for action in ["first", "second"] {
            let run = RunInfo::new("p", action);
            sink.start(&run);
            sink.emit(&run, &miss("BATCH_SIZE"));
            sink.finish(&run);
        }
        let warnings = memory.events().iter().filter(|e| warning_content(e).is_some()).count();
        assert_eq!(warnings, 2);
    }

    #[test]
    fn the_text_names_every_prefix_or_says_none_is_passed() {
        let two = not_passed_text("X", &["SYNAPSE_".into(), "APP_".into()]);
        assert!(two.contains("starting with SYNAPSE_, APP_"), "{two}");
        let sink = EnvHintSink::with_lookup(Arc::new(MemorySink::default()), &[String::new()], set_in_loader);
        assert!(sink.prefixes.is_empty(), "an empty prefix passes nothing");
        assert!(not_passed_text("X", &sink.prefixes).contains("--env-prefix is empty"));
    }
}
