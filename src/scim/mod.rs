//! The inbound SCIM side (issue 4), built up as tested library pieces before the server
//! that uses them: tenant bearer tokens today. See docs/ARCHITECTURE.md for the plan.

pub mod tokens;
