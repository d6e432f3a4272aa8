use super::*;
use std::fs;
use tempfile::TempDir;

/// Writes `files` (path relative to the tree root, contents) into a new
/// temporary directory.
fn tree(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (path, contents) in files {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, contents).expect("write");
    }
    dir
}

fn load(dir: &TempDir) -> Result<Config, ConfigErrors> {
    Config::load(&dir.path().join("idsync.toml"))
}

/// The displayed problems of a tree that must fail to load.
fn problems(dir: &TempDir) -> Vec<String> {
    problems_of(&dir.path().join("idsync.toml"))
}

/// The displayed problems of the tree of this `idsync.toml`.
fn problems_of(path: &Path) -> Vec<String> {
    match Config::load(path) {
        Ok(config) => panic!("expected problems, got {config:#?}"),
        Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
    }
}

fn ok(dir: &TempDir) -> Config {
    match load(dir) {
        Ok(config) => config,
        Err(errors) => panic!("expected a valid config, got:\n{errors}"),
    }
}

/// The tempdir's path as the loader sees it (absolute, normalised).
fn root(dir: &TempDir) -> PathBuf {
    normalize(&std::path::absolute(dir.path()).expect("absolute"))
}

const DEFAULT_MAPPING: (&str, &str) = ("mappings/default.toml", "");

#[test]
fn empty_idsync_toml_loads_with_all_defaults() {
    let dir = tree(&[("idsync.toml", "")]);
    let config = ok(&dir);
    let root = root(&dir);
    assert_eq!(config.path, root.join("idsync.toml"));
    assert_eq!(config.base_dir, root);
    let engine = &config.engine;
    assert_eq!(
        engine.database_url.expose(),
        format!("sqlite://{}/idsync.db", root.display())
    );
    assert_eq!(engine.scim_listen.to_string(), "0.0.0.0:5501");
    assert_eq!(engine.admin_listen.to_string(), "127.0.0.1:5502");
    assert_eq!(engine.connectors_dir, root.join("connectors"));
    assert_eq!(engine.mappings_dir, root.join("mappings"));
    assert_eq!(engine.log_level, "info");
    assert_eq!(engine.log_format, LogFormat::Text);
    assert_eq!(engine.safety.max_deletes, 500);
    assert_eq!(engine.safety.max_delete_percent, 20.0);
    assert!(config.connectors.is_empty());
    assert!(config.mappings.is_empty());
}

