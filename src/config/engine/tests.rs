use super::*;

fn load_text(text: &str) -> (EngineConfig, Vec<String>) {
    let base = Path::new("/etc/idsync");
    let mut problems = Problems::new(base);
    let source = Source {
        file: &base.join("idsync.toml"),
        text,
    };
    let engine = load(&source, base, &mut problems);
    let problems = problems
        .into_vec()
        .iter()
        .map(ToString::to_string)
        .collect();
    (engine, problems)
}

#[test]
fn database_urls_are_normalised() {
    let base = Path::new("/etc/idsync");
    let cases = [
        ("sqlite://idsync.db", "sqlite:///etc/idsync/idsync.db"),
        ("sqlite:idsync.db", "sqlite:///etc/idsync/idsync.db"),
        (
            "sqlite://./state/x.db?mode=rwc",
            "sqlite:///etc/idsync/state/x.db?mode=rwc",
        ),
        ("sqlite://../x.db", "sqlite:///etc/x.db"),
        ("sqlite://my%20db.db", "sqlite:///etc/idsync/my db.db"),
        ("sqlite://100%25.db", "sqlite:///etc/idsync/100%25.db"),
        ("sqlite::memory:", "sqlite::memory:"),
        ("sqlite://:memory:", "sqlite://:memory:"),
        ("sqlite:///var/lib/idsync.db", "sqlite:///var/lib/idsync.db"),
        ("sqlite:/var/lib/idsync.db", "sqlite:/var/lib/idsync.db"),
        ("postgres://u:p@h/db", "postgres://u:p@h/db"),
        ("postgresql://u:p@h/db", "postgresql://u:p@h/db"),
    ];
    for (given, expected) in cases {
        assert_eq!(
            normalize_database_url(given, base),
            Ok(expected.to_owned()),
            "{given}"
        );
    }
    assert_eq!(
        normalize_database_url("sqlite://x.db", Path::new("/srv/a?b#c%d")),
        Ok("sqlite:///srv/a%3Fb%23c%25d/x.db".to_owned())
    );
    let bad = "database_url must start with sqlite: or postgres://";
    for given in ["mysql://u:p@h/db", "", "idsync.db", "SQLITE://x.db"] {
        assert_eq!(
            normalize_database_url(given, base),
            Err(bad.to_owned()),
            "{given}"
        );
    }
    assert_eq!(
        normalize_database_url("sqlite://", base),
        Err("database_url names no sqlite database file".to_owned())
    );
}

#[test]
fn a_bad_database_url_is_reported_without_its_value() {
    let (_, problems) = load_text("[target]\ndatabase_url = \"mysql://root:hunter2@db\"\n");
    assert_eq!(
        problems,
        ["idsync.toml:2: target.database_url: database_url must start with sqlite: or postgres://"]
    );
}

#[test]
fn listen_addresses_must_be_ip_and_port() {
    let (engine, problems) = load_text("[admin]\nlisten = \"[::1]:80\"\n");
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(engine.admin_listen.to_string(), "[::1]:80");
    let (_, problems) =
        load_text("[scim]\n\nlisten = \"0.0.0.0\"\n[admin]\nlisten = \"localhost:5502\"\n");
    assert_eq!(
        problems,
        [
            "idsync.toml:3: scim.listen: `0.0.0.0` is not a valid listen address; expected IP:PORT, e.g. 0.0.0.0:5501 or [::]:5501",
            "idsync.toml:5: admin.listen: `localhost:5502` is not a valid listen address; expected IP:PORT, e.g. 0.0.0.0:5501 or [::]:5501",
        ]
    );
}

#[test]
fn log_settings() {
    let (engine, problems) = load_text("[log]\nlevel = \"warn\"\nformat = \"json\"\n");
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(engine.log_level, "warn");
    assert_eq!(engine.log_format, LogFormat::Json);
    assert_eq!(engine.log_format.as_str(), "json");
    let (_, problems) = load_text("[log]\nformat = \"xml\"\n");
    assert_eq!(
        problems,
        ["idsync.toml:2: log.format: unknown variant `xml`, expected `text` or `json`"]
    );
    let (_, problems) = load_text("[log]\nlevel = \" \"\n");
    assert_eq!(
        problems,
        ["idsync.toml:2: log.level: must not be empty; use a directive such as \"info\""]
    );
}

