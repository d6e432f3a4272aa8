//! `/Users`: create, replace, patch and delete pushed users (RFC 7644 §3.3 to §3.6; reads
//! and lists are the same for both types, in `resources` and `listing`). A user's
//! `active: false` and its deletion both follow the tenant mapping's `on_remove` in the
//! target.

use axum::http::StatusCode;
use serde_json::Value;

use super::resources::{self, Patched};
use super::write::{self, Change};
use super::{Call, Reply, v1};
use crate::model::SourceUser;
use crate::scim::discovery;
use crate::scim::error::ScimError;
use crate::scim::resource::{self, user_from_scim};
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
    resources::check_unique(&mut tx, call, &user, None).await?;
    let name = user.user_name.clone();
    let stored = store::put_user(tx.conn(), &call.tenant.id, user, Put::New).await?;
    let change = Change {
        new_users: true,
        ..user_change(&stored.record)
    };
    let words = format!("create user {name}");
    resources::finish(call, tx, change, StatusCode::CREATED, &stored, &words).await
}

/// What writing `user` changes for the projection: that user, whose record it has.
fn user_change(user: &SourceUser) -> Change {
    Change {
        user_ids: vec![user.external_id.clone()],
        users: Some(vec![user.clone()]),
        ..Change::default()
    }
}

pub(super) async fn replace(call: &Call<'_>, id: &str) -> Result<Reply, ScimError> {
    let user = parse(call, id, call.json_body()?)?;
    let (tx, existing) = resources::begin_on::<SourceUser>(call, id).await?;
    let words = format!("replace user {}", user.user_name);
    store_user(call, tx, existing, user, words).await
}

pub(super) async fn patch(call: &Call<'_>, id: &str) -> Result<Reply, ScimError> {
    let mut patch = match resources::patch::<SourceUser>(call, id).await? {
        Patched::Unchanged(reply) => return Ok(reply),
        Patched::Changed(patch) => patch,
    };
    sanitize(&mut patch.resource)?;
    call.check_resource(&patch.resource)?;
    let user = user_from_scim(id, &patch.resource)?;
    let words = describe_patch(&patch.existing.record, &user);
    store_user(call, patch.tx, patch.existing, user, words).await
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
    resources::check_unique(&mut tx, call, &user, Some(&existing.record)).await?;
    let change = user_change(&user);
    resources::store_replacement(call, tx, existing, user, change, &words, store::put_user).await
}

fn describe_patch(before: &SourceUser, after: &SourceUser) -> String {
    match (before.active, after.active) {
        (true, false) => format!("deactivate user {}", after.user_name),
        (false, true) => format!("reactivate user {}", after.user_name),
        _ => format!("patch user {}", after.user_name),
    }
}

pub(super) async fn delete(call: &Call<'_>, id: &str) -> Result<Reply, ScimError> {
    let (mut tx, existing) = resources::begin_on::<SourceUser>(call, id).await?;
    // The user leaves every group that lists it, as RFC 7644 §3.6 expects of a deletion.
    let groups = store::groups_with_member(tx.conn(), &call.tenant.id, id).await?;
    let group_ids = groups.iter().map(|g| g.external_id.clone()).collect();
    store::remove::<SourceUser>(tx.conn(), &call.tenant.id, id, groups).await?;
    let applied = write::finish(
        call,
        tx,
        Change {
            user_ids: vec![id.to_string()],
            users: Some(Vec::new()),
            group_ids,
            groups_changed: false,
            new_users: false,
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
