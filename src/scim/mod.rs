//! The inbound SCIM side (issue 4), built up as tested library pieces before the server
//! that uses them: tenant bearer tokens, SCIM resources to and from the common model, and
//! RFC 7644 PATCH.
//! See docs/ARCHITECTURE.md for the plan.

pub mod patch;
pub mod resource;
pub mod tokens;