#[test]
fn full_valid_tree() {
    let dir = tree(&[
        (
            "idsync.toml",
            r#"
[target]
database_url = "postgres://idsync@db/idsync"
[scim]
listen = "127.0.0.1:6501"
[admin]
listen = "[::1]:6502"
[paths]
connectors = "conf/connectors"
mappings = "conf/mappings"
[log]
level = "idsync=debug,info"
format = "json"
[safety]
max_deletes = 50
max_delete_percent = 5
"#,
        ),
        (
            "conf/connectors/hr.toml",
            r#"
kind = "file"
mapping = "staff"
schedule = "*/15 * * * *"
[file]
path = "data/hr.csv"
"#,
        ),
        (
            "conf/connectors/contractors.toml",
            r#"
kind = "file"
enabled = false
mapping = "default"
[file]
path = "data/contractors.dump"
format = "json"
"#,
        ),
        (
            "conf/mappings/staff.toml",
            "on_remove = \"delete\"\nmax_deletes = 10\nmax_delete_percent = 2.5\n",
        ),
        ("conf/mappings/default.toml", "# all defaults\n"),
        ("conf/mappings/README.md", "not a mapping"),
        ("data/hr.csv", "id\n"),
        ("data/contractors.dump", "[]"),
    ]);
    let config = ok(&dir);
    let root = root(&dir);
    let engine = &config.engine;
    assert_eq!(engine.database_url.expose(), "postgres://idsync@db/idsync");
    assert_eq!(engine.scim_listen.to_string(), "127.0.0.1:6501");
    assert_eq!(engine.admin_listen.to_string(), "[::1]:6502");
    assert_eq!(engine.connectors_dir, root.join("conf/connectors"));
    assert_eq!(engine.mappings_dir, root.join("conf/mappings"));
    assert_eq!(engine.log_level, "idsync=debug,info");
    assert_eq!(engine.log_format, LogFormat::Json);
    assert_eq!(engine.safety.max_deletes, 50);
    assert_eq!(engine.safety.max_delete_percent, 5.0);

    assert_eq!(
        config.mappings.keys().collect::<Vec<_>>(),
        ["default", "staff"]
    );
    let staff = &config.mappings["staff"];
    assert_eq!(staff.name, "staff");
    assert_eq!(staff.file, root.join("conf/mappings/staff.toml"));
    assert_eq!(staff.on_remove, OnRemove::Delete);
    assert_eq!(staff.limits.max_deletes, 10);
    assert_eq!(staff.limits.max_delete_percent, 2.5);
    let default = &config.mappings["default"];
    assert_eq!(default.on_remove, OnRemove::Disable);
    assert_eq!(default.limits.max_deletes, 50);
    assert_eq!(default.limits.max_delete_percent, 5.0);

    assert_eq!(
        config.connectors.keys().collect::<Vec<_>>(),
        ["contractors", "hr"]
    );
    let hr = config.connector("hr").expect("hr");
    assert_eq!(hr.id, "hr");
    assert_eq!(hr.file, root.join("conf/connectors/hr.toml"));
    assert!(hr.enabled);
    assert_eq!(hr.mapping, "staff");
    assert_eq!(
        hr.schedule.as_ref().map(|s| s.text.as_str()),
        Some("*/15 * * * *")
    );
    let ConnectorSettings::File(file) = &hr.settings else {
        panic!("a file connector");
    };
    assert_eq!(file.path, root.join("data/hr.csv"));
    assert_eq!(file.format, FileFormat::Csv);
    assert_eq!(config.mapping_for(hr).name, "staff");

    let contractors = config.connector("contractors").expect("contractors");
    assert!(!contractors.enabled);
    assert!(contractors.schedule.is_none());
    let ConnectorSettings::File(file) = &contractors.settings else {
        panic!("a file connector");
    };
    assert_eq!(file.format, FileFormat::Json);
    assert_eq!(config.mapping_for(contractors).name, "default");
    assert!(config.connector("nope").is_none());
}

#[test]
fn missing_idsync_toml_is_one_problem_naming_the_path() {
    let dir = tree(&[("connectors/x.toml", "bogus")]);
    let errors = load(&dir).expect_err("missing file");
    assert_eq!(errors.0.len(), 1);
    assert_eq!(
        errors.to_string(),
        format!(
            "{}: configuration file not found",
            root(&dir).join("idsync.toml").display()
        )
    );
}

#[test]
fn unknown_key_in_a_connector_gives_line_and_message() {
    let dir = tree(&[
        ("idsync.toml", ""),
        DEFAULT_MAPPING,
        ("data.json", "[]"),
        (
            "connectors/hr.toml",
            "kind = \"file\"\nmapping = \"default\"\nshcedule = \"@daily\"\n[file]\npath = \"data.json\"\n",
        ),
    ]);
    assert_eq!(
        problems(&dir),
        [
            "connectors/hr.toml:3: shcedule: unknown field `shcedule`, expected one of \
             `kind`, `enabled`, `mapping`, `schedule`, `timezone`, `jitter_seconds`, `file`, \
             `azure`, `okta`, `google`, \
             `keycloak`, `ldap`, `scim`"
        ]
    );
}

#[test]
fn unknown_key_in_a_nested_table_has_a_dotted_key() {
    let dir = tree(&[
        ("idsync.toml", ""),
        DEFAULT_MAPPING,
        (
            "connectors/hr.toml",
            "kind = \"file\"\nmapping = \"default\"\n[file]\npath = \"data.json\"\nformatt = \"csv\"\n",
        ),
    ]);
    assert_eq!(
        problems(&dir),
        [
            "connectors/hr.toml:5: file.formatt: unknown field `formatt`, expected `path` or `format`"
        ]
    );
}

#[test]
fn missing_required_key_and_wrong_type() {
    let dir = tree(&[
        ("idsync.toml", "[scim]\nlisten = 5501\n"),
        DEFAULT_MAPPING,
        ("connectors/a.toml", "# no kind\nmapping = \"default\"\n"),
        (
            "connectors/b.toml",
            "kind = \"file\"\nmapping = \"default\"\n[file]\nformat = \"csv\"\n",
        ),
    ]);
    assert_eq!(
        problems(&dir),
        [
            "idsync.toml:2: scim.listen: invalid type: integer `5501`, expected a string",
            "connectors/a.toml: kind: missing field `kind`",
            "connectors/b.toml:3: file.path: missing field `path`",
        ]
    );
}

