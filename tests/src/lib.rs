//! Cross-crate and end-to-end tests live in `tests/tests/`: the modules of
//! the `integration` test binary (`main.rs`) and the `ray` one (`ray/`); they build
//! the real loader, sample plugins and fixture plugins they need.
