//! Cross-crate and end-to-end tests live in `tests/tests/*.rs`; they build
//! the real loader, sample plugins and fixture plugins they need.
