//! The loader over `connectors/*.toml`: common keys, schedules, kind dispatch, and each
//! kind's table (one file per kind beside this one).

mod azure;
mod google;
mod okta;

use super::*;
use crate::connectors::file::FileFormat;
use crate::spec::SecretRef;
fn schedule(text: &str) -> Result<Schedule, String> {
    Schedule::parse(text).map_err(|err| err.to_string())
}

fn schedule_error(text: &str) -> String {
    Schedule::parse(text).expect_err("invalid").to_string()
}

/// The days of the week a schedule runs on, 0 being Sunday (croner's numbering
/// whatever the form).
fn days_of_week(text: &str) -> Vec<u16> {
    schedule(text)
        .expect("valid")
        .cron
        .pattern
        .days_of_week
        .values()
}

#[test]
fn time_zones_are_iana_names_or_fixed_offsets() {
    let offset = |text: &str| match parse_timezone(text) {
        Ok(ScheduleZone::Fixed(offset)) => offset.local_minus_utc(),
        other => panic!("{text}: {other:?}"),
    };
    assert_eq!(offset("UTC"), 0);
    assert_eq!(offset("+01:00"), 3600);
    assert_eq!(offset("-0530"), -19800);
    assert_eq!(
        parse_timezone("Europe/Paris"),
        Ok(ScheduleZone::Named(chrono_tz::Europe::Paris))
    );
    assert_eq!(
        parse_timezone("america/new_york"),
        Ok(ScheduleZone::Named(chrono_tz::America::New_York))
    );
    assert!(parse_timezone("+25:00").is_err());
    assert!(parse_timezone("Europe/Berln").is_err());
}

#[test]
fn five_field_cron_is_accepted() {
    let parsed = schedule("*/15 * * * *").expect("valid");
    assert_eq!(parsed.text, "*/15 * * * *");
    assert_eq!(parsed.cron.pattern.seconds.values(), [0]);
    assert_eq!(parsed.cron.pattern.minutes.values(), [0, 15, 30, 45]);
}

#[test]
fn six_and_seven_field_cron_is_accepted() {
    let parsed = schedule("30 0 9 * * Mon-Fri").expect("valid");
    assert_eq!(parsed.cron.pattern.seconds.values(), [30]);
    assert_eq!(days_of_week("30 0 9 * * Mon-Fri"), [1, 2, 3, 4, 5]);
    assert_eq!(days_of_week("0 0 9 * * 2-6"), [1, 2, 3, 4, 5]);
    assert!(schedule("0 0 9 * * * 2030").is_ok());
    assert!(schedule("@daily").is_ok());
}

#[test]
fn five_field_day_of_week_follows_crontab() {
    assert_eq!(days_of_week("0 9 * * 1-5"), [1, 2, 3, 4, 5]);
    assert_eq!(days_of_week("0 9 * * 0"), [0]);
    assert_eq!(days_of_week("0 9 * * 7"), [0]);
    assert_eq!(days_of_week("0 9 * * 5-7"), [0, 5, 6]);
    assert_eq!(days_of_week("0 9 * * sat,sun"), [0, 6]);
    assert_eq!(days_of_week("0 9 * * Saturday,sunday"), [0, 6]);
    assert_eq!(days_of_week("0 9 * * mon-fri/2"), [1, 3, 5]);
    assert_eq!(days_of_week("0 9 * * */2"), [0, 2, 4, 6]);
    assert_eq!(days_of_week("0 9 * * *"), [0, 1, 2, 3, 4, 5, 6]);
}

