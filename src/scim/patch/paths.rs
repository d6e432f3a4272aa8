//! What a resource type looks like to PATCH ([`ResourceSchema`], with the core User and
//! Group), and the resolution of a PATCH path against it: which object holds the
//! attribute (the resource or an extension), the attribute, its value filter and
//! sub-attribute.
//!
//! [`crate::filter::parse_path`] reads a bare URN such as
//! `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User` as schema `…:2.0` plus
//! attribute `User`, so known schema URNs are recognised before it is called.

use crate::filter::{Filter, parse_path};

use super::PatchError;

/// The facts about a resource type that PATCH needs. Attribute names compare
/// case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceSchema {
    /// The core schema URN; a path may be prefixed with it.
    pub core_urn: &'static str,
    /// Extension schema URNs: their attributes live in an object under the URN key.
    pub extension_urns: &'static [&'static str],
    /// Core attributes that are multi-valued (arrays).
    pub multi_valued: &'static [&'static str],
    /// Core attributes clients may not change (`mutability` error).
    pub read_only: &'static [&'static str],
}

/// The enterprise User extension (RFC 7643 §4.3).
pub use crate::scim::discovery::ENTERPRISE_USER_SCHEMA as ENTERPRISE_USER_URN;

/// The core User (RFC 7643 §4.1) with the enterprise extension.
pub const USER_SCHEMA: ResourceSchema = ResourceSchema {
    core_urn: crate::scim::discovery::USER_SCHEMA,
    extension_urns: &[ENTERPRISE_USER_URN],
    multi_valued: crate::filter::USER_MULTI_VALUED,
    read_only: &["id", "meta", "groups"],
};

/// The core Group (RFC 7643 §4.2).
pub const GROUP_SCHEMA: ResourceSchema = ResourceSchema {
    core_urn: crate::scim::discovery::GROUP_SCHEMA,
    extension_urns: &[],
    multi_valued: &["members"],
    read_only: &["id", "meta"],
};

/// The attribute the resource keeps its schema URNs in; managed here, not by clients.
pub(super) const SCHEMAS: &str = "schemas";

/// The multi-valued attribute whose elements are group members.
pub(super) const MEMBERS: &str = "members";

impl ResourceSchema {
    /// Whether `name` is a multi-valued core attribute.
    pub fn is_multi_valued(&self, name: &str) -> bool {
        contains_ci(self.multi_valued, name)
    }

    /// Whether `name` is a read-only core attribute.
    pub fn is_read_only(&self, name: &str) -> bool {
        contains_ci(self.read_only, name)
    }

    /// The known extension URN equal to `urn` ignoring case, in its canonical spelling.
    pub fn extension(&self, urn: &str) -> Option<&'static str> {
        self.extension_urns
            .iter()
            .copied()
            .find(|known| known.eq_ignore_ascii_case(urn))
    }

    /// Whether this resource type has group members (`members` is multi-valued).
    pub(super) fn has_members(&self) -> bool {
        self.is_multi_valued(MEMBERS)
    }

    /// The schema's spelling of a core attribute name, or `name` itself when unknown.
    pub(super) fn spelling(&self, name: &str) -> String {
        self.multi_valued
            .iter()
            .chain(self.read_only)
            .chain(&["active", SCHEMAS])
            .find(|known| known.eq_ignore_ascii_case(name))
            .map_or_else(|| name.to_owned(), |known| (*known).to_owned())
    }
}

fn contains_ci(names: &[&str], name: &str) -> bool {
    names.iter().any(|known| known.eq_ignore_ascii_case(name))
}

/// Which object holds an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// The resource itself (core attributes, and extension objects by their URN key).
    Root,
    /// The object under this extension URN.
    Extension(&'static str),
}

/// A resolved path below the resource.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub scope: Scope,
    /// The attribute name as written.
    pub attr: String,
    /// The value filter, `type eq "work"` in `emails[type eq "work"]`.
    pub filter: Option<Filter>,
    /// The sub-attribute: `givenName` in `name.givenName`, `value` in
    /// `emails[type eq "work"].value`.
    pub sub: Option<String>,
    /// The path as sent, for messages.
    pub text: String,
}

/// What a path names.
#[derive(Debug, Clone)]
pub(super) enum Resolved {
    /// The resource itself: a bare core schema URN, as if there were no path.
    Resource,
    /// An attribute (possibly filtered, possibly a sub-attribute).
    Attribute(Target),
}

impl Target {
    /// Whether this is the `members` attribute of a resource type that has members.
    pub fn is_members(&self, schema: &ResourceSchema) -> bool {
        self.scope == Scope::Root && schema.has_members() && self.attr.eq_ignore_ascii_case(MEMBERS)
    }

    /// Whether the attribute is declared multi-valued (core attributes only).
    pub fn declared_multi(&self, schema: &ResourceSchema) -> bool {
        self.scope == Scope::Root && schema.is_multi_valued(&self.attr)
    }
}

/// Resolves `path` against `schema`.
pub(super) fn resolve(path: &str, schema: &ResourceSchema) -> Result<Resolved, PatchError> {
    let path = path.trim();
    if path.eq_ignore_ascii_case(schema.core_urn) {
        return Ok(Resolved::Resource);
    }
    if let Some(urn) = schema.extension(path) {
        return Ok(Resolved::Attribute(Target {
            scope: Scope::Root,
            attr: urn.to_owned(),
            filter: None,
            sub: None,
            text: path.to_owned(),
        }));
    }
    let parsed = parse_path(path)
        .map_err(|e| PatchError::InvalidPath(format!("path {path:?} is not valid: {e}")))?;
    let scope = match parsed.attr.schema.as_deref() {
        None => Scope::Root,
        Some(urn) if urn.eq_ignore_ascii_case(schema.core_urn) => Scope::Root,
        Some(urn) => match schema.extension(urn) {
            Some(urn) => Scope::Extension(urn),
            None => {
                let mut known = vec![schema.core_urn];
                known.extend(schema.extension_urns);
                return Err(PatchError::InvalidPath(format!(
                    "path {path:?} names schema {urn:?}, which this resource does not have \
                     (known: {})",
                    known.join(", ")
                )));
            }
        },
    };
    let sub = match (parsed.attr.sub_attr, parsed.sub_attr) {
        (Some(_), Some(_)) => {
            return Err(PatchError::InvalidPath(format!(
                "path {path:?} has a sub-attribute both before and after the filter"
            )));
        }
        (Some(_), None) if parsed.filter.is_some() => {
            return Err(PatchError::InvalidPath(format!(
                "path {path:?} filters a sub-attribute; put the filter on the attribute, \
                 as in emails[type eq \"work\"].value"
            )));
        }
        (before, after) => before.or(after),
    };
    Ok(Resolved::Attribute(Target {
        scope,
        attr: parsed.attr.attr,
        filter: parsed.filter,
        sub,
        text: path.to_owned(),
    }))
}
