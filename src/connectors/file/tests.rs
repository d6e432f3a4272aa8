//! Tests of the file connector: both formats, batching, errors with positions, and
//! stopping when the sink refuses a batch.

use std::io::Write;
use std::path::PathBuf;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::*;
use crate::connectors::SinkError;
use crate::connectors::testing::CollectingSink;
use crate::model::{Email, MemberKind, MemberRef};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

fn temp_file(contents: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(contents.as_bytes())
        .expect("write temp file");
    file
}

async fn read_path(
    path: &Path,
    format: FileFormat,
) -> (Result<ReadSummary, ConnectorError>, CollectingSink) {
    let connector = FileConnector::new(path.to_path_buf(), format);
    let mut sink = CollectingSink::default();
    let result = connector.read(None, &mut sink).await;
    (result, sink)
}

async fn read_text(
    contents: &str,
    format: FileFormat,
) -> (Result<ReadSummary, ConnectorError>, CollectingSink) {
    let file = temp_file(contents);
    read_path(file.path(), format).await
}

/// Reads `contents`, expecting a Malformed error: (line, column, message).
async fn malformed(contents: &str, format: FileFormat) -> (u64, u64, String) {
    match read_text(contents, format).await.0 {
        Err(ConnectorError::Malformed {
            line,
            column,
            message,
            ..
        }) => (line, column, message),
        other => panic!("expected Malformed, got {other:?}"),
    }
}

fn complete() -> ReadSummary {
    ReadSummary {
        mode: ReadMode::Full,
        complete: true,
        next_checkpoint: None,
    }
}

#[tokio::test]
async fn reads_the_example_snapshot() {
    let (result, sink) = read_path(&example("snapshot.json"), FileFormat::Json).await;
    assert_eq!(result.expect("read"), complete());
    let users = sink.users();
    let groups = sink.groups();
    assert_eq!(users.len(), 12);
    assert_eq!(groups.len(), 6);
    assert_eq!(users.iter().filter(|u| !u.active).count(), 1);

    let alice = &users[0];
    assert_eq!(alice.external_id, "u-1001");
    assert_eq!(alice.user_name, "alice.nguyen@example.com");
    assert_eq!(alice.given_name.as_deref(), Some("Alice"));
    assert_eq!(alice.family_name.as_deref(), Some("Nguyen"));
    assert_eq!(alice.display_name.as_deref(), Some("Alice Nguyen"));
    assert_eq!(alice.primary_email(), Some("alice.nguyen@example.com"));
    assert_eq!(alice.emails.len(), 2);
    assert_eq!(alice.attributes["department"], json!("Engineering"));
    assert_eq!(alice.attributes["location"]["office"], json!("Berlin"));
    assert_eq!(alice.attributes["userName"], json!(alice.user_name));

    let wei = users
        .iter()
        .find(|u| u.external_id == "u-1003")
        .expect("u-1003");
    assert!(wei.active, "active defaults to true");
    assert_eq!(wei.primary_email(), Some("chen.wei@example.com"));

    let engineering = &groups[0];
    assert_eq!(engineering.display_name, "Engineering");
    assert_eq!(engineering.description.as_deref(), Some("All engineers"));
    assert!(
        engineering
            .members
            .contains(&MemberRef::group("g-platform"))
    );
    assert!(engineering.members.contains(&MemberRef::user("u-1001")));
    assert!(!engineering.attributes.contains_key("members"));
    assert_eq!(engineering.attributes["id"], json!("g-engineering"));

    let people = groups.iter().find(|g| g.external_id == "g-people-ops");
    assert_eq!(
        people.map(|g| g.display_name.as_str()),
        Some("People Operations"),
        "`name` is an alias of displayName"
    );
    let departments = groups.iter().find(|g| g.external_id == "g-departments");
    assert!(
        departments
            .expect("g-departments")
            .members
            .iter()
            .all(|m| m.kind == MemberKind::Group)
    );
    let announcements = groups.iter().find(|g| g.external_id == "g-announcements");
    assert!(
        announcements
            .expect("g-announcements")
            .members
            .contains(&MemberRef::group("g-departments"))
    );
}

