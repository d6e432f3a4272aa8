//! What the LDAP directory should hold, read from the target tables (every connector's
//! records: the containers are shared, as the names in them are): a user entry
//! (`inetOrgPerson`) per user, a group entry per group with its direct members (users and,
//! where the mapping keeps nesting, groups), and each record's DN.

use std::collections::{BTreeMap, HashMap};

use futures_util::TryStreamExt;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::entry::Entry;
use super::settings::{Deactivate, LdapTargetSettings};
use crate::db::{Context, DbError, get_bool, select_in};

const CTX: &str = "reading the target for the LDAP directory";

/// The entries the directory should hold, and every record's DN (target id -> DN; a user
/// deleted on deactivation has none).
#[derive(Debug, Default)]
pub struct Desired {
    pub users: Vec<Entry>,
    pub groups: Vec<Entry>,
    pub dns: HashMap<String, String>,
}

/// A user's DN in `container`.
pub fn user_dn(user_name: &str, container: &str) -> String {
    format!("uid={},{container}", ldap3::dn_escape(user_name))
}

/// A group's DN.
pub fn group_dn(name: &str, container: &str) -> String {
    format!("cn={},{container}", ldap3::dn_escape(name))
}

/// Where a user is: `None` when an inactive user is deleted.
pub fn user_place(settings: &LdapTargetSettings, user_name: &str, live: bool) -> Option<String> {
    match (&settings.deactivate, live) {
        (_, true) | (Deactivate::Lock { .. }, false) => {
            Some(user_dn(user_name, &settings.users_dn))
        }
        (Deactivate::Move { container }, false) => Some(user_dn(user_name, container)),
        (Deactivate::Delete, false) => None,
    }
}

/// Some records of the target, by target id: what a plan over changed users touched.
#[derive(Debug, Default)]
pub struct Touched {
    pub users: Vec<String>,
    pub groups: Vec<String>,
}

/// Reads the whole target, or with `only` just those records (groups with all their
/// members' DNs).
pub async fn load(
    conn: &mut AnyConnection,
    settings: &LdapTargetSettings,
    only: Option<&Touched>,
) -> Result<Desired, DbError> {
    let mut desired = Desired::default();
    const USERS: &str = "SELECT id, user_name, display_name, given_name, family_name, email, \
                         active, attributes, removed_at FROM users";
    let rows = match only {
        None => {
            let sql = format!("{USERS} ORDER BY user_name_key");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(&mut *conn)
                .await
                .context(CTX)?
        }
        Some(only) => select_in(conn, USERS, None, "id", &only.users, CTX).await?,
    };
    for row in rows {
        if let Some((id, entry)) = user_row(settings, &row)? {
            desired.dns.insert(id, entry.dn.clone());
            desired.users.push(entry);
        }
    }
    const GROUPS: &str = "SELECT id, name, description FROM groups";
    let rows = match only {
        None => {
            let sql = format!("{GROUPS} ORDER BY name_key");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(&mut *conn)
                .await
                .context(CTX)?
        }
        Some(only) => select_in(conn, GROUPS, None, "id", &only.groups, CTX).await?,
    };
    let mut groups: Vec<(String, Entry)> = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = row.try_get("id").context(CTX)?;
        let name: String = row.try_get("name").context(CTX)?;
        let description: Option<String> = row.try_get("description").context(CTX)?;
        let dn = group_dn(&name, &settings.groups_dn);
        desired.dns.insert(id.clone(), dn.clone());
        let mut attrs = BTreeMap::new();
        attrs.insert(
            "objectClass".to_owned(),
            vec![
                settings.group_class.object_class().to_owned(),
                "top".to_owned(),
            ],
        );
        attrs.insert("cn".to_owned(), vec![name]);
        if let Some(description) = description.filter(|d| !d.trim().is_empty()) {
            attrs.insert("description".to_owned(), vec![description]);
        }
        groups.push((id, Entry { dn, attrs }));
    }
    let pairs = match only {
        None => {
            let mut pairs = Vec::new();
            let mut rows = sqlx::query(
                "SELECT DISTINCT group_id, member_id FROM memberships ORDER BY group_id, member_id",
            )
            .fetch(&mut *conn);
            while let Some(row) = rows.try_next().await.context(CTX)? {
                pairs.push((
                    row.try_get::<String, _>("group_id").context(CTX)?,
                    row.try_get::<String, _>("member_id").context(CTX)?,
                ));
            }
            pairs
        }
        Some(only) => {
            let rows = select_in(
                conn,
                "SELECT DISTINCT group_id, member_id FROM memberships",
                None,
                "group_id",
                &only.groups,
                CTX,
            )
            .await?;
            let mut pairs = Vec::with_capacity(rows.len());
            for row in rows {
                pairs.push((
                    row.try_get::<String, _>("group_id").context(CTX)?,
                    row.try_get::<String, _>("member_id").context(CTX)?,
                ));
            }
            pairs.sort();
            // The members' DNs (of records not loaded above).
            let unknown: Vec<String> = pairs
                .iter()
                .map(|(_, member)| member.clone())
                .filter(|member| !desired.dns.contains_key(member))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            dns_of(conn, settings, &unknown, &mut desired.dns).await?;
            pairs
        }
    };
    let mut members: HashMap<String, Vec<String>> = HashMap::new();
    for (group, member) in pairs {
        // A member without an entry (a user deleted on deactivation) is left out.
        if let Some(dn) = desired.dns.get(&member) {
            members.entry(group).or_default().push(dn.clone());
        }
    }
    let attribute = settings.group_class.member_attribute();
    for (id, mut entry) in groups {
        // groupOfNames and groupOfUniqueNames need a member: an empty group names the
        // empty DN (RFC 4514: the zero-length DN), which no entry has.
        let values = members.remove(&id).unwrap_or_else(|| vec![String::new()]);
        entry.attrs.insert(attribute.to_owned(), values);
        desired.groups.push(entry);
    }
    Ok(desired)
}

