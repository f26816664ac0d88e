//! A reused per-thread buffer for the JSON text of log entries, so that a
//! `log` call does not allocate one: the entry is written into it, sent to
//! the host, and the buffer is cleared for the next call.

use std::cell::RefCell;

/// A buffer grown past this by a large entry is given back afterwards.
const KEPT_CAPACITY: usize = 64 * 1024;

thread_local! {
    static ENTRY: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(256));
}

/// Runs `f` with an empty buffer: this thread's reused one, or a fresh one
/// when it is in use (a `Serialize` impl that logs while being logged) or
/// the thread is ending.
pub(crate) fn with<T>(f: impl FnOnce(&mut Vec<u8>) -> T) -> T {
    let mut f = Some(f);
    let reused = ENTRY.try_with(|cell| {
        let mut buffer = cell.try_borrow_mut().ok()?;
        buffer.clear();
        let result = (f.take().expect("called once"))(&mut buffer);
        if buffer.capacity() > KEPT_CAPACITY {
            *buffer = Vec::with_capacity(256);
        }
        Some(result)
    });
    match (reused, f) {
        (Ok(Some(result)), _) => result,
        (_, Some(f)) => f(&mut Vec::new()),
        (_, None) => unreachable!("f ran but gave no result"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_call_starts_empty_and_a_nested_call_gets_its_own_buffer() {
        with(|b| b.extend_from_slice(b"first"));
        let (outer, inner) = with(|outer| {
            assert!(outer.is_empty());
            outer.extend_from_slice(b"outer");
            let inner = with(|inner| {
                assert!(inner.is_empty(), "a nested call never sees the outer entry");
                inner.extend_from_slice(b"inner");
                inner.clone()
            });
            (outer.clone(), inner)
        });
        assert_eq!((outer.as_slice(), inner.as_slice()), (&b"outer"[..], &b"inner"[..]));
    }

    #[test]
    fn a_huge_entry_does_not_stay_allocated() {
        with(|b| b.resize(KEPT_CAPACITY * 4, b'x'));
        let capacity = ENTRY.with(|cell| cell.borrow().capacity());
        assert!(capacity <= KEPT_CAPACITY, "{capacity}");
    }
}
