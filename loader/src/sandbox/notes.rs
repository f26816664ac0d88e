//! The events a run's stream carries about its sandbox: what this system
//! could not apply (one line, and each part), that the sandbox is off, and
//! where a kept work directory is.

use std::path::Path;

use serde_json::json;

use super::{missing_line, Missing};
use crate::events::{Event, EventKind, Level};

/// A warning naming every part of the sandbox that is missing (`None`
/// when nothing is).
pub fn incomplete(missing: &[Missing]) -> Option<Event> {
    let line = missing_line(missing)?;
    Some(Event::new(
        EventKind::Message,
        "sandbox_incomplete",
        Level::Warning,
        json!({ "content": line, "missing": missing }),
    ))
}

/// A warning that the run has no sandbox (`--sandbox=off`).
pub fn off() -> Event {
    Event::new(
        EventKind::Message,
        "sandbox_off",
        Level::Warning,
        json!({ "content": "the sandbox is off (--sandbox=off): the plugin runs with all of your rights" }),
    )
}

/// Where the run's work directory was kept (`--keep-work-dir`).
pub fn work_dir_kept(path: &Path) -> Event {
    Event::new(
        EventKind::Message,
        "work_dir_kept",
        Level::Info,
        json!({ "content": format!("the run's work directory is kept at `{}`", path.display()), "path": path }),
    )
}