/// The user entry of a `users` row with its target id (none: deleted while inactive).
fn user_row(
    settings: &LdapTargetSettings,
    row: &AnyRow,
) -> Result<Option<(String, Entry)>, DbError> {
    let live = is_live(row)?;
    let user_name: String = row.try_get("user_name").context(CTX)?;
    let Some(dn) = user_place(settings, &user_name, live) else {
        return Ok(None);
    };
    let text = |column: &str| -> Result<Option<String>, DbError> {
        let value: Option<String> = row.try_get(column).context(CTX)?;
        Ok(value.filter(|v| !v.trim().is_empty()))
    };
    let user = UserFields {
        user_name: &user_name,
        display_name: text("display_name")?,
        given_name: text("given_name")?,
        family_name: text("family_name")?,
        email: text("email")?,
        live,
        attributes: row.try_get("attributes").context(CTX)?,
    };
    Ok(Some((
        row.try_get("id").context(CTX)?,
        user_entry(settings, dn, &user),
    )))
}

/// Whether a `users` row is an active user still in the source.
fn is_live(row: &AnyRow) -> Result<bool, DbError> {
    let removed: Option<String> = row.try_get("removed_at").context(CTX)?;
    Ok(get_bool(row, "active").context(CTX)? && removed.is_none())
}

/// The DNs the users and groups with these target ids have now, added to `dns` (a user
/// deleted on deactivation has none).
pub async fn dns_of(
    conn: &mut AnyConnection,
    settings: &LdapTargetSettings,
    ids: &[String],
    dns: &mut HashMap<String, String>,
) -> Result<(), DbError> {
    let users = "SELECT id, user_name, active, removed_at FROM users";
    for row in select_in(conn, users, None, "id", ids, CTX).await? {
        let name: String = row.try_get("user_name").context(CTX)?;
        if let Some(dn) = user_place(settings, &name, is_live(&row)?) {
            dns.insert(row.try_get("id").context(CTX)?, dn);
        }
    }
    let groups = "SELECT id, name FROM groups";
    for row in select_in(conn, groups, None, "id", ids, CTX).await? {
        let name: String = row.try_get("name").context(CTX)?;
        dns.insert(
            row.try_get("id").context(CTX)?,
            group_dn(&name, &settings.groups_dn),
        );
    }
    Ok(())
}

/// A user's fields as the target tables hold them.
pub struct UserFields<'a> {
    pub user_name: &'a str,
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub email: Option<String>,
    /// Active and not removed.
    pub live: bool,
    /// The `attributes` column (a JSON object).
    pub attributes: String,
}