#[test]
fn safety_limits() {
    let (engine, problems) = load_text("[safety]\nmax_deletes = 0\nmax_delete_percent = 100\n");
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(engine.safety.max_deletes, 0);
    assert_eq!(engine.safety.max_delete_percent, 100.0);
    let (_, problems) = load_text("[safety]\nmax_deletes = -1\n");
    assert_eq!(
        problems,
        ["idsync.toml:2: safety.max_deletes: invalid value: integer `-1`, expected u64"]
    );
    let (_, problems) = load_text("[safety]\nmax_delete_percent = 100.5\n");
    assert_eq!(
        problems,
        ["idsync.toml:2: safety.max_delete_percent: must be between 0 and 100, got 100.5"]
    );
    let (_, problems) = load_text("[safety]\nmax_delete_percent = nan\n");
    assert_eq!(
        problems,
        ["idsync.toml:2: safety.max_delete_percent: must be between 0 and 100, got NaN"]
    );
}

#[test]
fn membership_skip_and_floor_limits_have_defaults_and_are_checked() {
    let (engine, problems) = load_text("");
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(engine.safety.min_deletes, 3);
    assert_eq!(engine.safety.max_membership_removals, 1000);
    assert_eq!(engine.safety.max_membership_removal_percent, 20.0);
    assert_eq!(engine.safety.min_membership_removals, 10);
    assert_eq!(engine.safety.max_skipped_percent, 10.0);
    let (engine, problems) = load_text(
        "[safety]\nmin_deletes = 0\nmax_membership_removals = 3\n\
         max_membership_removal_percent = 50\nmin_membership_removals = 1\nmax_skipped_percent = 0\n",
    );
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(engine.safety.min_deletes, 0);
    assert_eq!(engine.safety.max_membership_removals, 3);
    assert_eq!(engine.safety.max_membership_removal_percent, 50.0);
    assert_eq!(engine.safety.min_membership_removals, 1);
    assert_eq!(engine.safety.max_skipped_percent, 0.0);
    let (_, problems) =
        load_text("[safety]\nmax_membership_removal_percent = 101\nmax_skipped_percent = -1\n");
    assert_eq!(
        problems,
        [
            "idsync.toml:2: safety.max_membership_removal_percent: must be between 0 and 100, got 101",
            "idsync.toml:3: safety.max_skipped_percent: must be between 0 and 100, got -1",
        ]
    );
}

#[test]
fn scim_limits_have_defaults_and_must_be_positive() {
    let (engine, problems) = load_text("");
    assert!(problems.is_empty(), "{problems:?}");
    let defaults = crate::scim::server::ServerOptions::default();
    assert_eq!(engine.scim_options.max_connections, 1024);
    assert_eq!(engine.scim_options.limits, defaults.limits);
    let (engine, problems) = load_text(
        "[scim]\nheader_read_timeout_seconds = 3\nmax_connections = 200\n\
         max_string_length = 100\nmax_resource_bytes = 0\n",
    );
    assert_eq!(
        problems,
        ["idsync.toml:5: scim.max_resource_bytes: 0 is out of range (at least 1)"]
    );
    assert_eq!(
        engine.scim_options.header_read_timeout,
        std::time::Duration::from_secs(3)
    );
    assert_eq!(engine.scim_options.max_connections, 200);
    assert_eq!(engine.scim_options.limits.max_string_chars, 100);
}

#[test]
fn unknown_tables_are_rejected() {
    let (_, problems) = load_text("[targte]\ndatabase_url = \"sqlite::memory:\"\n");
    assert_eq!(
        problems,
        [
            "idsync.toml:1: targte: unknown field `targte`, expected one of `target`, `scim`, `admin`, `paths`, `log`, `safety`, `scheduler`"
        ]
    );
}

#[test]
fn paths_survive_a_broken_file() {
    let (engine, problems) =
        load_text("[paths]\nconnectors = \"c\"\nmappings = \"/m\"\n[log]\nlevel = 1\n");
    assert_eq!(problems.len(), 1);
    assert_eq!(engine.connectors_dir, Path::new("/etc/idsync/c"));
    assert_eq!(engine.mappings_dir, Path::new("/m"));
}
