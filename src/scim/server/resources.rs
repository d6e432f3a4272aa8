//! What users and groups share on the way in and out: `meta`, the answer to a read or a
//! write (shaped by `attributes`/`excludedAttributes`, with ETag and Location), reading a
//! resource inside a write, GET with `If-None-Match`, and the per-tenant uniqueness of the
//! name.

use axum::http::{StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::AnyConnection;

use super::params::{Shape, shape};
use super::write::{self, Change};
use super::{Call, Reply, v1};
use crate::db::{DbError, WriteTx};
use crate::model::{SourceGroup, SourceUser, content_hash, name_key};
use crate::scim::discovery;
use crate::scim::error::{ScimError, ScimType};
use crate::scim::patch;
use crate::scim::resource::{Meta, group_to_scim, user_to_scim};
use crate::store::mirror::query::Resource;
use crate::store::pushed::{self as store, Put, Stored};

/// A resource type the server keeps in a tenant's mirror.
pub(super) trait Pushed: DeserializeOwned + Serialize {
    const RESOURCE: Resource;
    /// `User` / `Group` (meta.resourceType).
    const TYPE: &'static str;
    /// `Users` / `Groups`.
    const ENDPOINT: &'static str;
    /// The unique name's attribute, for messages.
    const NAME_ATTRIBUTE: &'static str;
    /// The core schema a pushed body's attributes are checked against.
    const SCHEMA: &'static str;
    /// Attributes a client may send but that are never stored.
    const DROPPED: &'static [&'static str];
    /// What PATCH needs to know of the type.
    const PATCH_SCHEMA: patch::ResourceSchema;
    fn id(&self) -> &str;
    fn name(&self) -> &str;
    /// The SCIM JSON, in the 2.0 shape.
    fn to_scim(&self, meta: &Meta, base: &str) -> Value;
}

impl Pushed for SourceUser {
    const RESOURCE: Resource = Resource::User;
    const TYPE: &'static str = "User";
    const ENDPOINT: &'static str = "Users";
    const NAME_ATTRIBUTE: &'static str = "userName";
    const SCHEMA: &'static str = discovery::USER_SCHEMA;
    /// The password (idsync is not a credential store), and what the server manages.
    const DROPPED: &'static [&'static str] = &["password", "groups", "meta", "id"];
    const PATCH_SCHEMA: patch::ResourceSchema = patch::USER_SCHEMA;
    fn id(&self) -> &str {
        &self.external_id
    }
    fn name(&self) -> &str {
        &self.user_name
    }
    fn to_scim(&self, meta: &Meta, _base: &str) -> Value {
        user_to_scim(self, meta)
    }
}

impl Pushed for SourceGroup {
    const RESOURCE: Resource = Resource::Group;
    const TYPE: &'static str = "Group";
    const ENDPOINT: &'static str = "Groups";
    const NAME_ATTRIBUTE: &'static str = "displayName";
    const SCHEMA: &'static str = discovery::GROUP_SCHEMA;
    const DROPPED: &'static [&'static str] = &["meta", "id"];
    const PATCH_SCHEMA: patch::ResourceSchema = patch::GROUP_SCHEMA;
    fn id(&self) -> &str {
        &self.external_id
    }
    fn name(&self) -> &str {
        &self.display_name
    }
    fn to_scim(&self, meta: &Meta, base: &str) -> Value {
        group_to_scim(self, meta, base)
    }
}

/// Checks a pushed body's attributes and drops what is never stored. Unknown core
/// attributes are refused; extension objects (under a URN key) are kept as sent.
pub(super) fn sanitize<T: Pushed>(
    body: &mut Value,
) -> Result<&mut serde_json::Map<String, Value>, ScimError> {
    let Some(object) = body.as_object_mut() else {
        return Err(ScimError::bad_request(
            ScimType::InvalidSyntax,
            "the body must be a JSON object",
        ));
    };
    object.retain(|k, _| !T::DROPPED.iter().any(|d| k.eq_ignore_ascii_case(d)));
    for key in object.keys() {
        if key.starts_with("urn:") || key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if discovery::attribute(T::SCHEMA, key).is_none() {
            return Err(ScimError::bad_request(
                ScimType::InvalidSyntax,
                format!("`{key}` is not an attribute of a {}", T::TYPE),
            ));
        }
    }
    Ok(object)
}

