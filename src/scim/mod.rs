//! The inbound SCIM side (issue 4), built up as tested library pieces before the server
//! that uses them: tenant bearer tokens, and SCIM resources to and from the common model.
//! See docs/ARCHITECTURE.md for the plan.

pub mod resource;
pub mod tokens;