#[tokio::test]
async fn reads_the_example_csv() {
    let (result, sink) = read_path(&example("users.csv"), FileFormat::Csv).await;
    assert_eq!(result.expect("read"), complete());
    let users = sink.users();
    assert_eq!(users.len(), 8);
    assert!(sink.groups().is_empty());
    let rania = users
        .iter()
        .find(|u| u.external_id == "u-2006")
        .expect("u-2006");
    assert_eq!(rania.display_name.as_deref(), Some("Aziz, Rania"));
    assert_eq!(rania.primary_email(), Some("rania.aziz@example.com"));
    assert!(rania.emails[0].primary);
    let inactive: Vec<_> = users.iter().filter(|u| !u.active).collect();
    assert_eq!(inactive.len(), 1);
    assert_eq!(inactive[0].external_id, "u-2007");
    let pavel = users
        .iter()
        .find(|u| u.external_id == "u-2004")
        .expect("u-2004");
    assert!(pavel.active, "an empty active cell means active");
    assert!(!pavel.attributes.contains_key("active"));
    let tomas = users
        .iter()
        .find(|u| u.external_id == "u-2008")
        .expect("u-2008");
    assert_eq!(tomas.given_name.as_deref(), Some("Tomás"));
    assert!(!tomas.attributes.contains_key("employeeNumber"));
}

fn many_users(count: usize) -> String {
    let users: Vec<Value> = (0..count)
        .map(|i| json!({"id": format!("u-{i}"), "userName": format!("user{i}@example.com")}))
        .collect();
    let groups =
        json!([{"id": "g-1", "displayName": "One", "members": [{"type": "user", "id": "u-0"}]}]);
    json!({"groups": groups, "users": users}).to_string()
}

#[tokio::test]
async fn sends_batches_of_at_most_a_thousand() {
    let (result, sink) = read_text(&many_users(2500), FileFormat::Json).await;
    assert_eq!(result.expect("read"), complete());
    let sizes: Vec<(&str, usize)> = sink
        .batches
        .iter()
        .map(|batch| match batch {
            SourceBatch::Users(users) => ("users", users.len()),
            SourceBatch::Groups(groups) => ("groups", groups.len()),
            other => panic!("unexpected batch {other:?}"),
        })
        .collect();
    // Groups come first because they come first in the file.
    assert_eq!(
        sizes,
        [
            ("groups", 1),
            ("users", 1000),
            ("users", 1000),
            ("users", 500)
        ]
    );
    let users = sink.users();
    assert_eq!(users.first().map(|u| u.external_id.as_str()), Some("u-0"));
    assert_eq!(users.last().map(|u| u.external_id.as_str()), Some("u-2499"));
}

#[tokio::test]
async fn csv_batches_too() {
    let mut text = String::from("id,userName\n");
    for i in 0..2500 {
        text.push_str(&format!("u-{i},user{i}@example.com\n"));
    }
    let (result, sink) = read_text(&text, FileFormat::Csv).await;
    assert_eq!(result.expect("read"), complete());
    let sizes: Vec<usize> = sink.batches.iter().map(SourceBatch::len).collect();
    assert_eq!(sizes, [1000, 1000, 500]);
}

#[tokio::test]
async fn syntax_error_gives_its_line() {
    let text = "{\n  \"users\": [\n    {\"id\": \"u-1\", \"userName\": \"a\"},\n    {\"id\": \"u-2\" \"userName\": \"b\"}\n  ]\n}\n";
    let (line, column, message) = malformed(text, FileFormat::Json).await;
    assert_eq!((line, column), (4, 18), "the unexpected quote");
    assert!(message.contains("users[1]"), "{message}");
    assert!(message.contains("expected `,` or `}`"), "{message}");
    assert!(!message.contains("at line"), "{message}");
}

#[tokio::test]
async fn truncated_file_is_malformed() {
    let (line, _, message) = malformed("{\"users\": [\n{\"id\": \"u-1\"", FileFormat::Json).await;
    assert_eq!(line, 2);
    assert!(message.contains("EOF"), "{message}");
}

#[tokio::test]
async fn missing_user_name_names_the_record() {
    let text = r#"{
  "users": [
    {"id": "u-1", "userName": "a@example.com"},
      {"id": "u-2", "givenName": "Bea"}
  ]
}"#;
    let (result, sink) = read_text(text, FileFormat::Json).await;
    let Err(ConnectorError::Malformed {
        line,
        column,
        message,
        path,
    }) = result
    else {
        panic!("expected Malformed, got {result:?}");
    };
    assert_eq!((line, column), (4, 7), "the record's opening brace");
    assert_eq!(message, r#"users[1] (id "u-2"): missing userName"#);
    assert!(!path.is_empty());
    assert!(sink.batches.is_empty(), "the batch in progress is not sent");
}