#[test]
fn bad_cron_is_explained() {
    let forms = "expected 5 fields (minute hour day-of-month month day-of-week) or 6-7 fields \
                 with seconds first (second minute hour day-of-month month day-of-week [year])";
    assert_eq!(
        schedule_error("*/5 * *"),
        format!("`*/5 * *` is not a valid cron schedule (3 fields); {forms}")
    );
    assert_eq!(
        schedule_error(""),
        format!("`` is not a valid cron schedule (it is empty); {forms}")
    );
    assert_eq!(
        schedule_error("0 25 * * *"),
        format!(
            "`0 25 * * *` is not a valid cron schedule (hour field `25`: `25` is out of range \
             (0-23)); {forms}"
        )
    );
    assert_eq!(
        schedule_error("0 0 * * * 0"),
        format!(
            "`0 0 * * * 0` is not a valid cron schedule (day-of-week field `0`: `0` is out of \
             range (1-7, 1 is Sunday, or sun-sat)); {forms}"
        )
    );
    assert_eq!(
        schedule_error("0 9 * * 8"),
        format!(
            "`0 9 * * 8` is not a valid cron schedule (day-of-week field `8`: `8` is out of \
             range (0-7, 0 and 7 are Sunday, or sun-sat)); {forms}"
        )
    );
    assert_eq!(
        schedule_error("0 9 * * 5-1"),
        format!(
            "`0 9 * * 5-1` is not a valid cron schedule (day-of-week field `5-1`: range `5-1` \
             runs backwards); {forms}"
        )
    );
    assert_eq!(
        schedule_error("x 9 * * *"),
        format!(
            "`x 9 * * *` is not a valid cron schedule (minute field `x`: `x` is not allowed \
             here (0-59)); {forms}"
        )
    );
    assert_eq!(
        schedule_error("0 1-x * * * *"),
        format!(
            "`0 1-x * * * *` is not a valid cron schedule (minute field `1-x`: `x` is not \
             allowed here (0-59)); {forms}"
        )
    );
    assert_eq!(
        schedule_error("0 0 9 1,,2 * *"),
        format!(
            "`0 0 9 1,,2 * *` is not a valid cron schedule (day-of-month field `1,,2`: an empty \
             item in the list (1-31, L or nW)); {forms}"
        )
    );
    assert_eq!(
        schedule_error("0 0 9 * * * 20x"),
        format!(
            "`0 0 9 * * * 20x` is not a valid cron schedule (year field `20x`: `x` is not \
             allowed here (a year such as 2030)); {forms}"
        )
    );
    assert_eq!(
        schedule_error("@sometimes"),
        format!(
            "`@sometimes` is not a valid cron schedule (shorthand field `@sometimes`: not one \
             of @yearly, @annually, @monthly, @weekly, @daily, @hourly); {forms}"
        )
    );
}

#[test]
fn an_unknown_time_zone_is_a_problem_at_its_line() {
    let (connector, problems) = check(
        "a",
        "kind = \"file\"\nmapping = \"default\"\nschedule = \"0 2 * * *\"\ntimezone = \"Europe/Berln\"\n[file]\npath = \"u.json\"\n",
        &["u.json"],
    );
    assert!(connector.is_none());
    assert_eq!(
        problems,
        [
            "connectors/a.toml:4: timezone: `Europe/Berln` is not a time zone idsync understands: \
             give an IANA name such as `Europe/Berlin`, `UTC`, or a fixed offset such as `+01:00` \
             or `-05:30`"
        ]
    );
}

#[test]
fn a_connector_reads_its_schedule_in_an_iana_zone() {
    let (connector, problems) = check(
        "a",
        "kind = \"file\"\nmapping = \"default\"\nschedule = \"30 2 * * *\"\ntimezone = \"Europe/Berlin\"\n[file]\npath = \"u.json\"\n",
        &["u.json"],
    );
    assert!(problems.is_empty(), "{problems:?}");
    let connector = connector.expect("valid");
    assert_eq!(
        connector.timezone,
        ScheduleZone::Named(chrono_tz::Europe::Berlin)
    );
    assert_eq!(connector.timezone.to_string(), "Europe/Berlin");
}

