//! The mapping pipeline: `project(mirror, mapping) -> desired slice of the target`, then a
//! diff of that slice against what the target holds gives the [`plan::Plan`].
//!
//! The projection applies a mapping's filters, attribute expressions, group names,
//! default and application groups and nesting mode (see `project.rs`); the plan turns
//! the difference into writes (see `plan.rs`).

pub mod context;
pub mod expr;
pub mod flatten;
pub mod limits;
pub mod plan;
mod project;
pub mod settings;
mod users;

pub use project::{Projector, project};
pub use users::{DesiredUsers, PlannedUser, UserHead, UserRecords};

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::model::{MemberKind, content_hash};
use crate::pipeline::settings::MappingConfig;

/// Bump when the projection's logic changes, so that every connector re-projects once.
const PROJECTION_VERSION: u32 = 1;

/// A user as the target should hold it. Read back from its JSON (see [`DesiredUsers`]),
/// it serialises to the same bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetUser {
    pub external_id: String,
    pub user_name: String,
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub email: Option<String>,
    pub active: bool,
    pub attributes: Attributes,
}

/// A target user's attributes as the compact JSON text the target stores. Held as text
/// because the projection holds every user of a full run at once, and a parsed map takes
/// several times the memory of its text. It serialises as the JSON it holds, so a
/// record's content hash is the same as with the map.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Attributes(Box<RawValue>);

impl Attributes {
    /// The map as JSON text.
    pub fn new(map: &Map<String, Value>) -> Attributes {
        match serde_json::value::to_raw_value(map) {
            Ok(raw) => Attributes(raw),
            // Serialising a map with string keys cannot fail; were it to, the text is
            // what the target stored for no attributes before (`{}`), not `null`.
            Err(_) => Attributes(
                RawValue::from_string("{}".to_string())
                    .unwrap_or_else(|_| RawValue::NULL.to_owned()),
            ),
        }
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }
}

impl Default for Attributes {
    /// No attributes: `{}`.
    fn default() -> Attributes {
        Attributes::new(&Map::new())
    }
}

impl PartialEq for Attributes {
    fn eq(&self, other: &Attributes) -> bool {
        self.as_str() == other.as_str()
    }
}

/// A group as the target should hold it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetGroup {
    pub external_id: String,
    pub name: String,
    pub description: Option<String>,
    pub attributes: Map<String, Value>,
}

/// A direct membership, by external ids of the connector's source.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DesiredMembership {
    /// External ids, shared with the other memberships of the same group or member.
    pub group: std::sync::Arc<str>,
    pub kind: MemberKind,
    pub member: std::sync::Arc<str>,
}

/// Why a membership exists; stored with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    /// The source's own group membership.
    Source,
    /// An application group, or a default group applied on every run.
    Mapping,
    /// A default group given when the user was created; never removed by a run (an
    /// admin who removes it in the target is not overridden).
    Default,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Source => "source",
            Origin::Mapping => "mapping",
            Origin::Default => "default",
        }
    }
}

/// A user's membership in a group the mapping manages (default or application group),
/// by target group name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ManagedGrant {
    pub group: String,
    pub user: String,
}

/// A user the mapping skipped because a required target field came out empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedUser {
    pub external_id: String,
    /// The source's user name, to find the record (never a secret).
    pub user_name: String,
    /// The mapping key of the field, e.g. `attributes.user_name`.
    pub field: &'static str,
    /// The field's expression (canonical text), when the mapping sets one.
    pub expression: Option<String>,
}

impl SkippedUser {
    /// `attributes.user_name = "userPrinciplName | lower"`, or the key alone without an
    /// expression (the source's own field was empty).
    pub fn describe_field(&self) -> String {
        match &self.expression {
            Some(expression) => format!("`{} = {expression:?}`", self.field),
            None => format!("`{}` (the source's own field)", self.field),
        }
    }
}

/// The slice of the target that one connector should own.
#[derive(Debug, Default)]
pub struct Desired {
    /// Held as heads in memory, records in a spool (see [`DesiredUsers`]).
    pub users: DesiredUsers,
    pub groups: Vec<TargetGroup>,
    pub memberships: Vec<DesiredMembership>,
    /// Memberships in mapping-managed groups, granted on every run.
    pub managed: Vec<ManagedGrant>,
    /// Default groups given to users this run creates.
    pub default_on_create: Vec<String>,
    /// Records left out, each with the reason.
    pub skipped: Vec<String>,
    /// External ids of users skipped for a field that ended up empty: an existing one is
    /// left as the target has it (not removed), a new one is not created.
    pub held_back: HashSet<String>,
    /// The users in `held_back`, with the field that came out empty (for the skip limit).
    pub skipped_users: Vec<SkippedUser>,
    /// Records a filter kept out.
    pub excluded_users: u64,
    pub excluded_groups: u64,
}

