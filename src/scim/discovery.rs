//! The SCIM discovery documents (RFC 7644 §4): `/ServiceProviderConfig` (RFC 7643 §5),
//! `/ResourceTypes` (§6) and `/Schemas` (§7) with the User, Group and enterprise User
//! schemas of §8.7.1, and the SCIM 1.1 `/ServiceProviderConfigs` for the Okta
//! on-premises agent. Every document takes the tenant's base URL (e.g.
//! `https://idp.example.com/scim/acme/v2`) for `meta.location`.
//!
//! The schemas are built from compact tables, and the same tables answer
//! [`attribute`]: whether `emails.value` is case-exact, `id` read-only, `password`
//! never returned. Characteristics follow §8.7.1 (descriptions are shortened), with
//! these deliberate changes: Group `displayName` is required (as its description and
//! the reported errata say), and `addresses.primary` and `members.display` exist (§2.4
//! and what Okta sends). The common attributes of §3.1 (`id`, `externalId`, `meta`) are
//! not listed in `/Schemas` (RFC 7643 §3.1) but [`attribute`] knows them for User and
//! Group.

use serde_json::{Value, json};

pub use crate::filter::{GROUP_SCHEMA, USER_SCHEMA};
/// Enterprise User extension URN.
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// `schemas` of a list response (RFC 7644 §3.4.2).
pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// `schemas` of SCIM 1.1 core documents.
pub const V1_CORE_SCHEMA: &str = "urn:scim:schemas:core:1.0";
const SPC_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// What the service provider configuration advertises beyond the fixed capabilities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderOptions {
    /// `filter.maxResults`: the most resources one query returns.
    pub max_results: u32,
    /// `bulk.maxPayloadSize`: the request body limit in bytes.
    pub max_payload_size: u64,
    /// Whether HTTP Basic is offered besides the bearer token.
    pub basic_auth: bool,
    /// `documentationUri`, if there is one.
    pub documentation_uri: Option<String>,
}

impl Default for ProviderOptions {
    /// 1000 results a query, 1 MiB bodies, bearer tokens only, no documentation.
    #[rustfmt::skip]
    fn default() -> Self {
        Self { max_results: 1000, max_payload_size: 1 << 20, basic_auth: false,
            documentation_uri: None }
    }
}

macro_rules! rfc_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }
        impl $name {
            /// The RFC 7643 spelling.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }
    };
}

rfc_enum!(/// An attribute's `type` (RFC 7643 §2.3).
AttributeKind { String => "string", Boolean => "boolean", Decimal => "decimal",
    Integer => "integer", DateTime => "dateTime", Binary => "binary",
    Reference => "reference", Complex => "complex" });
rfc_enum!(/// An attribute's `mutability` (RFC 7643 §7).
Mutability { ReadOnly => "readOnly", ReadWrite => "readWrite", Immutable => "immutable",
    WriteOnly => "writeOnly" });
rfc_enum!(/// When an attribute is `returned` (RFC 7643 §7).
Returned { Always => "always", Never => "never", Default => "default", Request => "request" });
rfc_enum!(/// An attribute's `uniqueness` (RFC 7643 §7).
Uniqueness { None => "none", Server => "server", Global => "global" });

/// The characteristics of one attribute or sub-attribute, from [`attribute`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttributeInfo {
    /// The name as the schema spells it (`userName`, `value`).
    pub name: &'static str,
    pub kind: AttributeKind,
    pub multi_valued: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
}

/// One row of a schema table.
#[derive(Debug, Clone, Copy)]
struct Attr {
    info: AttributeInfo,
    desc: &'static str,
    canonical: &'static [&'static str],
    refs: &'static [&'static str],
    subs: &'static [Attr],
}

