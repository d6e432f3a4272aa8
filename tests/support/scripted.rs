//! A pull connector that replays scripted pages, optionally failing after the last one
//! (like a source whose final page errors), and helpers to build records.

use std::sync::Mutex;

use async_trait::async_trait;
use idsync::connectors::{
    BatchSink, ConnectorError, PullConnector, ReadMode, ReadSummary, SourceBatch,
};
use idsync::model::{Email, MemberRef, SourceGroup, SourceUser};
use serde_json::Map;

pub struct Scripted {
    pub batches: Vec<SourceBatch>,
    pub mode: ReadMode,
    pub fail_after: Option<usize>,
    pub next_checkpoint: Option<String>,
    /// The checkpoint each read was started from.
    pub seen_checkpoints: Mutex<Vec<Option<String>>>,
}

impl Scripted {
    pub fn full(users: Vec<SourceUser>, groups: Vec<SourceGroup>) -> Scripted {
        let mut batches = Vec::new();
        for chunk in users.chunks(2) {
            batches.push(SourceBatch::Users(chunk.to_vec()));
        }
        for chunk in groups.chunks(2) {
            batches.push(SourceBatch::Groups(chunk.to_vec()));
        }
        Scripted {
            batches,
            mode: ReadMode::Full,
            fail_after: None,
            next_checkpoint: None,
            seen_checkpoints: Mutex::new(Vec::new()),
        }
    }

    pub fn delta(batches: Vec<SourceBatch>, next_checkpoint: &str) -> Scripted {
        Scripted {
            batches,
            mode: ReadMode::Delta,
            fail_after: None,
            next_checkpoint: Some(next_checkpoint.to_string()),
            seen_checkpoints: Mutex::new(Vec::new()),
        }
    }

    /// Every page is delivered, then the read fails (a broken last page).
    pub fn failing_on_last_page(mut self) -> Scripted {
        self.fail_after = Some(self.batches.len());
        self
    }
}

#[async_trait]
impl PullConnector for Scripted {
    fn kind(&self) -> &'static str {
        "scripted"
    }

    async fn read(
        &self,
        checkpoint: Option<&str>,
        sink: &mut dyn BatchSink,
    ) -> Result<ReadSummary, ConnectorError> {
        self.seen_checkpoints
            .lock()
            .expect("lock")
            .push(checkpoint.map(str::to_string));
        for (i, batch) in self.batches.iter().enumerate() {
            if self.fail_after == Some(i + 1) && i + 1 == self.batches.len() {
                sink.accept(batch.clone()).await?;
                return Err(ConnectorError::Malformed {
                    path: "scripted".into(),
                    line: 0,
                    column: 0,
                    message: "page 3 of 3 answered 503".into(),
                });
            }
            sink.accept(batch.clone()).await?;
        }
        Ok(ReadSummary {
            mode: self.mode,
            complete: true,
            next_checkpoint: self.next_checkpoint.clone(),
        })
    }
}

pub fn user(id: &str, name: &str) -> SourceUser {
    SourceUser {
        external_id: id.into(),
        user_name: name.into(),
        given_name: Some(format!("Given {id}")),
        family_name: Some(format!("Family {id}")),
        display_name: None,
        emails: vec![Email {
            value: name.into(),
            kind: Some("work".into()),
            primary: true,
        }],
        active: true,
        attributes: Map::new(),
    }
}

pub fn users(n: usize) -> Vec<SourceUser> {
    (0..n)
        .map(|i| user(&format!("u{i}"), &format!("user{i}@example.com")))
        .collect()
}

pub fn group(id: &str, name: &str, members: Vec<MemberRef>) -> SourceGroup {
    SourceGroup {
        external_id: id.into(),
        display_name: name.into(),
        description: None,
        members,
        attributes: Map::new(),
    }
}