#[test]
fn toml_syntax_error() {
    let dir = tree(&[
        ("idsync.toml", "[log]\nlevel = verbose\n"),
        (
            "mappings/m.toml",
            "on_remove = \"disable\"\non_remove = \"delete\"\n",
        ),
    ]);
    assert_eq!(
        problems(&dir),
        [
            "idsync.toml:2: string values must be quoted, expected literal string",
            "mappings/m.toml:2: on_remove: duplicate key",
        ]
    );
}

#[test]
fn a_connector_naming_a_missing_mapping() {
    let dir = tree(&[
        ("idsync.toml", ""),
        ("mappings/default.toml", ""),
        ("mappings/staff.toml", "on_remove = \"delete\"\n"),
        ("data.json", "[]"),
        (
            "connectors/hr.toml",
            "kind = \"file\"\nmapping = \"foo\"\n[file]\npath = \"data.json\"\n",
        ),
    ]);
    assert_eq!(
        problems(&dir),
        ["connectors/hr.toml:2: mapping: mapping `foo` does not exist (known: default, staff)"]
    );
}

#[test]
fn a_connector_naming_a_mapping_when_there_are_none() {
    let dir = tree(&[
        ("idsync.toml", ""),
        ("data.json", "[]"),
        (
            "connectors/hr.toml",
            "kind = \"file\"\nmapping = \"default\"\n[file]\npath = \"data.json\"\n",
        ),
    ]);
    assert_eq!(
        problems(&dir),
        [
            "connectors/hr.toml:2: mapping: mapping `default` does not exist (no mappings in mappings)"
        ]
    );
}

#[test]
fn a_mapping_with_problems_still_exists_for_connectors() {
    let dir = tree(&[
        ("idsync.toml", ""),
        ("mappings/default.toml", "on_remove = \"explode\"\n"),
        ("data.json", "[]"),
        (
            "connectors/hr.toml",
            "kind = \"file\"\nmapping = \"default\"\n[file]\npath = \"data.json\"\n",
        ),
    ]);
    assert_eq!(
        problems(&dir),
        [
            "mappings/default.toml:1: on_remove: unknown variant `explode`, expected `disable` or `delete`"
        ]
    );
}

#[test]
fn several_problems_in_several_files_are_reported_together() {
    let dir = tree(&[
        (
            "idsync.toml",
            "[target]\ndatabase_url = \"mysql://x\"\n[scim]\nlisten = \"localhost\"\n\
             [safety]\nmax_delete_percent = 120\n",
        ),
        ("mappings/default.toml", "max_delete_percent = -1.0\n"),
        ("mappings/broken.toml", "on_remove = \n"),
        (
            "connectors/a.toml",
            "kind = \"ldap\"\nmapping = \"nope\"\nschedule = \"* * *\"\n",
        ),
        (
            "connectors/b.toml",
            "kind = \"file\"\nmapping = \"default\"\n[file]\npath = \"missing.txt\"\n",
        ),
        ("connectors/Bad Name.toml", "kind = \"file\"\n"),
        ("connectors/notes.txt", "ignored"),
    ]);
    let root = root(&dir);
    let found = problems(&dir);
    let expected = [
        "idsync.toml:2: target.database_url: database_url must start with sqlite: or postgres://".to_owned(),
        "idsync.toml:4: scim.listen: `localhost` is not a valid listen address; expected IP:PORT, e.g. 0.0.0.0:5501 or [::]:5501".to_owned(),
        "idsync.toml:6: safety.max_delete_percent: must be between 0 and 100, got 120".to_owned(),
        "mappings/broken.toml:1: string values must be quoted, expected literal string".to_owned(),
        "mappings/default.toml:1: max_delete_percent: must be between 0 and 100, got -1".to_owned(),
        "connectors/Bad Name.toml: connector id `Bad Name` (the file name) must be 1-63 \
         lower-case letters, digits, `-` or `_`, starting with a letter or digit".to_owned(),
        "connectors/Bad Name.toml: mapping: missing field `mapping`".to_owned(),
        "connectors/a.toml:1: kind: kind = \"ldap\" needs an [ldap] table with `url`, `bind_dn`, `bind_password`, `preset` and [ldap.users] `base_dn`".to_owned(),
        "connectors/a.toml:2: mapping: mapping `nope` does not exist (known: broken, default)".to_owned(),
        "connectors/a.toml:3: schedule: `* * *` is not a valid cron schedule (3 fields); \
         expected 5 fields (minute hour day-of-month month day-of-week) or 6-7 fields with \
         seconds first (second minute hour day-of-month month day-of-week [year])".to_owned(),
        "connectors/b.toml:4: file.path: file not found: ".to_owned()
            + &root.join("missing.txt").display().to_string(),
        "connectors/b.toml:4: file.format: cannot tell the format of `missing.txt` from its \
         extension; set format = \"json\" or \"csv\" in [file]".to_owned(),
    ];
    assert_eq!(found, expected);
    assert_eq!(found.len(), 12);
    let joined = load(&dir).expect_err("problems").to_string();
    assert_eq!(joined.lines().count(), 12);
}