/// A single-valued, optional, case-insensitive, readWrite attribute returned by default.
#[rustfmt::skip]
const fn attr(name: &'static str, kind: AttributeKind, desc: &'static str) -> Attr {
    let info = AttributeInfo {
        name, kind, multi_valued: false, required: false, case_exact: false,
        mutability: Mutability::ReadWrite, returned: Returned::Default,
        uniqueness: Uniqueness::None,
    };
    Attr { info, desc, canonical: &[], refs: &[], subs: &[] }
}
const fn string(name: &'static str, desc: &'static str) -> Attr {
    attr(name, AttributeKind::String, desc)
}
const fn boolean(name: &'static str, desc: &'static str) -> Attr {
    attr(name, AttributeKind::Boolean, desc)
}
#[rustfmt::skip]
const fn reference(name: &'static str, refs: &'static [&'static str], desc: &'static str) -> Attr {
    Attr { refs, ..attr(name, AttributeKind::Reference, desc) }
}
#[rustfmt::skip]
const fn complex(name: &'static str, desc: &'static str, subs: &'static [Attr]) -> Attr {
    Attr { subs, ..attr(name, AttributeKind::Complex, desc) }
}

/// The builder steps of the tables, each setting one characteristic.
macro_rules! steps {
    ($($step:ident: $field:ident = $value:expr;)+) => {
        impl Attr { $(const fn $step(mut self) -> Self { self.info.$field = $value; self })+ }
    };
}
steps! {
    multi: multi_valued = true; required: required = true; exact: case_exact = true;
    read_only: mutability = Mutability::ReadOnly; immutable: mutability = Mutability::Immutable;
    write_only: mutability = Mutability::WriteOnly; unique: uniqueness = Uniqueness::Server;
    always: returned = Returned::Always; never: returned = Returned::Never;
}

impl Attr {
    const fn canonical(self, canonical: &'static [&'static str]) -> Self {
        Self { canonical, ..self }
    }

    /// The §7 attribute definition. Like §8.7.1, `caseExact` and `uniqueness` are left
    /// out for complex and boolean attributes.
    fn definition(&self) -> Value {
        let info = &self.info;
        let mut def = json!({
            "name": info.name, "type": info.kind.as_str(), "multiValued": info.multi_valued,
            "description": self.desc, "required": info.required,
            "mutability": info.mutability.as_str(), "returned": info.returned.as_str(),
        });
        if self.subs.is_empty() && info.kind != AttributeKind::Boolean {
            def["caseExact"] = info.case_exact.into();
            def["uniqueness"] = info.uniqueness.as_str().into();
        }
        if !self.canonical.is_empty() {
            def["canonicalValues"] = json!(self.canonical);
        }
        if !self.refs.is_empty() {
            def["referenceTypes"] = json!(self.refs);
        }
        if !self.subs.is_empty() {
            def["subAttributes"] = self.subs.iter().map(Attr::definition).collect();
        }
        def
    }
}

// The tables (RFC 7643 §3.1, §4, §8.7.1).

#[rustfmt::skip]
const DISPLAY: Attr = string("display", "A human-readable name, primarily for display purposes.");
const TYPE: Attr = string("type", "A label indicating the attribute's function.");
#[rustfmt::skip]
const PRIMARY: Attr = boolean("primary",
    "Whether this is the preferred value of the attribute; 'true' appears at most once.");
const WORK_HOME_OTHER: &[&str] = &["work", "home", "other"];

#[rustfmt::skip]
const COMMON: &[Attr] = &[
    string("id", "Unique, stable identifier of the resource, issued by the service provider.")
        .exact().read_only().always().unique(),
    string("externalId", "Identifier of the resource set by the provisioning client.").exact(),
    complex("meta", "Resource metadata, assigned by the service provider.", &[
        string("resourceType", "The name of the resource's type.").exact().read_only(),
        attr("created", AttributeKind::DateTime, "When it was added.").read_only(),
        attr("lastModified", AttributeKind::DateTime, "When it was last changed.").read_only(),
        reference("location", &["uri"], "The URI of the resource.").exact().read_only(),
        string("version", "The version (entity tag) of the resource.").exact().read_only(),
    ]).read_only(),
];

