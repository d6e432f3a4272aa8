//! The safety limits of a mapping, checked against a plan before it is applied: a run
//! that would take away more than the mapping allows is held (rolled back) and says why.
//!
//! What is limited, in the order checked:
//! - an empty full read of a source that had users or groups (always held);
//! - users the mapping projected before and now skips because a required field came out
//!   empty (`max_skipped_percent`): a typo in an expression skips everyone;
//! - users disabled or deleted (`max_deletes`, `max_delete_percent`), then groups deleted
//!   (same limits);
//! - memberships removed from users and groups that stay (`max_membership_removals`,
//!   `max_membership_removal_percent`): an application group emptied by a mapping change.
//!
//! Every percentage is of what the connector held before the run, and none holds below
//! its floor: `min_deletes` removals or skips (so one of four users leaving a tiny
//! directory goes through), `min_membership_removals` membership removals (a user is in
//! several groups). The absolute limits hold at any size.

use std::collections::BTreeMap;

use crate::pipeline::plan::Plan;
use crate::pipeline::settings::{MappingConfig, OnRemove};

/// `part` as a percentage of `whole` (0 when `whole` is 0).
fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// Whether `count` of `before` is over a percentage limit, given the floor.
fn over_percent(count: u64, before: u64, max_percent: f64, floor: u64) -> bool {
    count >= floor && percent(count, before) > max_percent
}

/// Why the plan must not be applied without confirmation, if it must not.
pub fn hold_reason(plan: &Plan, mapping: &MappingConfig, empty_full_read: bool) -> Option<String> {
    if empty_full_read && (plan.live_users_before > 0 || plan.groups_before > 0) {
        return Some(format!(
            "the source returned no users and no groups, but the target holds {} users and {} \
             groups from it (an expired permission looks exactly like this)",
            plan.live_users_before, plan.groups_before
        ));
    }
    skipped(plan, mapping)
        .or_else(|| {
            let live_removals = plan
                .user_removals
                .iter()
                .filter(|r| !r.already_disabled)
                .count() as u64;
            deletions(mapping, "users", live_removals, plan.live_users_before)
        })
        .or_else(|| {
            deletions(
                mapping,
                "groups",
                plan.group_deletes.len() as u64,
                plan.groups_before,
            )
        })
        .or_else(|| memberships(plan, mapping))
}

fn deletions(mapping: &MappingConfig, what: &str, removing: u64, before: u64) -> Option<String> {
    let verb = match (what, mapping.on_remove) {
        ("users", OnRemove::Disable) => "disable",
        _ => "delete",
    };
    let share = percent(removing, before);
    (removing > mapping.limits.max_deletes
        || over_percent(
            removing,
            before,
            mapping.limits.max_delete_percent,
            mapping.limits.min_deletes,
        ))
    .then(|| {
        format!(
            "the plan would {verb} {removing} of {before} {what} ({share:.1}%), above the \
             limits of mapping `{}` (max_deletes = {}, max_delete_percent = {}, min_deletes = {})",
            mapping.name,
            mapping.limits.max_deletes,
            mapping.limits.max_delete_percent,
            mapping.limits.min_deletes
        )
    })
}

fn memberships(plan: &Plan, mapping: &MappingConfig) -> Option<String> {
    let before = plan.memberships_before;
    let over = |removing: u64| {
        removing > mapping.limits.max_membership_removals
            || over_percent(
                removing,
                before,
                mapping.limits.max_membership_removal_percent,
                mapping.limits.min_membership_removals,
            )
    };
    let candidates = plan.staying_membership_removals();
    // Which removals really take access away costs an effective-membership walk: only
    // worth it when the removals could be over the limits.
    if !over(candidates.len() as u64) {
        return None;
    }
    let removing = plan.access_removals(&candidates);
    let share = percent(removing, before);
    over(removing).then(|| {
        format!(
            "the plan would remove {removing} of {before} group memberships from users and \
             groups that stay ({share:.1}%), above the limits of mapping `{}` \
             (max_membership_removals = {}, max_membership_removal_percent = {}, \
             min_membership_removals = {})",
            mapping.name,
            mapping.limits.max_membership_removals,
            mapping.limits.max_membership_removal_percent,
            mapping.limits.min_membership_removals
        )
    })
}