#[test]
fn unset_env_var_for_database_url_names_the_variable() {
    let dir = tree(&[(
        "idsync.toml",
        "[target]\ndatabase_url = { env = \"IDSYNC_TEST_SURELY_UNSET_7F3A\" }\n",
    )]);
    assert_eq!(
        problems(&dir),
        [
            "idsync.toml:2: target.database_url: environment variable `IDSYNC_TEST_SURELY_UNSET_7F3A` is not set"
        ]
    );
}

#[test]
fn database_url_from_a_secret_file() {
    let dir = tree(&[
        (
            "idsync.toml",
            "[target]\ndatabase_url = { file = \"secrets/db_url\" }\n",
        ),
        ("secrets/db_url", "postgresql://idsync:hunter2@db/idsync\n"),
    ]);
    let config = ok(&dir);
    assert_eq!(
        config.engine.database_url.expose(),
        "postgresql://idsync:hunter2@db/idsync"
    );
    assert!(!format!("{config:?}").contains("hunter2"));
}

#[test]
fn relative_sqlite_urls_are_normalised_against_the_config_dir() {
    let cases = [
        (
            "sqlite://state/idsync.db",
            "sqlite://{root}/state/idsync.db",
        ),
        ("sqlite:idsync.db", "sqlite://{root}/idsync.db"),
        (
            "sqlite://../idsync.db?mode=rwc",
            "sqlite://{parent}/idsync.db?mode=rwc",
        ),
        ("sqlite::memory:", "sqlite::memory:"),
        ("sqlite:///var/lib/idsync.db", "sqlite:///var/lib/idsync.db"),
        ("sqlite:/var/lib/idsync.db", "sqlite:/var/lib/idsync.db"),
    ];
    for (given, expected) in cases {
        let dir = tree(&[(
            "idsync.toml",
            &format!("[target]\ndatabase_url = \"{given}\"\n"),
        )]);
        let root = root(&dir);
        let parent = root.parent().expect("parent");
        let expected = expected
            .replace("{root}", &root.display().to_string())
            .replace("{parent}", &parent.display().to_string());
        assert_eq!(ok(&dir).engine.database_url.expose(), expected, "{given}");
    }
}

#[test]
fn paths_resolve_against_the_directory_of_idsync_toml() {
    let dir = tree(&[
        ("etc/idsync.toml", "[paths]\nconnectors = \"../conf/c\"\n"),
        ("etc/mappings/default.toml", ""),
        ("etc/data/x.json", "[]"),
        (
            "conf/c/x.toml",
            "kind = \"file\"\nmapping = \"default\"\n[file]\npath = \"data/x.json\"\n",
        ),
    ]);
    let root = root(&dir);
    // Load through a relative-looking path with `.` and `..` in it.
    let config = Config::load(&dir.path().join("etc/./../etc/idsync.toml"))
        .unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(config.base_dir, root.join("etc"));
    assert_eq!(config.engine.connectors_dir, root.join("conf/c"));
    assert_eq!(config.engine.mappings_dir, root.join("etc/mappings"));
    let ConnectorSettings::File(file) = &config.connectors["x"].settings else {
        panic!("a file connector");
    };
    // Relative to idsync.toml's directory, not the connectors directory.
    assert_eq!(file.path, root.join("etc/data/x.json"));
    assert_eq!(config.connectors["x"].file, root.join("conf/c/x.toml"));
}