#[test]
fn connector_ids() {
    for id in ["a", "okta", "hr-2", "x_y", "0abc", &"a".repeat(63)] {
        assert!(is_valid_id(id), "{id}");
    }
    for id in ["", "-a", "_a", "A", "a b", "é", "a.b", &"a".repeat(64)] {
        assert!(!is_valid_id(id), "{id}");
    }
}

#[test]
fn file_formats_come_from_extensions() {
    assert_eq!(
        FileFormat::from_extension(Path::new("a/b.JSON")),
        Some(FileFormat::Json)
    );
    assert_eq!(
        FileFormat::from_extension(Path::new("b.csv")),
        Some(FileFormat::Csv)
    );
    assert_eq!(FileFormat::from_extension(Path::new("b.txt")), None);
    assert_eq!(FileFormat::from_extension(Path::new("json")), None);
    assert_eq!(FileFormat::Csv.as_str(), "csv");
}

/// Loads one connector file (at `connectors/<id>.toml` under a temp
/// dir holding `extra` files), with mappings `default` and `staff`.
fn check(id: &str, text: &str, extra: &[&str]) -> (Option<ConnectorConfig>, Vec<String>) {
    let dir = tempfile::tempdir().expect("temp dir");
    for name in extra {
        std::fs::write(dir.path().join(name), "").expect("write");
    }
    let file = dir.path().join(format!("connectors/{id}.toml"));
    let mut problems = Problems::new(dir.path());
    let known: BTreeSet<String> = ["default".to_owned(), "staff".to_owned()].into();
    let context = Context {
        base_dir: dir.path(),
        known_mappings: &known,
        mappings_dir: PathBuf::from("mappings"),
    };
    let source = Source { file: &file, text };
    let connector = load(id, &source, &context, &mut problems);
    let problems = problems
        .into_vec()
        .iter()
        .map(ToString::to_string)
        .collect();
    (connector, problems)
}

#[test]
fn kinds() {
    let (_, problems) = check("a", "kind = \"ldap\"\nmapping = \"default\"\n", &[]);
    assert_eq!(
        problems,
        [
            "connectors/a.toml:1: kind: kind = \"ldap\" needs an [ldap] table with `url`, `bind_dn`, `bind_password`, `preset` and [ldap.users] `base_dn`"
        ]
    );
    let (_, problems) = check("a", "kind = \"ftp\"\nmapping = \"default\"\n", &[]);
    assert_eq!(
        problems,
        [
            "connectors/a.toml:1: kind: unknown connector kind `ftp` (valid kinds: azure, okta, google, keycloak, ldap, scim, file)"
        ]
    );
    let (_, problems) = check("a", "mapping = \"default\"\nkind = \"file\"\n", &[]);
    assert_eq!(
        problems,
        ["connectors/a.toml:2: kind: kind = \"file\" needs a [file] table with `path`"]
    );
    let (_, problems) = check(
        "a",
        "kind = \"file\"\nmapping = \"default\"\n[file]\npath = \"x.json\"\n[ldap]\nurl = \"ldap://x\"\n\
         bind_dn = \"cn=a\"\nbind_password = { env = \"X\" }\npreset = \"openldap\"\n\
         users = { base_dn = \"dc=x\" }\n",
        &["x.json"],
    );
    assert_eq!(
        problems,
        ["connectors/a.toml:5: ldap: [ldap] does not apply to kind = \"file\""]
    );
}

#[test]
fn a_valid_file_connector() {
    let (connector, problems) = check(
        "hr",
        "kind = \"file\"\nmapping = \"staff\"\nenabled = false\nschedule = \"0 0 6 * * *\"\n[file]\npath = \"./users.data\"\nformat = \"csv\"\n",
        &["users.data"],
    );
    assert!(problems.is_empty(), "{problems:?}");
    let connector = connector.expect("valid");
    assert_eq!(connector.id, "hr");
    assert!(!connector.enabled);
    assert_eq!(connector.mapping, "staff");
    assert_eq!(connector.settings.kind(), "file");
    assert_eq!(
        connector.schedule.map(|s| s.to_string()).as_deref(),
        Some("0 0 6 * * *")
    );
    let ConnectorSettings::File(file) = connector.settings else {
        panic!("a file connector");
    };
    assert_eq!(file.format, FileFormat::Csv);
    assert!(file.path.is_absolute());
    assert!(file.path.ends_with("users.data"));
}

