//! The plugin-api version: the one this crate implements, and the one a
//! plugin library declares in its header (abi_stable's version strings).

use abi_stable::sabi_types::VersionStrings;

/// The plugin-api version this crate implements (and that a plugin built
/// against it declares in its library header).
pub const API_VERSION: ApiVersion = ApiVersion::current();

/// A plugin-api version: what a plugin was built against, or what a host has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    /// Major version: a different one is incompatible.
    pub major: u32,
    /// Minor version: a later one only appends to the boundary.
    pub minor: u32,
    /// Patch version: no effect on the boundary.
    pub patch: u32,
}

impl ApiVersion {
    const fn current() -> Self {
        Self {
            major: parse_u32(env!("CARGO_PKG_VERSION_MAJOR")),
            minor: parse_u32(env!("CARGO_PKG_VERSION_MINOR")),
            patch: parse_u32(env!("CARGO_PKG_VERSION_PATCH")),
        }
    }

    /// Reads the version an abi_stable library header declares.
    pub fn from_version_strings(v: &VersionStrings) -> Option<Self> {
        let n = abi_stable::sabi_types::VersionNumber::new(*v).ok()?;
        Some(Self {
            major: n.major,
            minor: n.minor,
            patch: n.patch,
        })
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

const fn parse_u32(s: &str) -> u32 {
    let bytes = s.as_bytes();
    let mut value = 0u32;
    let mut i = 0;
    while i < bytes.len() {
        value = value * 10 + (bytes[i] - b'0') as u32;
        i += 1;
    }
    value
}
