//! SCIM 2.0 PATCH (RFC 7644 §3.5.2) applied to a resource held as JSON: [`parse_request`]
//! checks a request body and [`apply`] runs its operations, all or nothing, against a
//! User or Group described by a [`ResourceSchema`]. Paths are parsed with
//! [`crate::filter::parse_path`] and value filters evaluated with
//! [`crate::filter::Filter::matches_with`].
//!
//! ```
//! use idsync::scim::patch::{apply, parse_request, GROUP_SCHEMA};
//! use serde_json::json;
//!
//! let mut group = json!({"id": "g1", "displayName": "Staff", "members": [{"value": "u1"}]});
//! let request = parse_request(&json!({
//!     "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
//!     "Operations": [
//!         {"op": "Add", "path": "members", "value": [{"value": "u2"}]},
//!         {"op": "Remove", "path": "members[value eq \"u1\"]"}
//!     ]
//! }))?;
//! let outcome = apply(&mut group, &request, &GROUP_SCHEMA)?;
//! assert_eq!(group["members"], json!([{"value": "u2"}]));
//! assert_eq!((outcome.members_added, outcome.members_removed), (vec!["u2".to_owned()], vec!["u1".to_owned()]));
//! # Ok::<(), idsync::scim::patch::PatchError>(())
//! ```
//!
//! # Semantics
//!
//! `add`, `replace` and `remove` follow RFC 7644 §3.5.2.1–3.5.2.3: single-valued
//! attributes are set, multi-valued ones appended to (`add`) or replaced whole
//! (`replace`), complex ones merged sub-attribute by sub-attribute; `attr[filter]` acts
//! on the matching elements of a multi-valued attribute and `attr[filter].sub` on their
//! sub-attribute. Setting `"primary": true` on one element sets it to false on the
//! others (§3.5.2). Attribute names match existing keys case-insensitively, and an
//! existing key keeps its spelling. Extension attributes live under their schema URN
//! key; writing one adds the URN to `schemas`, and an extension left empty is removed
//! together with its URN.
//!
//! # Interpretations and tolerances
//!
//! Where the RFC is silent, or real identity providers (Entra ID, Okta, OneLogin) send
//! something it does not allow, this module chooses:
//!
//! - **Op names, keys**: `op` values and the `op`/`path`/`value`/`Operations`/`schemas`
//!   keys match in any case. A `null` or empty `path` counts as no path.
//! - **No match**: `add` or `replace` on `attr[filter]` matching no element fails with
//!   `noTarget`, except `attr[filter].sub` when the filter is only `eq` comparisons of
//!   plain sub-attributes joined by `and` (`emails[type eq "work"].value`): then a new
//!   element is created from those comparisons plus the sub-attribute, as Entra ID
//!   expects when it provisions a first work e-mail. `remove` matching nothing succeeds
//!   with `changed == false`.
//! - **Sub-attribute of a multi-valued attribute without a filter** (`emails.value`):
//!   addresses every element; `add`/`replace` create one element when there is none.
//! - **Remove with a value**: `{"op":"remove","path":"members","value":[{"value":"id"}]}`
//!   (Entra ID) removes exactly the listed elements of a multi-valued attribute: members
//!   by `value`, other attributes by equal JSON. On a single-valued attribute the value
//!   is ignored and the attribute removed.
//! - **Duplicates**: `add` skips elements already present (members: same `value`;
//!   others: equal JSON); `replace` of a whole multi-valued attribute drops duplicates.
//! - **Member ids** compare case-exactly, also inside filters (`members[value eq "…"]`),
//!   as ids are case-exact (RFC 7643 §3.1). Every other string comparison in a filter is
//!   case-insensitive. A member must be an object with a string `value`.
//! - **Null**: `add`/`replace` with a `null` value unassigns the target (RFC 7643 §2.5:
//!   null and unassigned are the same state), like `remove`; so does a `null`
//!   sub-attribute inside an object value. A multi-valued attribute left without
//!   elements by a `remove` is removed (§3.5.2.2).
//! - **Booleans**: `active` and `primary` accept the strings `"true"`/`"false"` in any
//!   case (Entra ID sends `"False"`); anything else that is not a boolean is
//!   `invalidValue`.
//! - **Arrays of one**: a one-element array holding a scalar, given where a
//!   single value is expected (a single-valued attribute, or a sub-attribute), is
//!   unwrapped; a single object given for a multi-valued attribute is wrapped.
//! - **Enterprise manager**: a bare id string (Entra ID) becomes `{"value": id}`, and an
//!   empty string unassigns the manager.
//! - **Path-less values**: keys may be attribute names, dotted `name.givenName`, full
//!   `urn:…:User:department` paths, or an extension URN whose value is an object of
//!   its attributes; each key acts like an operation with that path. `schemas` is
//!   ignored there (the server keeps it), and so is `id` when equal to the current id
//!   (Entra ID echoes it). A path that is a bare extension URN targets the extension
//!   object; a bare core schema URN targets the resource.
//! - **Read-only** (`id`, `meta`, `groups` on User) and `schemas` as a path fail with
//!   `mutability`. Paths under an unknown schema URN fail with `invalidPath`.
//! - **Not done here**: `meta.lastModified` and versions are the caller's (see
//!   [`PatchOutcome::changed`]); required attributes and types beyond the booleans are
//!   not checked.
//! - **Members** on a resource whose schema lists `members` as multi-valued are kept in
//!   an index across the request's operations, so adding or removing members costs
//!   time in proportion to the members touched, not the group's size.