#[test]
fn problems_outside_the_base_dir_keep_their_full_path() {
    let dir = tree(&[
        ("etc/idsync.toml", "[paths]\nmappings = \"../m\"\n"),
        ("m/default.toml", "bogus = 1\n"),
    ]);
    let path = root(&dir).join("m/default.toml");
    assert_eq!(
        problems_of(&dir.path().join("etc/idsync.toml")),
        [format!(
            "{}:1: bogus: unknown field `bogus`, expected one of `on_remove`, `max_deletes`, `max_delete_percent`, `min_deletes`, `max_membership_removals`, `max_membership_removal_percent`, `min_membership_removals`, `max_skipped_percent`, `nesting`, `filter`, `attributes`, `groups`, `applications`",
            path.display()
        )]
    );
}

#[test]
fn a_syntax_error_in_idsync_toml_still_checks_the_rest() {
    // Unreadable as TOML: the default directories are checked.
    let dir = tree(&[
        ("idsync.toml", "[paths]\nmappings = \"m\"\n[log\n"),
        ("mappings/default.toml", "bogus = 1\n"),
        ("m/default.toml", "bogus = 1\n"),
    ]);
    assert_eq!(
        problems(&dir),
        [
            "idsync.toml:3: unclosed table, expected `]`",
            "mappings/default.toml:1: bogus: unknown field `bogus`, expected one of `on_remove`, `max_deletes`, `max_delete_percent`, `min_deletes`, `max_membership_removals`, `max_membership_removal_percent`, `min_membership_removals`, `max_skipped_percent`, `nesting`, `filter`, `attributes`, `groups`, `applications`",
        ]
    );
    // Valid TOML with a bad value: [paths] is still followed.
    let dir = tree(&[
        (
            "idsync.toml",
            "[paths]\nmappings = \"m\"\n[log]\nlevel = 3\n",
        ),
        ("m/default.toml", "bogus = 1\n"),
    ]);
    assert_eq!(
        problems(&dir),
        [
            "idsync.toml:4: log.level: invalid type: integer `3`, expected a string",
            "m/default.toml:1: bogus: unknown field `bogus`, expected one of `on_remove`, `max_deletes`, `max_delete_percent`, `min_deletes`, `max_membership_removals`, `max_membership_removal_percent`, `min_membership_removals`, `max_skipped_percent`, `nesting`, `filter`, `attributes`, `groups`, `applications`",
        ]
    );
}

#[test]
fn problem_display_leaves_out_absent_parts() {
    let mut problem = Problem {
        file: PathBuf::from("connectors/okta.toml"),
        line: Some(3),
        key: Some("schedule".into()),
        message: "bad".into(),
    };
    assert_eq!(problem.to_string(), "connectors/okta.toml:3: schedule: bad");
    problem.line = None;
    assert_eq!(problem.to_string(), "connectors/okta.toml: schedule: bad");
    problem.key = None;
    assert_eq!(problem.to_string(), "connectors/okta.toml: bad");
    problem.line = Some(1);
    assert_eq!(problem.to_string(), "connectors/okta.toml:1: bad");
}

/// `[target]` with `kind = "ldap"` and the given `[target.ldap]` keys after the required
/// ones (the password from a file beside idsync.toml).
fn ldap_target_tree(extra: &str) -> TempDir {
    let toml = format!(
        "[target]\nkind = \"ldap\"\n[target.ldap]\nurl = \"ldaps://ldap.example.com\"\n\
         bind_dn = \"cn=idsync,dc=example,dc=com\"\nbind_password = {{ file = \"pw\" }}\n\
         users_dn = \"ou=people,dc=example,dc=com\"\ngroups_dn = \"ou=groups,dc=example,dc=com\"\n\
         {extra}\n"
    );
    tree(&[("idsync.toml", &toml), ("pw", "secret")])
}

