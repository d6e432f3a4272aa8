use super::*;
use std::path::Path;

fn engine() -> SafetyLimits {
    SafetyLimits {
        max_deletes: 7,
        max_delete_percent: 3.5,
        min_deletes: 4,
        max_membership_removals: 9,
        max_membership_removal_percent: 6.5,
        min_membership_removals: 8,
        max_skipped_percent: 2.5,
    }
}

fn check(text: &str) -> (Option<MappingConfig>, Vec<String>) {
    let mut problems = Problems::new(Path::new("/etc/idsync"));
    let source = Source {
        file: Path::new("/etc/idsync/mappings/staff.toml"),
        text,
    };
    let mapping = load("staff", &source, &engine(), &mut problems);
    let problems = problems
        .into_vec()
        .iter()
        .map(ToString::to_string)
        .collect();
    (mapping, problems)
}

#[test]
fn an_empty_mapping_takes_the_engine_defaults() {
    let (mapping, problems) = check("");
    assert!(problems.is_empty(), "{problems:?}");
    let mapping = mapping.expect("valid");
    assert_eq!(mapping.name, "staff");
    assert_eq!(mapping.file, Path::new("/etc/idsync/mappings/staff.toml"));
    assert_eq!(mapping.on_remove, OnRemove::Disable);
    assert_eq!(mapping.on_remove.as_str(), "disable");
    assert_eq!(mapping.limits.max_deletes, 7);
    assert_eq!(mapping.limits.max_delete_percent, 3.5);
    assert_eq!(mapping.limits.min_deletes, 4);
    assert_eq!(mapping.limits.max_membership_removals, 9);
    assert_eq!(mapping.limits.max_membership_removal_percent, 6.5);
    assert_eq!(mapping.limits.min_membership_removals, 8);
    assert_eq!(mapping.limits.max_skipped_percent, 2.5);
}

#[test]
fn a_mapping_overrides_the_defaults() {
    let (mapping, problems) = check(
        "on_remove = \"delete\"\nmax_deletes = 0\nmax_delete_percent = 0\nmin_deletes = 1\n\
         max_membership_removals = 2\nmax_membership_removal_percent = 3\nmin_membership_removals = 4\n\
         max_skipped_percent = 100\n",
    );
    assert!(problems.is_empty(), "{problems:?}");
    let mapping = mapping.expect("valid");
    assert_eq!(mapping.limits.min_deletes, 1);
    assert_eq!(mapping.limits.max_membership_removals, 2);
    assert_eq!(mapping.limits.max_membership_removal_percent, 3.0);
    assert_eq!(mapping.limits.min_membership_removals, 4);
    assert_eq!(mapping.limits.max_skipped_percent, 100.0);
    assert_eq!(mapping.on_remove, OnRemove::Delete);
    assert_eq!(mapping.on_remove.as_str(), "delete");
    assert_eq!(mapping.limits.max_deletes, 0);
    assert_eq!(mapping.limits.max_delete_percent, 0.0);
}

#[test]
fn bad_values_are_reported_with_line_and_key() {
    let (mapping, problems) = check("\nmax_delete_percent = 101\n");
    assert!(mapping.is_none());
    assert_eq!(
        problems,
        ["mappings/staff.toml:2: max_delete_percent: must be between 0 and 100, got 101"]
    );
    let (_, problems) = check("max_membership_removal_percent = -2\nmax_skipped_percent = 200\n");
    assert_eq!(
        problems,
        [
            "mappings/staff.toml:1: max_membership_removal_percent: must be between 0 and 100, got -2",
            "mappings/staff.toml:2: max_skipped_percent: must be between 0 and 100, got 200",
        ]
    );
    let (_, problems) = check("on_remove = \"archive\"\n");
    assert_eq!(
        problems,
        [
            "mappings/staff.toml:1: on_remove: unknown variant `archive`, expected `disable` or `delete`"
        ]
    );
}

#[test]
fn a_full_mapping_loads() {
    let (mapping, problems) = check(
        r#"
nesting = "flatten"
[filter]
include_users = 'emails.value ew "@example.com" and active eq true'
exclude_groups = 'displayName eq "Everyone"'
[attributes]
user_name = "userPrincipalName | lower"
email = "mail ?? userPrincipalName"
[attributes.custom]
department = 'department ?? "Unassigned"'
[groups]
default = ["all-staff"]
default_apply = "always"
prefix = "idp-"
rename = { "Engineering" = "eng" }
[[applications]]
name = "jira"
groups = ["jira-users"]
when = 'groups eq "Engineering"'
"#,
    );
    assert!(problems.is_empty(), "{problems:?}");
    let mapping = mapping.expect("valid");
    assert_eq!(mapping.nesting, Nesting::Flatten);
    assert!(mapping.filter.include_users.is_some());
    assert!(mapping.filter.exclude_users.is_none());
    assert!(mapping.attributes.user_name.is_some());
    assert_eq!(mapping.attributes.custom.len(), 1);
    assert_eq!(mapping.groups.default, vec!["all-staff"]);
    assert_eq!(mapping.groups.default_apply, DefaultApply::Always);
    assert_eq!(
        mapping.groups.rename.get("engineering").map(String::as_str),
        Some("eng")
    );
    assert_eq!(mapping.groups.applications[0].groups, vec!["jira-users"]);
    assert!(!mapping.fingerprint.is_empty());
}

#[test]
fn every_mapping_fault_is_reported_with_line_and_key() {
    let (mapping, problems) = check(
        r#"[filter]
include_users = 'userName eq'
[attributes]
email = "mail ??"
usr_name = "x"
[groups]
default = [" padded "]
[[applications]]
name = "jira"
groups = []
"#,
    );
    assert!(mapping.is_none());
    assert_eq!(
        problems,
        [
            "mappings/staff.toml:5: attributes.usr_name: unknown field `usr_name`, expected one of `user_name`, `email`, `display_name`, `given_name`, `family_name`, `custom`"
        ]
    );
    let (_, problems) = check(
        r#"[filter]
include_users = 'userName eq'
[attributes]
email = "mail ??"
[groups]
default = [" padded ", ""]
[[applications]]
name = "jira"
groups = []
"#,
    );
    assert_eq!(problems.len(), 5, "{problems:#?}");
    assert!(
        problems[0]
            .starts_with("mappings/staff.toml:2: filter.include_users: invalid filter: column 12:"),
        "{}",
        problems[0]
    );
    assert!(
        problems[1]
            .starts_with("mappings/staff.toml:4: attributes.email: invalid expression: column 8:"),
        "{}",
        problems[1]
    );
    assert_eq!(
        problems[2],
        "mappings/staff.toml:6: groups.default: group name \" padded \" has leading or trailing spaces"
    );
    assert_eq!(
        problems[3],
        "mappings/staff.toml:6: groups.default: a group name must not be empty"
    );
    assert_eq!(
        problems[4],
        "mappings/staff.toml:9: applications.jira.groups: application \"jira\" grants no groups: list at least one in `groups`"
    );
}