/// A fingerprint of everything in the mapping that changes the projection: when it
/// differs from the one the target was built with, the whole mirror is re-projected.
pub fn mapping_fingerprint(mapping: &MappingConfig) -> String {
    content_hash(&(
        PROJECTION_VERSION,
        mapping.on_remove.as_str(),
        &mapping.fingerprint,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MemberRef, SourceGroup, SourceUser};
    use crate::pipeline::settings::OnRemove;

    fn mapping() -> MappingConfig {
        MappingConfig::pass_through("m", OnRemove::Disable, 500, 20.0)
    }

    /// The plan of `desired` against an empty target, target ids `id-<external id>`.
    fn first_plan(desired: Desired) -> plan::Plan {
        use std::collections::HashMap;
        struct Ids;
        impl plan::NewIds for Ids {
            fn user_id(&self, user: &PlannedUser) -> String {
                format!("id-{}", user.external_id)
            }
            fn group_id(&self, group: &TargetGroup) -> String {
                format!("id-{}", group.external_id)
            }
        }
        let none = HashMap::new();
        let ctx = plan::Context {
            mapping_name: "m",
            on_remove: OnRemove::Disable,
            foreign_users: &none,
            foreign_groups: &none,
            named_groups: &HashMap::new(),
            ids: &Ids,
        };
        plan::build(desired, &plan::Current::default(), &ctx).unwrap()
    }

    fn user(id: &str, name: &str) -> SourceUser {
        SourceUser {
            external_id: id.into(),
            user_name: format!("{name}@example.com"),
            given_name: Some("Ada".into()),
            family_name: Some("Lovelace".into()),
            display_name: None,
            emails: vec![],
            active: true,
            attributes: Map::new(),
        }
    }

    #[test]
    fn pass_through_projects_users_and_holds_back_the_skipped_ones() {
        let mut blank = user("u2", "");
        blank.user_name = "  ".into();
        let users = vec![user("u1", "ada"), blank];
        let groups = vec![SourceGroup {
            external_id: "g1".into(),
            display_name: "Eng".into(),
            description: None,
            members: vec![MemberRef::user("u1"), MemberRef::user("u2")],
            attributes: Map::new(),
        }];
        let desired = project(&mapping(), users, groups).unwrap();
        assert_eq!(desired.users.len(), 1);
        assert_eq!(
            desired.users.records().unwrap()[0].display_name.as_deref(),
            Some("Ada Lovelace")
        );
        assert_eq!(
            desired.skipped,
            vec!["user \"u2\" skipped: its user name is empty"]
        );
        // A skipped user is held back: its memberships stay desired, and the plan keeps
        // them only if the target already has the user.
        assert!(desired.held_back.contains("u2"));
        assert_eq!(
            desired.skipped_users,
            vec![SkippedUser {
                external_id: "u2".into(),
                user_name: "  ".into(),
                field: "attributes.user_name",
                expression: None,
            }]
        );
        let members: Vec<&str> = desired.memberships.iter().map(|m| &*m.member).collect();
        assert_eq!(members, vec!["u1", "u2"]);
        assert!(
            desired
                .memberships
                .iter()
                .all(|m| m.kind == MemberKind::User)
        );
    }

    #[test]
    fn attributes_as_text_hash_as_the_map_did() {
        // A target row's content hash must not change with how the attributes are held,
        // or every user would be rewritten once after an upgrade.
        let map = serde_json::json!({"z": 1.5, "a": ["x", null], "é": {"k": "\"q\""}})
            .as_object()
            .unwrap()
            .clone();
        let held = TargetUser {
            external_id: "u1".into(),
            user_name: "ada".into(),
            display_name: Some("Ada".into()),
            given_name: None,
            family_name: None,
            email: Some("ada@example.com".into()),
            active: true,
            attributes: Attributes::new(&map),
        };
        // What the struct serialised to when the attributes were the map itself.
        let with_map = format!(
            r#"{{"external_id":"u1","user_name":"ada","display_name":"Ada","given_name":null,"family_name":null,"email":"ada@example.com","active":true,"attributes":{}}}"#,
            Value::Object(map.clone())
        );
        assert_eq!(serde_json::to_string(&held).unwrap(), with_map);
        assert_eq!(
            content_hash(&held),
            crate::model::hash_text(crate::model::hash_value(with_map.as_bytes()))
        );
        assert_eq!(held.attributes.as_str(), Value::Object(map).to_string());
        assert_eq!(Attributes::default().as_str(), "{}");
    }

    #[test]
    fn users_fed_one_at_a_time_in_any_order_project_as_a_whole() {
        let users = vec![user("u1", "ada"), user("u2", "bob"), user("u3", "cy")];
        let groups = vec![
            SourceGroup {
                external_id: "g1".into(),
                display_name: "Eng".into(),
                description: None,
                members: vec![MemberRef::user("u3"), MemberRef::group("g2")],
                attributes: Map::new(),
            },
            SourceGroup {
                external_id: "g2".into(),
                display_name: "Ops".into(),
                description: None,
                members: vec![MemberRef::user("u1"), MemberRef::user("u2")],
                attributes: Map::new(),
            },
        ];
        let mut flatten = mapping();
        flatten.nesting = crate::pipeline::settings::Nesting::Flatten;
        for mapping in [mapping(), flatten] {
            let whole = project(&mapping, users.clone(), groups.clone()).unwrap();
            let ids = vec!["u3".to_string(), "u1".into(), "u2".into()];
            let mut projector = Projector::new(&mapping, ids, groups.clone());
            for user in users.iter().rev() {
                projector.user(user.clone()).unwrap();
            }
            let fed = projector.finish();
            let mut fed_users = fed.users.records().unwrap();
            fed_users.reverse();
            assert_eq!(fed_users, whole.users.records().unwrap());
            assert_eq!(fed.memberships, whole.memberships);
            assert_eq!(fed.groups, whole.groups);

            // A user left out (a SCIM tenant's inactive one) is in no group, as if the
            // source had not listed it.
            let ids = vec!["u1".to_string(), "u2".into(), "u3".into()];
            let mut projector = Projector::new(&mapping, ids, groups.clone());
            projector.user(users[0].clone()).unwrap();
            projector.user(users[2].clone()).unwrap();
            let without_bob = projector.finish();
            let expected = project(
                &mapping,
                vec![users[0].clone(), users[2].clone()],
                groups.clone(),
            )
            .unwrap();
            assert_eq!(
                without_bob.users.records().unwrap(),
                expected.users.records().unwrap()
            );
            assert_eq!(without_bob.memberships, expected.memberships);
            assert!(without_bob.memberships.iter().all(|m| &*m.member != "u2"));
        }
    }

    #[test]
    fn memberships_share_their_ids_from_the_projection_to_the_plan() {
        use std::sync::Arc;
        let group = |id: &str, members: &[&str]| SourceGroup {
            external_id: id.into(),
            display_name: id.into(),
            description: None,
            members: members.iter().map(|m| MemberRef::user(*m)).collect(),
            attributes: Map::new(),
        };
        let users = vec![user("u1", "ada"), user("u2", "bob")];
        let groups = vec![group("g1", &["u1", "u2"]), group("g2", &["u1"])];
        let desired = project(&mapping(), users, groups).unwrap();
        let m = &desired.memberships;
        assert_eq!(m.len(), 3);
        // g1's two memberships hold one g1; u1's two hold one u1.
        assert!(Arc::ptr_eq(&m[0].group, &m[1].group));
        let u1: Vec<&DesiredMembership> = m.iter().filter(|m| &*m.member == "u1").collect();
        assert!(Arc::ptr_eq(&u1[0].member, &u1[1].member));

        let plan = first_plan(desired);
        let adds = &plan.membership_adds;
        assert_eq!(adds.len(), 3);
        assert_eq!(
            (&*adds[0].group_id, &*adds[0].member_id),
            ("id-g1", "id-u1")
        );
        assert!(Arc::ptr_eq(&adds[0].group_id, &adds[1].group_id));
        assert!(Arc::ptr_eq(&adds[0].member_id, &adds[2].member_id));
    }

    #[test]
    fn a_pair_granted_twice_keeps_the_first_origin_of_source_mapping_default() {
        // "Staff" is a default group given on creation and an application group for
        // everyone: a new user gets it once, as the application's (removable) grant, not
        // as a sticky default one.
        let mut mapping = mapping();
        mapping.groups.default = vec!["Staff".into()];
        mapping.groups.applications = vec![settings::Application {
            name: "wiki".into(),
            groups: vec!["Staff".into(), "Wiki".into()],
            when: None,
        }];
        let users = vec![user("u2", "bob"), user("u1", "ada")];
        let desired = project(&mapping, users, Vec::new()).unwrap();
        let plan = first_plan(desired);
        let adds: Vec<(&str, &str, Origin)> = plan
            .membership_adds
            .iter()
            .map(|m| (&*m.group_id, &*m.member_id, m.origin))
            .collect();
        let created = |name: &str| {
            let write = plan.managed_creates.iter().find(|w| w.record.name == name);
            &*write.unwrap().id
        };
        let (staff, wiki) = (created("Staff"), created("Wiki"));
        let mut expected = vec![
            (staff, "id-u1", Origin::Mapping),
            (staff, "id-u2", Origin::Mapping),
            (wiki, "id-u1", Origin::Mapping),
            (wiki, "id-u2", Origin::Mapping),
        ];
        expected.sort();
        assert_eq!(adds, expected);
    }

    #[test]
    fn fingerprint_follows_on_remove() {
        let mut other = mapping();
        other.on_remove = OnRemove::Delete;
        assert_ne!(mapping_fingerprint(&mapping()), mapping_fingerprint(&other));
    }
}