/// The `inetOrgPerson` entry of a user at `dn`.
pub fn user_entry(settings: &LdapTargetSettings, dn: String, user: &UserFields<'_>) -> Entry {
    let mut attrs = BTreeMap::new();
    let mut set = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            attrs.insert(name.to_owned(), vec![value]);
        }
    };
    set("uid", Some(user.user_name.to_owned()));
    let full_name = match (&user.given_name, &user.family_name) {
        (Some(given), Some(family)) => Some(format!("{given} {family}")),
        _ => None,
    };
    // cn and sn are required by `person`: the user name stands in for missing names.
    set(
        "cn",
        Some(
            user.display_name
                .clone()
                .or(full_name)
                .unwrap_or_else(|| user.user_name.to_owned()),
        ),
    );
    set(
        "sn",
        Some(
            user.family_name
                .clone()
                .unwrap_or_else(|| user.user_name.to_owned()),
        ),
    );
    set("givenName", user.given_name.clone());
    set("displayName", user.display_name.clone());
    set("mail", user.email.clone());
    if let (Deactivate::Lock { attribute, value }, false) = (&settings.deactivate, user.live) {
        set(attribute, Some(value.clone()));
    }
    if !settings.attributes.is_empty() {
        let json: serde_json::Value =
            serde_json::from_str(&user.attributes).unwrap_or(serde_json::Value::Null);
        for (ldap, target) in &settings.attributes {
            let values = attribute_values(json.get(target));
            if !values.is_empty() {
                attrs.insert(ldap.clone(), values);
            }
        }
    }
    attrs.insert(
        "objectClass".to_owned(),
        ["inetOrgPerson", "organizationalPerson", "person", "top"]
            .map(str::to_owned)
            .to_vec(),
    );
    Entry { dn, attrs }
}

/// A target attribute's value as LDAP values: strings as they are, numbers and booleans
/// as text, arrays element by element, nothing for null, empty strings and objects.
fn attribute_values(value: Option<&serde_json::Value>) -> Vec<String> {
    use serde_json::Value;
    let one = |value: &Value| match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string().to_uppercase()),
        _ => None,
    };
    match value {
        Some(Value::Array(items)) => {
            let mut values: Vec<String> = items.iter().filter_map(one).collect();
            values.dedup();
            values
        }
        Some(value) => one(value).into_iter().collect(),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::ldap::settings::GroupClass;

    pub(crate) fn settings(deactivate: Deactivate) -> LdapTargetSettings {
        LdapTargetSettings {
            transport: crate::connectors::ldap::Transport {
                url: "ldap://127.0.0.1".into(),
                starttls: false,
                ca_certs: None,
                skip_verify: false,
                plain: true,
            },
            bind_dn: "cn=w,dc=x".into(),
            bind_password: crate::spec::SecretString::new("p"),
            users_dn: "ou=people,dc=x".into(),
            groups_dn: "ou=groups,dc=x".into(),
            group_class: GroupClass::GroupOfNames,
            deactivate,
            writes_in_flight: 8,
            timeout: std::time::Duration::from_secs(5),
            attributes: vec![("employeeNumber".into(), "employee_id".into())],
        }
    }

    fn fields(live: bool) -> UserFields<'static> {
        UserFields {
            user_name: "ann,b",
            display_name: None,
            given_name: Some("Ann".into()),
            family_name: Some("Bee".into()),
            email: Some("ann@x".into()),
            live,
            attributes: r#"{"employee_id": 42}"#.into(),
        }
    }

    #[test]
    fn a_user_entry_carries_the_names_and_the_mapped_attributes() {
        let settings = settings(Deactivate::Delete);
        let dn = user_place(&settings, "ann,b", true).expect("live users have a place");
        assert_eq!(dn, "uid=ann\\2cb,ou=people,dc=x");
        let entry = user_entry(&settings, dn, &fields(true));
        assert_eq!(entry.attrs["cn"], vec!["Ann Bee"]);
        assert_eq!(entry.attrs["sn"], vec!["Bee"]);
        assert_eq!(entry.attrs["employeeNumber"], vec!["42"]);
        assert!(!entry.attrs.contains_key("displayName"));
    }

    #[test]
    fn deactivation_locks_moves_or_deletes() {
        let lock = settings(Deactivate::Lock {
            attribute: "pwdAccountLockedTime".into(),
            value: "000001010000Z".into(),
        });
        let dn = user_place(&lock, "ann", false).expect("a locked user stays");
        assert_eq!(dn, "uid=ann,ou=people,dc=x");
        let entry = user_entry(&lock, dn, &fields(false));
        assert_eq!(entry.attrs["pwdAccountLockedTime"], vec!["000001010000Z"]);
        let moved = settings(Deactivate::Move {
            container: "ou=disabled,dc=x".into(),
        });
        assert_eq!(
            user_place(&moved, "ann", false).as_deref(),
            Some("uid=ann,ou=disabled,dc=x")
        );
        assert_eq!(
            user_place(&settings(Deactivate::Delete), "ann", false),
            None
        );
    }
}