/// Users projected before and skipped now: names the field that came out empty most
/// often, its expression and one user it failed for.
fn skipped(plan: &Plan, mapping: &MappingConfig) -> Option<String> {
    let skipping = plan.skipped_before.len() as u64;
    let before = plan.live_users_before;
    if !over_percent(
        skipping,
        before,
        mapping.limits.max_skipped_percent,
        mapping.limits.min_deletes,
    ) {
        return None;
    }
    let mut by_field: BTreeMap<&str, usize> = BTreeMap::new();
    for user in &plan.skipped_before {
        *by_field.entry(user.field).or_default() += 1;
    }
    let (field, _) = by_field
        .iter()
        .max_by_key(|(field, count)| (**count, std::cmp::Reverse(**field)))?;
    let example = plan.skipped_before.iter().find(|u| u.field == *field)?;
    Some(format!(
        "the mapping skipped {skipping} of the {before} users it projected before ({:.1}%), \
         above the limits of mapping `{}` (max_skipped_percent = {}, min_deletes = {}): {} \
         gave nothing for them, e.g. for user {:?} (external id {:?}); check the attribute \
         names in the expression",
        percent(skipping, before),
        mapping.name,
        mapping.limits.max_skipped_percent,
        mapping.limits.min_deletes,
        example.describe_field(),
        example.user_name,
        example.external_id,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MemberKind;
    use crate::pipeline::Origin;
    use crate::pipeline::SkippedUser;
    use crate::pipeline::plan::{Membership, Removal};

    fn mapping() -> MappingConfig {
        let mut mapping = MappingConfig::pass_through("staff", OnRemove::Disable, 500, 20.0);
        mapping.limits.min_deletes = 5;
        mapping.limits.min_membership_removals = 5;
        mapping
    }

    fn removals(n: usize) -> Vec<Removal> {
        (0..n)
            .map(|i| Removal {
                already_disabled: false,
                id: format!("t{i}"),
                external_id: format!("u{i}"),
                name: format!("user{i}"),
            })
            .collect()
    }

    #[test]
    fn below_the_floor_no_percentage_holds() {
        let plan = Plan {
            user_removals: removals(1),
            live_users_before: 4,
            ..Plan::default()
        };
        assert_eq!(hold_reason(&plan, &mapping(), false), None);
        let plan = Plan {
            user_removals: removals(5),
            live_users_before: 20,
            ..Plan::default()
        };
        let reason = hold_reason(&plan, &mapping(), false).expect("held");
        assert!(
            reason.starts_with("the plan would disable 5 of 20 users (25.0%)"),
            "{reason}"
        );
        assert!(reason.contains("min_deletes = 5"), "{reason}");
    }

    #[test]
    fn the_absolute_limit_holds_below_the_floor() {
        let mut mapping = mapping();
        mapping.limits.max_deletes = 1;
        let plan = Plan {
            user_removals: removals(2),
            live_users_before: 1000,
            ..Plan::default()
        };
        assert!(hold_reason(&plan, &mapping, false).is_some());
    }

    #[test]
    fn membership_removals_of_staying_users_are_limited() {
        let removes = |n: usize| -> Vec<(String, String)> {
            (0..n)
                .map(|i| ("app".to_string(), format!("t{i}")))
                .collect()
        };
        // Memberships of users who leave are counted by the user limit, not here.
        let plan = Plan {
            user_removals: removals(6),
            membership_removes: removes(6),
            live_users_before: 1000,
            memberships_before: 10,
            ..Plan::default()
        };
        assert!(plan.staying_membership_removals().is_empty());
        assert_eq!(hold_reason(&plan, &mapping(), false), None);
        let plan = Plan {
            membership_removes: removes(6),
            memberships_before: 10,
            ..Plan::default()
        };
        let reason = hold_reason(&plan, &mapping(), false).expect("held");
        assert!(
            reason.starts_with(
                "the plan would remove 6 of 10 group memberships from users and groups that \
                 stay (60.0%)"
            ),
            "{reason}"
        );
        let mut lenient = mapping();
        lenient.limits.max_membership_removal_percent = 100.0;
        lenient.limits.max_membership_removals = 5;
        assert!(hold_reason(&plan, &lenient, false).is_some(), "absolute");
        lenient.limits.max_membership_removals = 6;
        assert_eq!(hold_reason(&plan, &lenient, false), None);
    }

    #[test]
    fn rewritten_nesting_takes_no_access_away() {
        let membership = |group: &str, member: &str, kind: MemberKind| Membership {
            group_id: group.into(),
            member_id: member.into(),
            kind,
            origin: Origin::Source,
        };
        // Flattened before: A held ann and bob directly. Kept now: A holds ann and B, B
        // holds bob; the direct (A, bob) goes, bob stays in A through B.
        let mut plan = Plan {
            membership_kept: vec![membership("A", "ann", MemberKind::User)],
            membership_adds: vec![
                membership("A", "B", MemberKind::Group),
                membership("B", "bob", MemberKind::User),
            ],
            membership_removes: vec![("A".into(), "bob".into())],
            own_group_ids: ["A".to_string(), "B".to_string()].into(),
            memberships_before: 2,
            ..Plan::default()
        };
        let removes = plan.staying_membership_removals();
        assert_eq!(plan.access_removals(&removes), 0);
        // And back: (A, B) goes while A gets bob directly: nothing lost either.
        plan.membership_kept = vec![membership("B", "bob", MemberKind::User)];
        plan.membership_adds = vec![
            membership("A", "ann", MemberKind::User),
            membership("A", "bob", MemberKind::User),
        ];
        plan.membership_removes = vec![("A".into(), "B".into())];
        let removes = plan.staying_membership_removals();
        assert_eq!(plan.access_removals(&removes), 0);
        // Without the direct grant, bob loses A.
        plan.membership_adds.pop();
        let removes = plan.staying_membership_removals();
        assert_eq!(plan.access_removals(&removes), 1);
    }

    #[test]
    fn skipped_users_name_the_field_its_expression_and_an_example() {
        let skipped = |i: usize, field: &'static str| SkippedUser {
            external_id: format!("u{i}"),
            user_name: format!("user{i}@example.com"),
            field,
            expression: Some("userPrinciplName | lower".into()),
        };
        let mut skipped_before: Vec<SkippedUser> =
            (0..6).map(|i| skipped(i, "attributes.user_name")).collect();
        skipped_before.insert(0, skipped(9, "attributes.email"));
        let plan = Plan {
            skipped_before,
            live_users_before: 10,
            ..Plan::default()
        };
        let reason = hold_reason(&plan, &mapping(), false).expect("held");
        assert_eq!(
            reason,
            "the mapping skipped 7 of the 10 users it projected before (70.0%), above the \
             limits of mapping `staff` (max_skipped_percent = 10, min_deletes = 5): \
             `attributes.user_name = \"userPrinciplName | lower\"` gave nothing for them, e.g. \
             for user \"user0@example.com\" (external id \"u0\"); check the attribute names in \
             the expression"
        );
        let few = Plan {
            skipped_before: (0..4).map(|i| skipped(i, "attributes.user_name")).collect(),
            live_users_before: 10,
            ..Plan::default()
        };
        assert_eq!(
            hold_reason(&few, &mapping(), false),
            None,
            "below the floor"
        );
    }
}