mod apply;
mod members;
mod ops;
mod paths;
mod request;
mod values;

#[cfg(test)]
pub(crate) mod proptests;
#[cfg(test)]
mod tests;

pub use apply::apply;
pub use paths::{ENTERPRISE_USER_URN, GROUP_SCHEMA, ResourceSchema, USER_SCHEMA};
pub use request::{MAX_OPERATIONS, OpKind, PATCH_OP_URN, PatchOp, PatchRequest, parse_request};

/// What [`apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatchOutcome {
    /// Whether the resource differs from before (the caller bumps `meta.lastModified`
    /// and the version only then).
    pub changed: bool,
    /// Member ids (`members[].value`) present after the request and not before, in the
    /// order they appear in `members`.
    pub members_added: Vec<String>,
    /// Member ids present before the request and not after, in their former order.
    pub members_removed: Vec<String>,
}

/// Why a PATCH request was rejected. Every variant maps to an RFC 7644 §3.12 `scimType`
/// ([`PatchError::scim_type`]), all with HTTP status 400; the message says which
/// operation and path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The body is not a PatchOp message (`invalidSyntax`).
    #[error("{0}")]
    InvalidSyntax(String),
    /// A path does not parse or names nothing this resource can hold (`invalidPath`).
    #[error("{0}")]
    InvalidPath(String),
    /// A path's filter matched nothing where a match is needed, or `remove` has no path
    /// (`noTarget`).
    #[error("{0}")]
    NoTarget(String),
    /// A value has the wrong shape or type (`invalidValue`).
    #[error("{0}")]
    InvalidValue(String),
    /// The operation would change a read-only attribute (`mutability`).
    #[error("{0}")]
    Mutability(String),
    /// More operations than [`MAX_OPERATIONS`] (`tooMany`).
    #[error("{0}")]
    TooMany(String),
}

impl PatchError {
    /// The RFC 7644 §3.12 `scimType` for the error response.
    pub fn scim_type(&self) -> &'static str {
        match self {
            PatchError::InvalidSyntax(_) => "invalidSyntax",
            PatchError::InvalidPath(_) => "invalidPath",
            PatchError::NoTarget(_) => "noTarget",
            PatchError::InvalidValue(_) => "invalidValue",
            PatchError::Mutability(_) => "mutability",
            PatchError::TooMany(_) => "tooMany",
        }
    }

    /// The human-readable message (the `detail` of the error response).
    pub fn message(&self) -> &str {
        match self {
            PatchError::InvalidSyntax(m)
            | PatchError::InvalidPath(m)
            | PatchError::NoTarget(m)
            | PatchError::InvalidValue(m)
            | PatchError::Mutability(m)
            | PatchError::TooMany(m) => m,
        }
    }

    /// The same error with `operation N: ` before its message.
    pub(crate) fn in_operation(self, number: usize) -> Self {
        let prefix = |m: String| format!("operation {number}: {m}");
        match self {
            PatchError::InvalidSyntax(m) => PatchError::InvalidSyntax(prefix(m)),
            PatchError::InvalidPath(m) => PatchError::InvalidPath(prefix(m)),
            PatchError::NoTarget(m) => PatchError::NoTarget(prefix(m)),
            PatchError::InvalidValue(m) => PatchError::InvalidValue(prefix(m)),
            PatchError::Mutability(m) => PatchError::Mutability(prefix(m)),
            PatchError::TooMany(m) => PatchError::TooMany(prefix(m)),
        }
    }
}