#[test]
fn a_directory_is_not_a_snapshot_file() {
    let (connector, problems) = check(
        "a",
        "kind = \"file\"\nmapping = \"default\"\n[file]\npath = \".\"\nformat = \"json\"\n",
        &[],
    );
    assert!(connector.is_none());
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].starts_with("connectors/a.toml:4: file.path: /")
            && problems[0].ends_with(" is a directory, not a file"),
        "{problems:?}"
    );
}
const KEYCLOAK: &str = "kind = \"keycloak\"\nmapping = \"default\"\n[keycloak]\n";

#[test]
fn a_valid_keycloak_connector() {
    // PATH is set wherever the tests run; a real config names its own variable.
    let (connector, problems) = check(
        "sso",
        &format!(
            "{KEYCLOAK}base_url = \"https://sso.example.com/\"\nrealm = \"acme\"\nclient_id = \"idsync\"\nclient_secret = {{ env = \"PATH\" }}\n"
        ),
        &[],
    );
    assert!(problems.is_empty(), "{problems:?}");
    let connector = connector.expect("valid");
    assert_eq!(connector.settings.kind(), "keycloak");
    let ConnectorSettings::Keycloak(k) = connector.settings else {
        panic!("a keycloak connector");
    };
    assert_eq!(k.base_url, "https://sso.example.com");
    assert_eq!(k.realm, "acme");
    assert_eq!(k.client_id, "idsync");
    assert_eq!(
        k.token_url,
        "https://sso.example.com/realms/acme/protocol/openid-connect/token"
    );
    assert_eq!(k.page_size, 100);
    assert_eq!(k.requests_per_second.map(|r| r.get()), None);
    assert!(
        !k.client_secret
            .as_ref()
            .expect("secret")
            .expose()
            .is_empty()
    );

    let (connector, problems) = check(
        "sso",
        &format!(
            "{KEYCLOAK}base_url = \"http://localhost:8080/auth\"\nrealm = \"acme\"\nclient_id = \"idsync\"\nclient_secret = {{ env = \"PATH\" }}\ntoken_url = \"http://localhost:8080/auth/realms/master/protocol/openid-connect/token\"\npage_size = 1000\nrequests_per_second = 2\nallow_insecure_http = true\n"
        ),
        &[],
    );
    assert!(problems.is_empty(), "{problems:?}");
    let ConnectorSettings::Keycloak(k) = connector.expect("valid").settings else {
        panic!("a keycloak connector");
    };
    assert_eq!(
        k.token_url,
        "http://localhost:8080/auth/realms/master/protocol/openid-connect/token"
    );
    assert_eq!(k.page_size, 1000);
    assert_eq!(k.requests_per_second.map(|r| r.get()), Some(2));
    assert!(k.allow_insecure_http);

    // Plain http without the option, or to a host that is not loopback, is refused.
    for (base, option) in [
        ("http://localhost:8080/auth", ""),
        ("http://sso.example.com", "allow_insecure_http = true\n"),
    ] {
        let (connector, problems) = check(
            "sso",
            &format!(
                "{KEYCLOAK}base_url = \"{base}\"\nrealm = \"acme\"\nclient_id = \"idsync\"\nclient_secret = {{ env = \"PATH\" }}\n{option}"
            ),
            &[],
        );
        assert!(connector.is_none());
        assert!(
            problems[0].starts_with("connectors/sso.toml:4: keycloak.base_url: ")
                && problems[0].contains("plain http sends credentials unencrypted"),
            "{problems:?}"
        );
    }
}