fn noun<T: Pushed>() -> &'static str {
    match T::RESOURCE {
        Resource::User => "user",
        Resource::Group => "group",
    }
}

pub(super) fn not_found<T: Pushed>(id: &str) -> ScimError {
    ScimError::not_found(format!("no {} with id {id:?} in this tenant", noun::<T>()))
}

pub(super) fn meta<T: Pushed>(call: &Call<'_>, stored: &Stored<T>) -> Meta {
    Meta {
        resource_type: T::TYPE,
        created: stored.created.clone(),
        last_modified: stored.modified.clone(),
        location: format!("{}/{}/{}", call.base, T::ENDPOINT, stored.record.id()),
        version: stored.version.clone(),
    }
}

/// The resource as the client sees it, in the call's protocol version.
pub(super) fn render<T: Pushed>(call: &Call<'_>, stored: &Stored<T>) -> Value {
    v1::outgoing(
        call.version,
        stored.record.to_scim(&meta(call, stored), &call.base),
    )
}

/// The answer carrying a resource: shaped by `attributes`/`excludedAttributes`, its
/// version as ETag, its location on a 201.
pub(super) fn answer<T: Pushed>(
    call: &Call<'_>,
    status: StatusCode,
    stored: &Stored<T>,
    operation: String,
) -> Reply {
    let body = shape(render(call, stored), &Shape::from_query(call.query));
    let mut reply = Reply::json(status, body, operation);
    reply.etag = Some(stored.version.clone());
    if status == StatusCode::CREATED {
        reply.location = Some(meta(call, stored).location);
    }
    reply
}

async fn fetch<T: Pushed>(
    conn: &mut sqlx::AnyConnection,
    tenant: &str,
    id: &str,
) -> Result<Option<Stored<T>>, ScimError> {
    Ok(store::get::<T>(conn, T::RESOURCE, tenant, id).await?)
}

/// Starts a write on resource `id`: the transaction (holding the tenant's lock) and the
/// resource as stored in it (404 when there is none), whose version must satisfy
/// `If-Match`.
pub(super) async fn begin_on<T: Pushed>(
    call: &Call<'_>,
    id: &str,
) -> Result<(WriteTx, Stored<T>), ScimError> {
    let mut tx = write::begin(call).await?;
    let existing: Stored<T> = fetch(tx.conn(), &call.tenant.id, id)
        .await?
        .ok_or_else(|| not_found::<T>(id))?;
    call.check_if_match(&existing.version)?;
    Ok((tx, existing))
}

/// What the call's PATCH does to a stored resource.
pub(super) enum Patched<T> {
    /// Nothing changes: the answer (the write is dropped).
    Unchanged(Reply),
    Changed(Patch<T>),
}

/// A PATCH that changes the resource, inside its write.
pub(super) struct Patch<T> {
    pub tx: WriteTx,
    /// The resource as stored.
    pub existing: Stored<T>,
    /// The patched resource as SCIM JSON, still to be checked and stored in place of
    /// `existing`.
    pub resource: Value,
}

/// Applies the call's PATCH request to resource `id` inside a new write.
pub(super) async fn patch<T: Pushed>(call: &Call<'_>, id: &str) -> Result<Patched<T>, ScimError> {
    let body = call.json_body()?;
    let request = v1::patch_request(call.version, &body, T::SCHEMA)?;
    let (tx, existing) = begin_on::<T>(call, id).await?;
    let mut resource = existing.record.to_scim(&meta(call, &existing), &call.base);
    let outcome = patch::apply(&mut resource, &request, &T::PATCH_SCHEMA)?;
    if !outcome.changed {
        let words = format!("patch {} {}", noun::<T>(), existing.record.name());
        return Ok(Patched::Unchanged(unchanged(call, tx, &existing, &words)));
    }
    Ok(Patched::Changed(Patch {
        tx,
        existing,
        resource,
    }))
}

