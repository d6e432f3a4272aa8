//! `/Users`: create, read, list, replace, patch and delete pushed users (RFC 7644 §3.3 to
//! §3.6). A user's `active: false` and its deletion both follow the tenant mapping's
//! `on_remove` in the target.

use axum::http::{StatusCode, header};
use serde_json::Value;

use super::params::{ListParams, Shape, shape};
use super::write::{self, Change, db_error};
use super::{Call, Reply, v1};
use crate::mirror::query::Resource;
use crate::model::{SourceUser, content_hash};
use crate::scim::discovery;
use crate::scim::error::{ScimError, ScimType};
use crate::scim::patch;
use crate::scim::resource::{self, Meta, user_from_scim, user_to_scim};
use crate::scim::store::{self, Stored};

/// Attributes a client may send but that are never stored: the password (idsync is not a
/// credential store), and what the server manages.
const DROPPED: [&str; 4] = ["password", "groups", "meta", "id"];

pub(super) fn meta(call: &Call<'_>, stored: &Stored<SourceUser>) -> Meta {
    Meta {
        resource_type: "User",
        created: stored.created.clone(),
        last_modified: stored.modified.clone(),
        location: format!("{}/Users/{}", call.base, stored.record.external_id),
        version: stored.version.clone(),
    }
}

/// The user as the client sees it, in the call's protocol version.
pub(super) fn render(call: &Call<'_>, stored: &Stored<SourceUser>) -> Value {
    v1::outgoing(
        call.version,
        user_to_scim(&stored.record, &meta(call, stored)),
    )
}

/// Checks a pushed body's attributes and drops what is never stored. Unknown core
/// attributes are refused; extension objects (under a URN key) are kept as sent.
pub(super) fn sanitize(body: &mut Value) -> Result<(), ScimError> {
    let Some(object) = body.as_object_mut() else {
        return Err(ScimError::bad_request(
            ScimType::InvalidSyntax,
            "the body must be a JSON object",
        ));
    };
    object.retain(|k, _| !DROPPED.iter().any(|d| k.eq_ignore_ascii_case(d)));
    for key in object.keys() {
        if key.starts_with("urn:") || key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if discovery::attribute(discovery::USER_SCHEMA, key).is_none() {
            return Err(ScimError::bad_request(
                ScimType::InvalidSyntax,
                format!("`{key}` is not an attribute of a User"),
            ));
        }
    }
    // Stored as a real boolean, whatever spelling the IdP used.
    if let Some(key) = object
        .keys()
        .find(|k| k.eq_ignore_ascii_case("active"))
        .cloned()
        && let Some(flag) = resource::boolean(&object[&key])
    {
        object.insert(key, Value::Bool(flag));
    }
    Ok(())
}

fn resource_error(error: resource::ResourceError) -> ScimError {
    let scim_type = match error {
        resource::ResourceError::InvalidSyntax(_) => ScimType::InvalidSyntax,
        resource::ResourceError::InvalidValue(_) => ScimType::InvalidValue,
    };
    ScimError::bad_request(scim_type, error.to_string())
}

pub(super) fn patch_error(error: patch::PatchError) -> ScimError {
    let scim_type = ScimType::ALL
        .into_iter()
        .find(|t| t.as_str() == error.scim_type());
    ScimError::bad_request(scim_type, error.message().to_string())
}

fn not_found(id: &str) -> ScimError {
    ScimError::not_found(format!("no user with id {id:?} in this tenant"))
}

/// A user from a pushed body, checked and normalised.
fn parse(call: &Call<'_>, id: &str, mut body: Value) -> Result<SourceUser, ScimError> {
    let body = v1::incoming(call.version, &mut body, discovery::USER_SCHEMA);
    sanitize(body)?;
    user_from_scim(id, body).map_err(resource_error)
}

async fn check_unique(
    tx: &mut crate::db::WriteTx,
    call: &Call<'_>,
    user: &SourceUser,
) -> Result<(), ScimError> {
    let holder = store::name_holder(
        tx.conn(),
        Resource::User,
        &call.tenant.id,
        &user.user_name,
        &user.external_id,
    )
    .await
    .map_err(db_error)?;
    match holder {
        Some(other) => Err(ScimError::conflict_uniqueness(format!(
            "userName {:?} is already taken by user {other:?} of this tenant",
            user.user_name
        ))),
        None => Ok(()),
    }
}

