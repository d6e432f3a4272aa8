//! `/Users`: create, read, list, replace, patch and delete pushed users (RFC 7644 §3.3 to
//! §3.6). A user's `active: false` and its deletion both follow the tenant mapping's
//! `on_remove` in the target.

use axum::http::StatusCode;
use serde_json::Value;

use super::params::ListParams;
use super::resources::{self, Pushed};
use super::write::{self, Change};
use super::{Call, Reply, v1};
use crate::model::{SourceUser, content_hash};
use crate::scim::discovery;
use crate::scim::error::ScimError;
use crate::scim::patch;
use crate::scim::resource::{self, user_from_scim};
use crate::store::mirror::query::Resource;
use crate::store::pushed::{self as store, Put, Stored};

/// A pushed user's attributes checked (`resources::sanitize`), its `active` normalised.
fn sanitize(body: &mut Value) -> Result<(), ScimError> {
    let object = resources::sanitize::<SourceUser>(body)?;
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

/// A user from a pushed body, checked and normalised.
fn parse(call: &Call<'_>, id: &str, mut body: Value) -> Result<SourceUser, ScimError> {
    let body = v1::incoming(call.version, &mut body, discovery::USER_SCHEMA);
    sanitize(body)?;
    call.check_resource(body)?;
    Ok(user_from_scim(id, body)?)
}

pub(super) async fn create(call: &Call<'_>) -> Result<Reply, ScimError> {
    let id = uuid::Uuid::new_v4().to_string();
    let user = parse(call, &id, call.json_body()?)?;
    let mut tx = write::begin(call).await?;
    resources::check_unique(&mut tx, call, &user).await?;
    let name = user.user_name.clone();
    let stored = store::put_user(tx.conn(), &call.tenant.id, user, Put::New).await?;
    let applied = write::finish(
        call,
        tx,
        Change {
            user_ids: vec![id.clone()],
            users: Some(vec![stored.record.clone()]),
            group_ids: Vec::new(),
            groups_changed: false,
        },
    )
    .await?;
    Ok(resources::answer(
        call,
        StatusCode::CREATED,
        &stored,
        format!("create user {name}{}", applied.note()),
    ))
}

pub(super) async fn list(call: &Call<'_>) -> Result<Reply, ScimError> {
    let params = ListParams::from_query(call.query)?;
    super::listing::list(call, Resource::User, params).await
}

pub(super) async fn search(call: &Call<'_>) -> Result<Reply, ScimError> {
    let params = ListParams::from_search(&call.json_body()?)?;
    super::listing::list(call, Resource::User, params).await
}

pub(super) async fn get(call: &Call<'_>, id: &str) -> Result<Reply, ScimError> {
    resources::get::<SourceUser>(call, id).await
}

pub(super) async fn replace(call: &Call<'_>, id: &str) -> Result<Reply, ScimError> {
    let user = parse(call, id, call.json_body()?)?;
    let mut tx = write::begin(call).await?;
    let existing: Stored<SourceUser> = resources::reread(&mut tx, call, id).await?;
    call.check_if_match(&existing.version)?;
    let words = format!("replace user {}", user.user_name);
    store_user(call, tx, existing, user, words).await
}

pub(super) async fn patch(call: &Call<'_>, id: &str) -> Result<Reply, ScimError> {
    let body = call.json_body()?;
    let request = v1::patch_request(call.version, &body, discovery::USER_SCHEMA)?;
    let mut tx = write::begin(call).await?;
    let existing: Stored<SourceUser> = resources::reread(&mut tx, call, id).await?;
    call.check_if_match(&existing.version)?;
    let mut resource = existing
        .record
        .to_scim(&resources::meta(call, &existing), &call.base);
    let outcome = patch::apply(&mut resource, &request, &patch::USER_SCHEMA)?;
    if !outcome.changed {
        drop(tx);
        let words = format!("patch user {} (unchanged)", existing.record.user_name);
        return Ok(resources::answer(call, StatusCode::OK, &existing, words));
    }
    sanitize(&mut resource)?;
    call.check_resource(&resource)?;
    let user = user_from_scim(id, &resource)?;
    let words = describe_patch(&existing.record, &user);
    store_user(call, tx, existing, user, words).await
}

/// Stores `user` in place of `existing` (nothing when equal: IdPs re-send whole users)
/// and projects the change.
async fn store_user(
    call: &Call<'_>,
    mut tx: crate::db::WriteTx,
    existing: Stored<SourceUser>,
    user: SourceUser,
    words: String,
) -> Result<Reply, ScimError> {
    resources::check_unique(&mut tx, call, &user).await?;
    if content_hash(&user) == existing.version {
        drop(tx);
        let words = format!("{words} (unchanged)");
        return Ok(resources::answer(call, StatusCode::OK, &existing, words));
    }
    let id = user.external_id.clone();
    let stored = store::put_user(
        tx.conn(),
        &call.tenant.id,
        user,
        Put::Replace(&existing.created),
    )
    .await?;
    let applied = write::finish(
        call,
        tx,
        Change {
            user_ids: vec![id],
            users: Some(vec![stored.record.clone()]),
            group_ids: Vec::new(),
            groups_changed: false,
        },
    )
    .await?;
    Ok(resources::answer(
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
    let existing: Stored<SourceUser> = resources::reread(&mut tx, call, id).await?;
    call.check_if_match(&existing.version)?;
    // The user leaves every group that lists it, as RFC 7644 §3.6 expects of a deletion.
    let groups = store::groups_with_member(tx.conn(), &call.tenant.id, id).await?;
    let mut group_ids = Vec::with_capacity(groups.len());
    for mut group in groups {
        group_ids.push(group.external_id.clone());
        group.members.retain(|m| m.id != id);
        store::put_group(tx.conn(), &call.tenant.id, group, Put::Update).await?;
    }
    crate::store::mirror::delete_users(tx.conn(), &call.tenant.id, &[id.to_string()]).await?;
    let applied = write::finish(
        call,
        tx,
        Change {
            user_ids: vec![id.to_string()],
            users: Some(Vec::new()),
            group_ids,
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