#[tokio::test]
async fn semantic_errors_in_users() {
    let cases = [
        (r#"{"users": [{"userName": "a"}]}"#, "users[0]: missing id"),
        (
            r#"{"users": [{"id": "", "userName": "a"}]}"#,
            "users[0]: empty id",
        ),
        (
            r#"{"users": [{"id": 7, "userName": "a"}]}"#,
            "users[0]: id must be a string, not a number",
        ),
        (
            r#"{"users": [{"id": "u-1", "userName": "a", "active": "yes"}]}"#,
            r#"users[0] (id "u-1"): active must be true or false, not a string"#,
        ),
        (
            r#"{"users": [{"id": "u-1", "userName": "a", "emails": [{"type": "work"}]}]}"#,
            r#"users[0] (id "u-1"): emails[0]: missing value"#,
        ),
        (
            r#"{"users": [{"id": "u-1", "userName": "a", "givenName": ["x"]}]}"#,
            r#"users[0] (id "u-1"): givenName must be a string, not an array"#,
        ),
    ];
    for (text, expected) in cases {
        let (line, column, message) = malformed(text, FileFormat::Json).await;
        assert_eq!(message, expected);
        assert_eq!((line, column), (1, 12), "{text}");
    }
}

#[tokio::test]
async fn a_record_that_is_not_an_object() {
    let (_, _, message) = malformed(
        r#"{"users": [{"id": "u-1", "userName": "a"}, 42]}"#,
        FileFormat::Json,
    )
    .await;
    assert!(
        message.starts_with("users[1]: invalid type: integer `42`"),
        "{message}"
    );
    assert!(message.contains("expected a user object"), "{message}");
}

#[tokio::test]
async fn unknown_member_type_names_group_and_member() {
    // The members come before the id: the message still names the group.
    let text = r#"{"groups": [
  {"displayName": "Admins",
   "members": [
     {"type": "user", "id": "u-1"},
     {"type": "role", "id": "r-1"},
     {"type": "user", "id": "u-2"}
   ],
   "id": "g-admins"}
]}"#;
    let (line, column, message) = malformed(text, FileFormat::Json).await;
    assert_eq!(
        message,
        r#"groups[0] (id "g-admins"): members[1]: unknown member type "role" (expected "user" or "group")"#
    );
    assert_eq!((line, column), (5, 6), "the member's opening brace");
}

#[tokio::test]
async fn semantic_errors_in_groups() {
    let cases = [
        (
            r#"{"groups": [{"id": "g-1"}]}"#,
            r#"groups[0] (id "g-1"): missing displayName"#,
        ),
        (
            r#"{"groups": [{"id": "g-1", "name": "G", "members": [{"id": "u-1"}]}]}"#,
            r#"groups[0] (id "g-1"): members[0]: missing type"#,
        ),
        (
            r#"{"groups": [{"id": "g-1", "name": "G", "members": ["u-1"]}]}"#,
            r#"groups[0] (id "g-1"): members[0]: expected a {"type", "id"} object, not a string"#,
        ),
        (
            r#"{"groups": [{"id": "g-1", "name": "G", "members": [{"type": "user"}]}]}"#,
            r#"groups[0] (id "g-1"): members[0]: missing id"#,
        ),
    ];
    for (text, expected) in cases {
        let (_, _, message) = malformed(text, FileFormat::Json).await;
        assert_eq!(message, expected);
    }
    let (_, _, message) = malformed(
        r#"{"groups": [{"id": "g-1", "name": "G", "members": "everyone"}]}"#,
        FileFormat::Json,
    )
    .await;
    assert!(
        message.starts_with(r#"groups[0] (id "g-1"): invalid type: string"#),
        "{message}"
    );
}

#[tokio::test]
async fn groups_members_and_attributes() {
    let text = r#"{"groups": [
  {"id": "g-1", "name": "Ops", "members": [{"type": "User", "id": "u-1"}, {"type": "group", "id": "g-2"}], "mail": "ops@example.com"},
  {"id": "g-2", "displayName": "SRE", "name": "ignored", "members": null},
  {"id": "g-3", "displayName": "Empty"}
]}"#;
    let (result, sink) = read_text(text, FileFormat::Json).await;
    assert_eq!(result.expect("read"), complete());
    let groups = sink.groups();
    assert_eq!(groups.len(), 3);
    assert_eq!(groups[0].display_name, "Ops");
    assert_eq!(
        groups[0].members,
        [MemberRef::user("u-1"), MemberRef::group("g-2")]
    );
    assert_eq!(
        Value::Object(groups[0].attributes.clone()),
        json!({"id": "g-1", "name": "Ops", "mail": "ops@example.com"})
    );
    assert_eq!(groups[1].display_name, "SRE");
    assert!(groups[1].members.is_empty());
    assert!(groups[2].members.is_empty());
    assert!(groups[2].description.is_none());
}

