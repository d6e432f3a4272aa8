//! The read phase: the connector reads its source from the stored checkpoint into a
//! [`ReadBuffer`], with no transaction open (a cloud read can take minutes). Only a
//! complete read goes on to the merge.

use tracing::info;

use crate::connectors::{BatchSink, ConnectorError, PullConnector, SinkError, SourceBatch};
use crate::connectors::{ReadMode, ReadSummary};
use crate::db::{Db, DbError};
use crate::store::mirror::{self, ReadBuffer};

use super::{LOG, Progress, SyncError};

/// A finished, complete read and the checkpoint it continued from.
pub(super) struct Read {
    /// The checkpoint handed to the connector: the merge refuses the read when the
    /// mirror no longer stores it.
    pub from: Option<String>,
    pub buffer: ReadBuffer,
    pub summary: ReadSummary,
}

impl Read {
    /// A complete full read that found no record at all.
    pub fn empty_full(&self) -> bool {
        self.summary.mode == ReadMode::Full
            && self.buffer.user_count() == 0
            && self.buffer.group_count() == 0
    }
}

/// The checkpoint the mirror stores now, read outside any transaction.
pub(super) async fn stored_checkpoint(
    db: &Db,
    connector_id: &str,
) -> Result<Option<String>, DbError> {
    let mut conn = db.pool().acquire().await.map_err(|source| DbError::Query {
        context: "reading the mirror state",
        source,
    })?;
    Ok(mirror::load_state(&mut conn, connector_id)
        .await?
        .checkpoint)
}

/// Reads the source from `checkpoint`; an incomplete read is refused whole.
pub(super) async fn read(
    connector_id: &str,
    connector: &dyn PullConnector,
    checkpoint: Option<String>,
    progress: &dyn Progress,
) -> Result<Read, SyncError> {
    let failed = |source: ConnectorError, records_read: u64| SyncError::Read {
        connector: connector_id.to_string(),
        records_read,
        source,
    };
    let mut buffer = ReadBuffer::new();
    let summary = {
        let mut counting = CountingSink {
            inner: &mut buffer,
            progress,
        };
        connector.read(checkpoint.as_deref(), &mut counting).await
    };
    let summary = summary.map_err(|e| failed(e, buffer.records_read))?;
    if !summary.complete {
        return Err(SyncError::Incomplete(connector_id.to_string()));
    }
    buffer
        .finish(summary.mode)
        .map_err(|e| failed(ConnectorError::Sink(e), 0))?;
    info!(
        target: LOG,
        records = buffer.records_read,
        mode = summary.mode.as_str(),
        "source read"
    );
    Ok(Read {
        from: checkpoint,
        buffer,
        summary,
    })
}

/// Forwards batches to the buffer and reports the running count.
struct CountingSink<'a> {
    inner: &'a mut ReadBuffer,
    progress: &'a dyn Progress,
}

#[async_trait::async_trait]
impl BatchSink for CountingSink<'_> {
    fn allow_repeats(&mut self) {
        self.inner.allow_repeats();
    }

    async fn accept(&mut self, batch: SourceBatch) -> Result<(), SinkError> {
        self.inner.accept(batch).await?;
        self.progress.records_read(self.inner.records_read);
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::sync::Mutex;

    use super::*;

    pub(crate) use crate::store::mirror::test_user as user;

    /// A source in memory: what it sends, how it ends, and the checkpoint it was given.
    pub struct Memory {
        pub batches: Vec<SourceBatch>,
        pub summary: ReadSummary,
        pub given: Mutex<Option<Option<String>>>,
    }

    impl Memory {
        pub fn full(users: &[&str]) -> Memory {
            Memory {
                batches: vec![SourceBatch::Users(users.iter().map(|u| user(u)).collect())],
                summary: ReadSummary {
                    mode: ReadMode::Full,
                    complete: true,
                    next_checkpoint: Some("after".into()),
                },
                given: Mutex::new(None),
            }
        }
    }

    #[async_trait::async_trait]
    impl PullConnector for Memory {
        fn kind(&self) -> &'static str {
            "memory"
        }
        async fn read(
            &self,
            checkpoint: Option<&str>,
            sink: &mut dyn BatchSink,
        ) -> Result<ReadSummary, ConnectorError> {
            *self.given.lock().unwrap() = Some(checkpoint.map(str::to_string));
            for batch in &self.batches {
                sink.accept(batch.clone()).await?;
            }
            Ok(self.summary.clone())
        }
    }

    #[derive(Default)]
    struct Counted(Mutex<Vec<u64>>);
    impl Progress for Counted {
        fn records_read(&self, count: u64) {
            self.0.lock().unwrap().push(count);
        }
    }

    #[tokio::test]
    async fn a_read_continues_from_the_checkpoint_and_counts_what_it_buffers() {
        let source = Memory::full(&["a", "b"]);
        let counted = Counted::default();
        let read = read("hr", &source, Some("before".into()), &counted)
            .await
            .unwrap();
        assert_eq!(
            *source.given.lock().unwrap(),
            Some(Some("before".to_string()))
        );
        assert_eq!(read.from.as_deref(), Some("before"));
        assert_eq!(read.buffer.user_count(), 2);
        assert_eq!(*counted.0.lock().unwrap(), vec![2]);
        assert!(!read.empty_full());
    }

    #[tokio::test]
    async fn an_incomplete_read_goes_no_further() {
        let mut source = Memory::full(&["a"]);
        source.summary.complete = false;
        let err = read("hr", &source, None, &super::super::NoProgress)
            .await
            .err()
            .unwrap();
        assert!(matches!(err, SyncError::Incomplete(id) if id == "hr"));
    }

    #[tokio::test]
    async fn a_full_read_of_nothing_is_flagged_for_the_limits() {
        let source = Memory::full(&[]);
        let read = read("hr", &source, None, &super::super::NoProgress)
            .await
            .unwrap();
        assert!(read.empty_full());
    }
}