#[test]
fn keycloak_password_grant_through_admin_cli() {
    let (connector, problems) = check(
        "sso",
        &format!(
            "{KEYCLOAK}base_url = \"https://sso.example.com\"\nrealm = \"acme\"\nclient_id = \"admin-cli\"\nusername = \"sync-bot\"\npassword = {{ env = \"PATH\" }}\n"
        ),
        &[],
    );
    assert!(problems.is_empty(), "{problems:?}");
    let ConnectorSettings::Keycloak(k) = connector.expect("valid").settings else {
        panic!("a keycloak connector");
    };
    assert!(k.client_secret.is_none());
    assert_eq!(
        k.password_grant.as_ref().map(|(u, _)| u.as_str()),
        Some("sync-bot")
    );

    let (_, problems) = check(
        "sso",
        &format!(
            "{KEYCLOAK}base_url = \"https://sso.example.com\"\nrealm = \"acme\"\nclient_id = \"idsync\"\n"
        ),
        &[],
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("keycloak.client_secret")),
        "{problems:?}"
    );
    let (_, problems) = check(
        "sso",
        &format!(
            "{KEYCLOAK}base_url = \"https://sso.example.com\"\nrealm = \"acme\"\nclient_id = \"admin-cli\"\nusername = \"bot\"\n"
        ),
        &[],
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("`username` needs `password`")),
        "{problems:?}"
    );
}

#[test]
fn keycloak_problems() {
    let (connector, problems) = check(
        "sso",
        &format!(
            "{KEYCLOAK}base_url = \"https://sso.example.com\"\nrealm = \"acme\"\nclient_secret = {{ env = \"PATH\" }}\n"
        ),
        &[],
    );
    assert!(connector.is_none());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("client_id"), "{problems:?}");

    let (connector, problems) = check(
        "sso",
        &format!(
            "{KEYCLOAK}base_url = \"https://sso.example.com\"\nrealm = \"acme\"\nclient_id = \"idsync\"\nclient_secret = {{ env = \"PATH\" }}\nscope = \"x\"\n"
        ),
        &[],
    );
    assert!(connector.is_none());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("unknown field `scope`"),
        "{problems:?}"
    );

    let (connector, problems) = check(
        "sso",
        &format!(
            "{KEYCLOAK}base_url = \"https://sso.example.com/realms/acme\"\nrealm = \"acme\"\nclient_id = \"idsync\"\nclient_secret = {{ env = \"IDSYNC_TEST_UNSET_KEYCLOAK_SECRET_7F3A\" }}\npage_size = 1001\nrequests_per_second = 0\n"
        ),
        &[],
    );
    assert!(connector.is_none());
    assert_eq!(
        problems,
        [
            "connectors/sso.toml:4: keycloak.base_url: give the server's base URL without `/realms/...` (the realm goes in `realm`)".to_owned(),
            "connectors/sso.toml:8: keycloak.page_size: 1001 is out of range (1-1000)".to_owned(),
            "connectors/sso.toml:9: keycloak.requests_per_second: 0 is out of range (at least 1)".to_owned(),
            format!("connectors/sso.toml:7: keycloak.client_secret: {}", SecretRef::Env("IDSYNC_TEST_UNSET_KEYCLOAK_SECRET_7F3A".to_owned()).resolve(Path::new(".")).expect_err("unset")),
        ]
    );

    let (_, problems) = check("sso", "kind = \"keycloak\"\nmapping = \"default\"\n", &[]);
    assert_eq!(
        problems,
        [
            "connectors/sso.toml:1: kind: kind = \"keycloak\" needs a [keycloak] table with `base_url`, `realm`, `client_id` and `client_secret`"
        ]
    );
    let (_, problems) = check(
        "a",
        "kind = \"file\"\nmapping = \"default\"\n[file]\npath = \"x.json\"\n[keycloak]\nrealm = \"x\"\n",
        &["x.json"],
    );
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("keycloak"), "{problems:?}");
}