#[tokio::test]
async fn emails_as_strings_and_objects() {
    let text = r#"{"users": [
  {"id": "u-1", "userName": "a", "emails": ["a@example.com", "a@home.example"]},
  {"id": "u-2", "userName": "b", "emails": [{"value": "b@home.example", "type": "home"}, {"value": "b@example.com", "type": "work", "primary": true}]},
  {"id": "u-3", "userName": "c", "email": "c@example.com"},
  {"id": "u-4", "userName": "d", "email": "D@example.com", "emails": [{"value": "d@home.example", "primary": true}, {"value": "d@example.com"}]},
  {"id": "u-5", "userName": "e", "email": "e@example.com", "emails": ["e@home.example"]},
  {"id": "u-6", "userName": "f"}
]}"#;
    let (result, sink) = read_text(text, FileFormat::Json).await;
    assert_eq!(result.expect("read"), complete());
    let users = sink.users();
    let email = |value: &str, kind: Option<&str>, primary: bool| Email {
        value: value.into(),
        kind: kind.map(str::to_owned),
        primary,
    };
    assert_eq!(
        users[0].emails,
        [
            email("a@example.com", None, false),
            email("a@home.example", None, false)
        ]
    );
    assert_eq!(users[0].primary_email(), Some("a@example.com"));
    assert_eq!(
        users[1].emails,
        [
            email("b@home.example", Some("home"), false),
            email("b@example.com", Some("work"), true)
        ]
    );
    assert_eq!(users[1].primary_email(), Some("b@example.com"));
    assert_eq!(users[2].emails, [email("c@example.com", None, true)]);
    // `email` names the primary address among `emails`...
    assert_eq!(
        users[3].emails,
        [
            email("d@home.example", None, false),
            email("d@example.com", None, true)
        ]
    );
    // ...or is put first when it is not listed.
    assert_eq!(
        users[4].emails,
        [
            email("e@example.com", None, true),
            email("e@home.example", None, false)
        ]
    );
    assert!(users[5].emails.is_empty());
    assert_eq!(users[1].attributes["emails"][0]["type"], json!("home"));
}

#[tokio::test]
async fn user_attributes_are_the_whole_record() {
    let record = json!({
        "id": "u-1", "userName": "a@example.com", "active": false,
        "displayName": "", "custom": {"nested": [1, 2.5, null]}, "costCenter": 4711
    });
    let (result, sink) = read_text(
        &json!({"users": [record.clone()]}).to_string(),
        FileFormat::Json,
    )
    .await;
    assert_eq!(result.expect("read"), complete());
    let users = sink.users();
    assert!(!users[0].active);
    assert_eq!(users[0].display_name, None, "empty strings are absent");
    assert_eq!(Value::Object(users[0].attributes.clone()), record);
}

#[tokio::test]
async fn empty_and_partial_documents() {
    for text in [
        "{}",
        r#"{"users": []}"#,
        r#"{"groups": [], "users": []}"#,
        "\u{feff}{}",
    ] {
        let (result, sink) = read_text(text, FileFormat::Json).await;
        assert_eq!(result.expect(text), complete());
        assert!(sink.batches.is_empty());
    }
}