#[rustfmt::skip]
const USER: &[Attr] = &[
    string("userName", "Unique identifier of the User, used to sign in.").required().unique(),
    complex("name", "The components of the user's real name.", &[
        string("formatted", "The full name, with middle names, titles and suffixes, for display."),
        string("familyName", "The family name of the User, or last name in Western languages."),
        string("givenName", "The given name of the User, or first name in Western languages."),
        string("middleName", "The middle name(s) of the User."),
        string("honorificPrefix", "The honorific prefix(es) of the User, or title (e.g., 'Ms.')."),
        string("honorificSuffix", "The honorific suffix(es) of the User (e.g., 'III')."),
    ]),
    string("displayName", "The name of the User, suitable for display to end-users."),
    string("nickName", "The casual way to address the user in real life, e.g., 'Bob'."),
    reference("profileUrl", &["external"], "A fully qualified URL of the User's online profile."),
    string("title", "The user's title, such as 'Vice President'."),
    string("userType", "The relationship between organization and user, e.g., 'Employee'."),
    string("preferredLanguage", "The User's preferred written or spoken language, e.g., 'en-US'."),
    string("locale", "The User's default location, for localizing currency, dates and numbers."),
    string("timezone", "The User's time zone in the 'Olson' format, e.g., 'America/Los_Angeles'."),
    boolean("active", "A Boolean value indicating the User's administrative status."),
    string("password", "The User's cleartext password (initial or reset).").write_only().never(),
    complex("emails", "Email addresses for the User.", &[
        string("value", "Email address for the User, canonicalized by the service provider."),
        DISPLAY, TYPE.canonical(WORK_HOME_OTHER), PRIMARY,
    ]).multi(),
    complex("phoneNumbers", "Phone numbers for the User, e.g., 'tel:+1-201-555-0123'.", &[
        string("value", "Phone number of the User."),
        DISPLAY, TYPE.canonical(&["work", "home", "mobile", "fax", "pager", "other"]), PRIMARY,
    ]).multi(),
    complex("ims", "Instant messaging addresses for the User.", &[
        string("value", "Instant messaging address for the User."),
        DISPLAY,
        TYPE.canonical(&["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"]),
        PRIMARY,
    ]).multi(),
    complex("photos", "URLs of photos of the User.", &[
        reference("value", &["external"], "URL of a photo of the User."),
        DISPLAY, TYPE.canonical(&["photo", "thumbnail"]), PRIMARY,
    ]).multi(),
    complex("addresses", "Physical mailing addresses for the User.", &[
        string("formatted", "The full mailing address, for display; may contain newlines."),
        string("streetAddress", "The full street address component; may contain newlines."),
        string("locality", "The city or locality component."),
        string("region", "The state or region component."),
        string("postalCode", "The zip code or postal code component."),
        string("country", "The country name component, as an ISO 3166-1 alpha-2 code."),
        TYPE.canonical(WORK_HOME_OTHER),
        PRIMARY,
    ]).multi(),
    complex("groups", "Groups the User belongs to, directly, through nesting or dynamically.", &[
        string("value", "The identifier of the User's group.").read_only(),
        reference("$ref", &["User", "Group"], "The URI of the Group resource.").read_only(),
        DISPLAY.read_only(),
        TYPE.canonical(&["direct", "indirect"]).read_only(),
    ]).multi().read_only(),
    complex("entitlements", "Entitlements of the User: things the User has.", &[
        string("value", "The value of an entitlement."), DISPLAY, TYPE, PRIMARY,
    ]).multi(),
    complex("roles", "Roles of the User, e.g., 'Student', 'Faculty'.", &[
        string("value", "The value of a role."), DISPLAY, TYPE, PRIMARY,
    ]).multi(),
    complex("x509Certificates", "Certificates issued to the User.", &[
        attr("value", AttributeKind::Binary, "The value of an X.509 certificate (base64 DER)."),
        DISPLAY, TYPE, PRIMARY,
    ]).multi(),
];

#[rustfmt::skip]
const GROUP: &[Attr] = &[
    string("displayName", "A human-readable name for the Group. REQUIRED.").required(),
    complex("members", "Members of the Group (Users or Groups).", &[
        string("value", "Identifier of the member of this Group.").exact().immutable(),
        reference("$ref", &["User", "Group"], "The URI of the member resource.").immutable(),
        string("type", "The type of the member resource, 'User' or 'Group'.")
            .canonical(&["User", "Group"]).immutable(),
        string("display", "A human-readable name of the member, for display.").immutable(),
    ]).multi(),
];

#[rustfmt::skip]
const ENTERPRISE: &[Attr] = &[
    string("employeeNumber", "Identifier assigned to a person, e.g., by order of hire."),
    string("costCenter", "Identifies the name of a cost center."),
    string("organization", "Identifies the name of an organization."),
    string("division", "Identifies the name of a division."),
    string("department", "Identifies the name of a department."),
    complex("manager", "The User's manager, by the 'id' of another User.", &[
        string("value", "The id of the SCIM resource representing the User's manager.").exact(),
        reference("$ref", &["User"], "The URI of the SCIM resource of the User's manager.").exact(),
        string("displayName", "The displayName of the User's manager. READ-ONLY.").read_only(),
    ]),
];

