//! The inbound SCIM side (issue 4), built up as tested library pieces before the server
//! that uses them: tenant bearer tokens (`tokens`), SCIM resources to and from the common
//! model (`resource`), RFC 7644 PATCH (`patch`), the discovery documents with the RFC 7643
//! attribute tables (`discovery`) and the RFC 7644 error body (`error`). See
//! docs/ARCHITECTURE.md for the plan.

pub mod discovery;
pub mod error;
pub mod patch;
pub mod resource;
pub mod server;