#[tokio::test]
async fn top_level_errors() {
    let (line, _, message) = malformed("{\"users\": [],\n \"roles\": []}", FileFormat::Json).await;
    assert_eq!(line, 2);
    assert_eq!(
        message,
        "unknown top-level key `roles` (expected `users` or `groups`)"
    );

    let (_, _, message) = malformed(r#"{"users": [], "users": []}"#, FileFormat::Json).await;
    assert_eq!(message, "duplicate top-level key `users`");

    let (_, _, message) = malformed("[]", FileFormat::Json).await;
    assert!(
        message.contains("expected an object with `users` and `groups`"),
        "{message}"
    );

    let (_, _, message) = malformed(r#"{"users": {}}"#, FileFormat::Json).await;
    assert!(message.contains("expected an array of users"), "{message}");

    let (line, _, message) = malformed("{}\n{}", FileFormat::Json).await;
    assert_eq!(line, 2);
    assert!(message.contains("trailing characters"), "{message}");

    let (_, _, message) = malformed("", FileFormat::Json).await;
    assert!(message.contains("EOF"), "{message}");
}

#[tokio::test]
async fn csv_extra_columns_become_attributes() {
    let text = "ID,UserName,Given_Name,cost center,Email,Active,Shoe Size\n\
                    u-1, alice@example.com ,Alice,4711,alice@example.com,No,\n";
    let (result, sink) = read_text(text, FileFormat::Csv).await;
    assert_eq!(result.expect("read"), complete());
    let users = sink.users();
    assert_eq!(users.len(), 1);
    let user = &users[0];
    assert_eq!(user.external_id, "u-1");
    assert_eq!(user.user_name, "alice@example.com", "cells are trimmed");
    assert_eq!(user.given_name.as_deref(), Some("Alice"));
    assert_eq!(user.family_name, None);
    assert!(!user.active);
    assert_eq!(user.primary_email(), Some("alice@example.com"));
    assert_eq!(
        Value::Object(user.attributes.clone()),
        json!({
            "ID": "u-1", "UserName": "alice@example.com", "Given_Name": "Alice",
            "cost center": "4711", "Email": "alice@example.com", "Active": "No"
        })
    );
}

#[tokio::test]
async fn csv_accepts_user_name_spellings_and_a_bom() {
    for header in ["user_name", "USERNAME", "userName"] {
        let text = format!("\u{feff}id,{header}\nu-1,a@example.com\n");
        let (result, sink) = read_text(&text, FileFormat::Csv).await;
        assert_eq!(result.expect(header), complete());
        assert_eq!(sink.users()[0].user_name, "a@example.com");
        assert!(sink.users()[0].attributes.contains_key("id"), "{header}");
    }
}

#[tokio::test]
async fn csv_bad_active_value_gives_its_line() {
    let text = "id,userName,active\nu-1,a,true\n\"u-2\",\"b\nstill b\",yes\nu-3,c,maybe\n";
    let (line, _, message) = malformed(text, FileFormat::Csv).await;
    assert_eq!(line, 5, "the quoted newline counts");
    assert_eq!(
        message,
        r#"id "u-3": invalid active value "maybe" (expected true/false, 1/0 or yes/no)"#
    );
}

#[tokio::test]
async fn csv_missing_column() {
    let (line, column, message) = malformed("id,email\nu-1,a@example.com\n", FileFormat::Csv).await;
    assert_eq!((line, column), (1, 1));
    assert!(
        message.starts_with("missing required column `userName`"),
        "{message}"
    );

    let (line, _, message) = malformed("userName\na\n", FileFormat::Csv).await;
    assert_eq!(line, 1);
    assert_eq!(message, "missing required column `id`");

    let (_, _, message) = malformed("", FileFormat::Csv).await;
    assert_eq!(message, "missing required column `id`");
}

#[tokio::test]
async fn csv_row_errors() {
    let (line, _, message) = malformed("id,userName,dept\nu-1,a,x\nu-2,b\n", FileFormat::Csv).await;
    assert_eq!(line, 3);
    assert_eq!(message, "row has 2 fields but the header has 3");

    let (line, _, message) = malformed("id,userName\nu-1,a\n,b\n", FileFormat::Csv).await;
    assert_eq!(line, 3);
    assert_eq!(message, "empty id");

    let (line, _, message) = malformed("id,userName\nu-1,  \n", FileFormat::Csv).await;
    assert_eq!(line, 2);
    assert_eq!(message, r#"id "u-1": empty userName"#);

    let (_, _, message) = malformed("id,userName,username\nu-1,a,a\n", FileFormat::Csv).await;
    assert_eq!(
        message,
        "columns `userName` and `username` both give userName"
    );

    let (_, _, message) = malformed("id,userName,x,x\nu-1,a,1,2\n", FileFormat::Csv).await;
    assert_eq!(message, "duplicate column `x`");
}

#[tokio::test]
async fn csv_invalid_utf8_gives_its_line() {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(b"id,userName\nu-1,a\nu-2,\xff\xfe\n")
        .expect("write");
    let (result, _) = read_path(file.path(), FileFormat::Csv).await;
    match result {
        Err(ConnectorError::Malformed { line, message, .. }) => {
            assert_eq!(line, 3);
            assert_eq!(message, "field 2 is not valid UTF-8");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

/// Refuses every batch and counts the attempts.
#[derive(Default)]
struct RefusingSink {
    offered: usize,
}

#[async_trait]
impl BatchSink for RefusingSink {
    async fn accept(&mut self, _batch: SourceBatch) -> Result<(), SinkError> {
        self.offered += 1;
        Err(SinkError("duplicate external id u-7".into()))
    }
}

#[tokio::test]
async fn a_sink_error_stops_the_read() {
    // 25,000 users: far more batches than the channel holds, and a syntax error at
    // the very end that a parser which kept going would report instead.
    let mut text = many_users(25_000);
    text.push_str(" trailing garbage");
    let file = temp_file(&text);
    let connector = FileConnector::new(file.path().to_path_buf(), FileFormat::Json);
    let mut sink = RefusingSink::default();
    let result = connector.read(None, &mut sink).await;
    match result {
        Err(ConnectorError::Sink(SinkError(message))) => {
            assert_eq!(message, "duplicate external id u-7");
        }
        other => panic!("expected the sink's error, got {other:?}"),
    }
    assert_eq!(sink.offered, 1);
}

/// The parser really stops: it reads from a pipe whose writer never finishes the
/// document, so a parser that kept going after the sink's error would wait for more
/// input and the read would never return.
#[cfg(unix)]
#[tokio::test]
async fn a_sink_error_stops_the_parser() {
    use std::sync::mpsc as std_mpsc;
    use std::time::Duration;

    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("snapshot.json");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success());

    let (done_tx, done_rx) = std_mpsc::channel::<()>();
    let writer_path = fifo.clone();
    let writer = std::thread::spawn(move || {
        let Ok(mut pipe) = std::fs::OpenOptions::new().write(true).open(&writer_path) else {
            return;
        };
        let mut text = String::from("{\"users\": [");
        for i in 0..5000 {
            text.push_str(&format!(
                "{{\"id\": \"u-{i}\", \"userName\": \"user{i}@example.com\"}},"
            ));
        }
        // The reader may stop and close its end before all of this is written.
        let _ = pipe.write_all(text.as_bytes());
        // Hold the pipe open, the document unfinished, until the test is done.
        let _ = done_rx.recv_timeout(Duration::from_secs(60));
    });

    let connector = FileConnector::new(fifo, FileFormat::Json);
    let mut sink = RefusingSink::default();
    let result =
        tokio::time::timeout(Duration::from_secs(20), connector.read(None, &mut sink)).await;
    let _ = done_tx.send(());
    writer.join().expect("writer thread");

    match result {
        Ok(Err(ConnectorError::Sink(_))) => {}
        Ok(other) => panic!("expected the sink's error, got {other:?}"),
        Err(_) => panic!("the parser kept reading after the sink failed"),
    }
    assert_eq!(sink.offered, 1);
}

#[tokio::test]
async fn a_missing_file_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nowhere.json");
    for format in [FileFormat::Json, FileFormat::Csv] {
        let (result, sink) = read_path(&path, format).await;
        match result {
            Err(err @ ConnectorError::Io { .. }) => {
                let ConnectorError::Io {
                    path: named,
                    source,
                } = &err
                else {
                    unreachable!()
                };
                assert_eq!(named, &path.display().to_string());
                assert_eq!(source.kind(), io::ErrorKind::NotFound);
                assert!(err.to_string().contains("nowhere.json"), "{err}");
            }
            other => panic!("expected Io, got {other:?}"),
        }
        assert!(sink.batches.is_empty());
    }
}

#[tokio::test]
async fn a_directory_is_an_io_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (result, _) = read_path(dir.path(), FileFormat::Json).await;
    assert!(
        matches!(result, Err(ConnectorError::Io { .. })),
        "{result:?}"
    );
}

#[test]
fn kind_is_file() {
    let connector = FileConnector::new(PathBuf::from("x.json"), FileFormat::Json);
    assert_eq!(connector.kind(), "file");
    assert_eq!(connector.path(), Path::new("x.json"));
    assert_eq!(connector.format(), FileFormat::Json);
}
