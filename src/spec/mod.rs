//! The configuration machinery every settings file uses: problems with file, line and
//! key, secrets by reference, durations, paths and typed checks.
//!
//! It is the lowest floor of the configuration: it imports nothing of idsync above it, so
//! the tree loader ([`crate::config`]) and each connector kind's own settings
//! (`connectors/<kind>/settings.rs`) can both build on it without importing each other
//! both ways.

pub mod check;
pub mod duration;
pub mod path;
pub mod problems;
pub mod secret;

pub use duration::parse_duration;
pub use problems::Problem;
pub use secret::{SecretError, SecretRef, SecretString, StringOrSecret};