struct SchemaDef {
    urn: &'static str,
    name: &'static str,
    desc: &'static str,
    attrs: &'static [Attr],
    /// Whether the common attributes (`id`, `externalId`, `meta`) apply.
    core: bool,
}

#[rustfmt::skip]
const SCHEMAS: [SchemaDef; 3] = [
    SchemaDef { urn: USER_SCHEMA, name: "User", desc: "User Account", attrs: USER, core: true },
    SchemaDef { urn: GROUP_SCHEMA, name: "Group", desc: "Group", attrs: GROUP, core: true },
    SchemaDef {
        urn: ENTERPRISE_USER_SCHEMA, name: "EnterpriseUser", desc: "Enterprise User",
        attrs: ENTERPRISE, core: false,
    },
];

/// `(name, endpoint, description, schema, extensions)` of the resource types.
#[rustfmt::skip]
const RESOURCE_TYPES: [(&str, &str, &str, &str, &[&str]); 2] = [
    ("User", "/Users", "User Account", USER_SCHEMA, &[ENTERPRISE_USER_SCHEMA]),
    ("Group", "/Groups", "Group", GROUP_SCHEMA, &[]),
];

fn schema_def(urn: &str) -> Option<&'static SchemaDef> {
    SCHEMAS.iter().find(|s| s.urn.eq_ignore_ascii_case(urn))
}

fn find<'a>(attrs: &'a [Attr], name: &str) -> Option<&'a Attr> {
    attrs
        .iter()
        .find(|a| a.info.name.eq_ignore_ascii_case(name))
}

/// The characteristics of `path` (`userName`, `emails.value`, `meta.created`) in the
/// schema `schema_urn`, case-insensitively. A path that starts with a known schema URN
/// and `:` (`urn:…:enterprise:2.0:User:manager.value`) is looked up in that schema
/// instead. User and Group also answer for `id`, `externalId` and `meta`. Value filters
/// (`emails[type eq "work"]`) are the caller's to strip; unknown paths give `None`.
pub fn attribute(schema_urn: &str, path: &str) -> Option<AttributeInfo> {
    let qualified = SCHEMAS.iter().find_map(|s| {
        let head = path.get(..s.urn.len())?;
        let rest = path.get(s.urn.len()..)?.strip_prefix(':')?;
        head.eq_ignore_ascii_case(s.urn).then_some((s, rest))
    });
    let (def, rest) = match qualified {
        Some(found) => found,
        None => (schema_def(schema_urn)?, path),
    };
    let (top, sub) = rest
        .split_once('.')
        .map_or((rest, None), |(top, sub)| (top, Some(sub)));
    let found = find(def.attrs, top).or_else(|| def.core.then(|| find(COMMON, top)).flatten())?;
    match sub {
        Some(sub) => find(found.subs, sub).map(|a| a.info),
        None => Some(found.info),
    }
}

fn trim(base: &str) -> &str {
    base.trim_end_matches('/')
}

/// A `ListResponse` holding all of `resources` (one page from index 1).
pub fn list_response(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": resources.len(),
        "itemsPerPage": resources.len(),
        "startIndex": 1,
        "Resources": resources,
    })
}

/// Bearer token, and HTTP Basic if offered; SCIM 1.1 spells the key `specUrl`.
fn auth_schemes(opts: &ProviderOptions, uri_key: &str) -> Value {
    let bearer = (
        "oauthbearertoken",
        "OAuth Bearer Token",
        "a bearer token",
        6750,
    );
    let basic = ("httpbasic", "HTTP Basic", "HTTP Basic", 7617);
    let offered = [Some(bearer), opts.basic_auth.then_some(basic)];
    let schemes = offered.into_iter().flatten().enumerate();
    let schemes = schemes.map(|(i, (kind, name, what, rfc))| {
        json!({
            "type": kind,
            "name": name,
            "description": format!("Authentication with {what} (RFC {rfc})"),
            format!("spec{uri_key}"): format!("https://www.rfc-editor.org/info/rfc{rfc}"),
            "primary": i == 0,
        })
    });
    schemes.collect()
}