/// Answers a written user: its body shaped by `attributes`/`excludedAttributes`.
fn written(
    call: &Call<'_>,
    status: StatusCode,
    stored: &Stored<SourceUser>,
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

async fn reread(
    tx: &mut crate::db::WriteTx,
    call: &Call<'_>,
    id: &str,
) -> Result<Stored<SourceUser>, ScimError> {
    store::get_user(tx.conn(), &call.tenant.id, id)
        .await
        .map_err(db_error)?
        .ok_or_else(|| not_found(id))
}

pub(super) async fn create(call: &Call<'_>) -> Result<Reply, ScimError> {
    let id = uuid::Uuid::new_v4().to_string();
    let user = parse(call, &id, call.json_body()?)?;
    let mut tx = write::begin(call).await?;
    check_unique(&mut tx, call, &user).await?;
    let name = user.user_name.clone();
    let stored = store::put_user(tx.conn(), &call.tenant.id, user, None)
        .await
        .map_err(db_error)?;
    let applied = write::finish(
        call,
        tx,
        Change {
            user_ids: vec![id.clone()],
            groups_changed: false,
        },
    )
    .await?;
    Ok(written(
        call,
        StatusCode::CREATED,
        &stored,
        format!("create user {name}{}", applied.note()),
    ))
}

pub(super) async fn get(call: &Call<'_>, id: &str) -> Result<Reply, ScimError> {
    let mut conn = call.db().pool().acquire().await.map_err(db_error)?;
    let stored = store::get_user(&mut conn, &call.tenant.id, id)
        .await
        .map_err(db_error)?
        .ok_or_else(|| not_found(id))?;
    if let Some(tags) = call.entity_tags(header::IF_NONE_MATCH)
        && tags.iter().any(|t| t == "*" || *t == stored.version)
    {
        let mut reply = Reply::empty(StatusCode::NOT_MODIFIED, "read user (not modified)");
        reply.etag = Some(stored.version.clone());
        return Ok(reply);
    }
    let operation = format!("read user {}", stored.record.user_name);
    Ok(written(call, StatusCode::OK, &stored, operation))
}

pub(super) async fn list(call: &Call<'_>) -> Result<Reply, ScimError> {
    let params = ListParams::from_query(call.query)?;
    super::listing::list(call, Resource::User, params).await
}

pub(super) async fn search(call: &Call<'_>) -> Result<Reply, ScimError> {
    let params = ListParams::from_search(&call.json_body()?)?;
    super::listing::list(call, Resource::User, params).await
}

pub(super) async fn replace(call: &Call<'_>, id: &str) -> Result<Reply, ScimError> {
    let user = parse(call, id, call.json_body()?)?;
    let mut tx = write::begin(call).await?;
    let existing = reread(&mut tx, call, id).await?;
    call.check_if_match(&existing.version)?;
    check_unique(&mut tx, call, &user).await?;
    let name = user.user_name.clone();
    if content_hash(&user) == existing.version {
        // Nothing changed (Okta re-sends whole users): no write, same version.
        drop(tx);
        return Ok(written(
            call,
            StatusCode::OK,
            &existing,
            format!("replace user {name} (unchanged)"),
        ));
    }
    let stored = store::put_user(tx.conn(), &call.tenant.id, user, Some(&existing.created))
        .await
        .map_err(db_error)?;
    let applied = write::finish(
        call,
        tx,
        Change {
            user_ids: vec![id.to_string()],
            groups_changed: false,
        },
    )
    .await?;
    Ok(written(
        call,
        StatusCode::OK,
        &stored,
        format!("replace user {name}{}", applied.note()),
    ))
}

pub(super) async fn patch(call: &Call<'_>, id: &str) -> Result<Reply, ScimError> {
    let body = call.json_body()?;
    let request = v1::patch_request(call.version, &body, discovery::USER_SCHEMA)?;
    let mut tx = write::begin(call).await?;
    let existing = reread(&mut tx, call, id).await?;
    call.check_if_match(&existing.version)?;
    let mut resource = user_to_scim(&existing.record, &meta(call, &existing));
    let outcome =
        patch::apply(&mut resource, &request, &patch::USER_SCHEMA).map_err(patch_error)?;
    if !outcome.changed {
        drop(tx);
        return Ok(written(
            call,
            StatusCode::OK,
            &existing,
            format!("patch user {} (unchanged)", existing.record.user_name),
        ));
    }
    sanitize(&mut resource)?;
    let user = user_from_scim(id, &resource).map_err(resource_error)?;
    check_unique(&mut tx, call, &user).await?;
    let words = describe_patch(&existing.record, &user);
    if content_hash(&user) == existing.version {
        drop(tx);
        return Ok(written(call, StatusCode::OK, &existing, words));
    }
    let stored = store::put_user(tx.conn(), &call.tenant.id, user, Some(&existing.created))
        .await
        .map_err(db_error)?;
    let applied = write::finish(
        call,
        tx,
        Change {
            user_ids: vec![id.to_string()],
            groups_changed: false,
        },
    )
    .await?;
    Ok(written(
        call,
        StatusCode::OK,
        &stored,
        format!("{words}{}", applied.note()),
    ))
}

fn describe_patch(before: &SourceUser, after: &SourceUser) -> String {
    match (before.active, after.active) {
        (true, false) => format!("deactivate user {}", after.user_name),
        (false, true) => format!("reactivate user {}", after.user_name),
        _ => format!("patch user {}", after.user_name),
    }
}

pub(super) async fn delete(call: &Call<'_>, id: &str) -> Result<Reply, ScimError> {
    let mut tx = write::begin(call).await?;
    let existing = reread(&mut tx, call, id).await?;
    call.check_if_match(&existing.version)?;
    // The user leaves every group that lists it, as RFC 7644 §3.6 expects of a deletion.
    let groups = store::groups_with_member(tx.conn(), &call.tenant.id, id)
        .await
        .map_err(db_error)?;
    for mut group in groups {
        group.members.retain(|m| m.id != id);
        store::put_group(tx.conn(), &call.tenant.id, group, None)
            .await
            .map_err(db_error)?;
    }
    crate::mirror::delete_users(tx.conn(), &call.tenant.id, &[id.to_string()])
        .await
        .map_err(db_error)?;
    let applied = write::finish(
        call,
        tx,
        Change {
            user_ids: vec![id.to_string()],
            groups_changed: false,
        },
    )
    .await?;
    Ok(Reply::empty(
        StatusCode::NO_CONTENT,
        format!(
            "delete user {}{}",
            existing.record.user_name,
            applied.note()
        ),
    ))
}
