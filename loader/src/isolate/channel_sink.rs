//! The child's only sink: writes each event straight into the channel
//! writer's pending buffer, a user event as a [frame](crate::events::frame)
//! (from its parts, without making an [`Event`] of it), any other event as
//! its JSON line. Nothing is buffered here, so what the writer's crash and
//! exit hooks drain is everything the plugin reported.

use std::sync::Mutex;

use super::child_writer::ChannelWriter;
use crate::events::{frame, lock, Event, EventSink, LineWriter, RunInfo, UserEvent};

pub struct ChannelSink {
    writer: ChannelWriter,
    lines: Mutex<LineWriter>,
}

impl ChannelSink {
    pub fn new(writer: ChannelWriter) -> Self {
        ChannelSink {
            writer,
            lines: Mutex::new(LineWriter::default()),
        }
    }
}

/// Writes `event` as the channel carries it: a frame when it fits, its JSON
/// line otherwise.
pub(super) fn write_event(out: &mut Vec<u8>, lines: &mut LineWriter, run: &RunInfo, event: &Event) {
    if frame::fits(event) {
        frame::write(out, event);
    } else {
        lines.write(out, run, event).expect("writing to a Vec cannot fail");
    }
}

// A failed send means the loader closed the channel: it is gone or has
// stopped listening, and this process is about to be stopped; there is
// no one left to tell, so the event is dropped.
impl EventSink for ChannelSink {
    fn emit(&self, run: &RunInfo, event: &Event) {
        let mut lines = lock(&self.lines);
        let _ = self.writer.send(|pending| write_event(pending, &mut lines, run, event));
    }

    fn emit_user(&self, run: &RunInfo, event: &UserEvent<'_>) {
        if !frame::fits_user(event) {
            return self.emit(run, &event.to_event());
        }
        let _ = self.writer.send(|pending| frame::write_user(pending, event));
    }

    fn takes_raw_data(&self) -> bool {
        true
    }
}
