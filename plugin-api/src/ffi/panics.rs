//! Catching panics before they reach the boundary: a panic in plugin code
//! becomes its message and location, recorded instead of printed (the host
//! reports it as an event), and never unwinds across `extern "C"`.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `f`, turning a panic into its message and location. While it runs,
/// the panic hook records the panic instead of printing it: the host
/// reports it as an event.
pub(crate) fn catch_panic_message<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_panic_hook();
    let was_capturing = CAPTURING.with(|c| c.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    CAPTURING.with(|c| c.set(was_capturing));
    result.map_err(|payload| {
        let recorded = LAST_PANIC.with(|p| p.borrow_mut().take());
        recorded.unwrap_or_else(|| panic_message(&*payload))
    })
}

/// The message of a caught panic.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

fn install_panic_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CAPTURING.with(|c| c.get()) {
                let message = panic_message(info.payload());
                let text = match info.location() {
                    Some(at) => format!("{message} (at {}:{})", at.file(), at.line()),
                    None => message,
                };
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(text));
            } else {
                previous(info);
            }
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message_and_location() {
        let message = catch_panic_message(|| -> () { panic!("boom {}", 7) }).unwrap_err();
        assert!(message.starts_with("boom 7 (at "), "{message}");
        assert!(message.contains("panics.rs:"), "{message}");
    }

    #[test]
    fn a_value_passes_through_and_nesting_keeps_capturing() {
        let outer = catch_panic_message(|| {
            let inner = catch_panic_message(|| -> () { panic!("inner") });
            assert!(inner.unwrap_err().starts_with("inner"));
            42
        });
        assert_eq!(outer, Ok(42));
    }

    #[test]
    fn a_non_string_payload_is_named() {
        let payload: Box<dyn std::any::Any + Send> = Box::new(3_u8);
        assert_eq!(panic_message(&*payload), "panic with a non-string payload");
    }
}