#[test]
fn an_ldap_target_loads_with_its_defaults() {
    let config = ok(&ldap_target_tree(""));
    let crate::target::TargetKind::Ldap(ldap) = &config.engine.target else {
        panic!("an LDAP target, got {:?}", config.engine.target)
    };
    assert_eq!(ldap.users_dn, "ou=people,dc=example,dc=com");
    assert_eq!(ldap.bind_password.expose(), "secret");
    assert_eq!(
        ldap.deactivate,
        crate::target::ldap::settings::Deactivate::Lock {
            attribute: "pwdAccountLockedTime".into(),
            value: "000001010000Z".into()
        }
    );
    assert_eq!(ldap.writes_in_flight, 8);
    assert_eq!(config.engine.target.name(), "ldap");
    assert_eq!(
        ok(&tree(&[("idsync.toml", "")])).engine.target.name(),
        "sql"
    );
}

#[test]
fn ldap_target_mistakes_are_reported_with_their_keys() {
    let dir = ldap_target_tree(
        "on_deactivate = \"move\"\ngroup_class = \"posixGroup\"\nwrites_in_flight = 0\n\
         [target.ldap.attributes]\nmail = \"email\"\n\"bad name\" = \"x\"",
    );
    let found = problems(&dir);
    let expect = [
        "idsync.toml:10: target.ldap.group_class: unknown group class `posixGroup` (expected \
         \"groupOfNames\" or \"groupOfUniqueNames\")",
        "idsync.toml:9: target.ldap.on_deactivate: on_deactivate = \"move\" needs \
         `disabled_dn`, the container inactive users are moved to",
        "idsync.toml:11: target.ldap.writes_in_flight: 0 is out of range (1-64)",
    ];
    for line in expect {
        assert!(found.iter().any(|p| p == line), "{line}\nnot in {found:#?}");
    }
    assert!(
        found
            .iter()
            .any(|p| p.contains("target.ldap.attributes.mail: `mail` is written by idsync")),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|p| p.contains("`bad name` is not an LDAP attribute name")),
        "{found:#?}"
    );
}

#[test]
fn an_ldap_target_needs_its_table_and_a_known_kind() {
    let missing = tree(&[("idsync.toml", "[target]\nkind = \"ldap\"\n")]);
    assert_eq!(
        problems(&missing),
        [
            "idsync.toml:2: target.kind: kind = \"ldap\" needs a [target.ldap] table with `url`, \
          `bind_dn`, `bind_password`, `users_dn` and `groups_dn`"
        ]
    );
    let unknown = tree(&[("idsync.toml", "[target]\nkind = \"mysql\"\n")]);
    assert_eq!(
        problems(&unknown),
        ["idsync.toml:2: target.kind: unknown target kind `mysql` (expected \"sql\" or \"ldap\")"]
    );
    let plain = ldap_target_tree("");
    let text = fs::read_to_string(plain.path().join("idsync.toml"))
        .expect("read")
        .replace("ldaps://ldap.example.com", "ldap://ldap.example.com");
    fs::write(plain.path().join("idsync.toml"), text).expect("write");
    let found = problems(&plain);
    assert!(
        found[0].contains("target.ldap.url: `ldap://ldap.example.com`: plain ldap:// sends the bind password unencrypted"),
        "{found:#?}"
    );
}

#[test]
fn every_unknown_key_and_bad_value_of_a_file_is_reported_at_once() {
    let dir = tree(&[
        ("idsync.toml", ""),
        DEFAULT_MAPPING,
        ("data.json", "[]"),
        (
            "connectors/hr.toml",
            "kind = \"file\"\nmapping = \"default\"\nshcedule = \"@daily\"\nenabled = \"yes\"\n\
             [file]\npath = \"data.json\"\nformatt = \"csv\"\n",
        ),
    ]);
    let found = problems(&dir);
    let lines: Vec<&str> = found
        .iter()
        .map(|p| p.split(": ").next().unwrap_or(""))
        .collect();
    assert_eq!(
        lines,
        [
            "connectors/hr.toml:3",
            "connectors/hr.toml:4",
            "connectors/hr.toml:7"
        ],
        "{found:#?}"
    );
    assert!(found[0].contains("unknown field `shcedule`"), "{found:#?}");
    assert!(found[1].contains("enabled"), "{found:#?}");
    assert!(found[2].contains("unknown field `formatt`"), "{found:#?}");
}