/// Stores `record` with `put` in place of `existing` (nothing when equal: IdPs re-send
/// whole resources), then projects `change` and answers.
pub(super) async fn store_replacement<T: Pushed>(
    call: &Call<'_>,
    mut tx: WriteTx,
    existing: Stored<T>,
    record: T,
    change: Change,
    words: &str,
    put: impl AsyncFnOnce(&mut AnyConnection, &str, T, Put<'_>) -> Result<Stored<T>, DbError>,
) -> Result<Reply, ScimError> {
    if content_hash(&record) == existing.version {
        return Ok(unchanged(call, tx, &existing, words));
    }
    let replace = Put::Replace(&existing.created);
    let stored = put(tx.conn(), &call.tenant.id, record, replace).await?;
    finish(call, tx, change, StatusCode::OK, &stored, words).await
}

/// The answer to a write that changes nothing: the resource as it is (the transaction is
/// dropped).
pub(super) fn unchanged<T: Pushed>(
    call: &Call<'_>,
    tx: WriteTx,
    existing: &Stored<T>,
    words: &str,
) -> Reply {
    drop(tx);
    answer(
        call,
        StatusCode::OK,
        existing,
        format!("{words} (unchanged)"),
    )
}

/// Projects `change` and answers with the resource just stored; the operation is `words`,
/// noting a held tenant.
pub(super) async fn finish<T: Pushed>(
    call: &Call<'_>,
    tx: WriteTx,
    change: Change,
    status: StatusCode,
    stored: &Stored<T>,
    words: &str,
) -> Result<Reply, ScimError> {
    let applied = write::finish(call, tx, change).await?;
    Ok(answer(
        call,
        status,
        stored,
        format!("{words}{}", applied.note()),
    ))
}

/// GET of one resource, answering 304 when `If-None-Match` names its version.
pub(super) async fn get<T: Pushed>(call: &Call<'_>, id: &str) -> Result<Reply, ScimError> {
    let mut conn = call.db().pool().acquire().await?;
    let stored: Stored<T> = fetch(&mut conn, &call.tenant.id, id)
        .await?
        .ok_or_else(|| not_found::<T>(id))?;
    if let Some(tags) = call.entity_tags(header::IF_NONE_MATCH)
        && tags.iter().any(|t| t == "*" || *t == stored.version)
    {
        let mut reply = Reply::empty(
            StatusCode::NOT_MODIFIED,
            format!("read {} (not modified)", noun::<T>()),
        );
        reply.etag = Some(stored.version.clone());
        return Ok(reply);
    }
    let operation = format!("read {} {}", noun::<T>(), stored.record.name());
    Ok(answer(call, StatusCode::OK, &stored, operation))
}

/// 409 `uniqueness` when another resource of the tenant holds the record's name. A write
/// that keeps the name of the resource it replaces (`existing`; compared as the stored key,
/// so a change of case alone too) needs no look: no other resource can hold it, as this
/// check stood when the name was taken, under the same tenant lock.
pub(super) async fn check_unique<T: Pushed>(
    tx: &mut WriteTx,
    call: &Call<'_>,
    record: &T,
    existing: Option<&T>,
) -> Result<(), ScimError> {
    if existing.is_some_and(|old| name_key(old.name()) == name_key(record.name())) {
        return Ok(());
    }
    let holder = store::name_holder(
        tx.conn(),
        T::RESOURCE,
        &call.tenant.id,
        record.name(),
        record.id(),
    )
    .await?;
    match holder {
        Some(other) => Err(ScimError::conflict_uniqueness(format!(
            "{} {:?} is already taken by {} {other:?} of this tenant",
            T::NAME_ATTRIBUTE,
            record.name(),
            noun::<T>()
        ))),
        None => Ok(()),
    }
}