/// The capabilities both versions advertise, plus the version's own keys in `extra`.
fn provider_config(opts: &ProviderOptions, uri_key: &str, extra: Value) -> Value {
    let mut doc = json!({
        "patch": { "supported": true },
        "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": opts.max_payload_size },
        "filter": { "supported": true, "maxResults": opts.max_results },
        "changePassword": { "supported": false },
        "sort": { "supported": true },
        "etag": { "supported": true },
        "authenticationSchemes": auth_schemes(opts, uri_key),
    });
    if let (Some(map), Value::Object(extra)) = (doc.as_object_mut(), extra) {
        map.extend(extra);
        if let Some(uri) = &opts.documentation_uri {
            map.insert(format!("documentation{uri_key}"), uri.as_str().into());
        }
    }
    doc
}

/// `GET /ServiceProviderConfig` (RFC 7643 §5): PATCH, filter, sort and ETags
/// supported; bulk and password change not.
pub fn service_provider_config(base: &str, opts: &ProviderOptions) -> Value {
    let location = format!("{}/ServiceProviderConfig", trim(base));
    let meta = json!({ "resourceType": "ServiceProviderConfig", "location": location });
    provider_config(
        opts,
        "Uri",
        json!({ "schemas": [SPC_SCHEMA], "meta": meta }),
    )
}

/// `GET /ServiceProviderConfigs` of SCIM 1.1: the same capabilities in the 1.1 shape
/// (`…Url` keys, `xmlDataFormat` unsupported).
pub fn service_provider_config_v1(base: &str, opts: &ProviderOptions) -> Value {
    let meta = json!({ "location": format!("{}/ServiceProviderConfigs", trim(base)) });
    let extra = json!({ "schemas": [V1_CORE_SCHEMA], "xmlDataFormat": { "supported": false } });
    let mut doc = provider_config(opts, "Url", extra);
    if let Some(map) = doc.as_object_mut() {
        map.insert("meta".into(), meta);
    }
    doc
}

fn resource_type_doc(base: &str, rt: &(&str, &str, &str, &str, &[&str])) -> Value {
    let (name, endpoint, description, schema, extensions) = *rt;
    let mut doc = json!({
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": name,
        "name": name,
        "endpoint": endpoint,
        "description": description,
        "schema": schema,
        "meta": {
            "resourceType": "ResourceType",
            "location": format!("{}/ResourceTypes/{name}", trim(base)),
        },
    });
    if let (false, Some(map)) = (extensions.is_empty(), doc.as_object_mut()) {
        let ext = extensions
            .iter()
            .map(|s| json!({ "schema": s, "required": false }));
        map.insert("schemaExtensions".into(), ext.collect());
    }
    doc
}

/// `GET /ResourceTypes` (RFC 7643 §6): User (with the optional enterprise extension)
/// and Group, as a list response.
pub fn resource_types(base: &str) -> Value {
    let docs = RESOURCE_TYPES.iter().map(|rt| resource_type_doc(base, rt));
    list_response(docs.collect())
}

/// `GET /ResourceTypes/{name}`, the name matched case-insensitively.
pub fn resource_type(base: &str, name: &str) -> Option<Value> {
    let rt = RESOURCE_TYPES
        .iter()
        .find(|rt| rt.0.eq_ignore_ascii_case(name))?;
    Some(resource_type_doc(base, rt))
}

fn schema_doc(base: &str, def: &SchemaDef) -> Value {
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": def.urn,
        "name": def.name,
        "description": def.desc,
        "attributes": def.attrs.iter().map(Attr::definition).collect::<Vec<_>>(),
        "meta": {
            "resourceType": "Schema",
            "location": format!("{}/Schemas/{}", trim(base), def.urn),
        },
    })
}

/// `GET /Schemas` (RFC 7643 §7): the User, Group and enterprise User schemas.
pub fn schemas(base: &str) -> Value {
    list_response(SCHEMAS.iter().map(|def| schema_doc(base, def)).collect())
}

/// `GET /Schemas/{id}`, the URN matched case-insensitively.
pub fn schema(base: &str, id: &str) -> Option<Value> {
    schema_def(id).map(|def| schema_doc(base, def))
}

#[cfg(test)]
mod tests;
