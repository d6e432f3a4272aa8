//! [`Batcher`]: records handed to the [`BatchSink`] in batches of a fixed size as they are
//! read, so a kind's read loop only says what it keeps.
//!
//! Every API kind sends users in batches of [`USER_BATCH_SIZE`] and groups (which carry
//! their member lists, so weigh more) in batches of [`GROUP_BATCH_SIZE`]; the sink sees a
//! batch as soon as it is full, and the rest at [`Batcher::finish`]. No empty batch is ever
//! sent.

use super::{BatchSink, SinkError, SourceBatch};
use crate::model::{SourceGroup, SourceUser};

/// Users per batch handed to the sink.
pub const USER_BATCH_SIZE: usize = 1000;

/// Groups per batch handed to the sink.
pub const GROUP_BATCH_SIZE: usize = 100;

/// Collects records and flushes them to a sink at a limit.
#[derive(Debug)]
pub struct Batcher<T> {
    buffer: Vec<T>,
    limit: usize,
    wrap: fn(Vec<T>) -> SourceBatch,
}

impl Batcher<SourceUser> {
    /// Users, [`USER_BATCH_SIZE`] to a batch.
    pub fn users() -> Batcher<SourceUser> {
        Batcher::new(USER_BATCH_SIZE, SourceBatch::Users)
    }
}

impl Batcher<SourceGroup> {
    /// Groups, [`GROUP_BATCH_SIZE`] to a batch.
    pub fn groups() -> Batcher<SourceGroup> {
        Batcher::new(GROUP_BATCH_SIZE, SourceBatch::Groups)
    }
}

impl<T> Batcher<T> {
    /// Batches of at most `limit` records (at least one), each made by `wrap`.
    pub fn new(limit: usize, wrap: fn(Vec<T>) -> SourceBatch) -> Batcher<T> {
        Batcher {
            buffer: Vec::new(),
            limit: limit.max(1),
            wrap,
        }
    }

    /// Adds `record`; hands the batch to `sink` when it is full.
    pub async fn push(&mut self, record: T, sink: &mut dyn BatchSink) -> Result<(), SinkError> {
        self.buffer.push(record);
        if self.buffer.len() >= self.limit {
            sink.accept((self.wrap)(std::mem::take(&mut self.buffer)))
                .await?;
        }
        Ok(())
    }

    /// Hands what is held (if anything) to `sink` now: before a batch of another kind
    /// that must come after these records (a removal of one of them).
    pub async fn flush(&mut self, sink: &mut dyn BatchSink) -> Result<(), SinkError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        sink.accept((self.wrap)(std::mem::take(&mut self.buffer)))
            .await
    }

    /// Hands what is left (if anything) to `sink`.
    pub async fn finish(mut self, sink: &mut dyn BatchSink) -> Result<(), SinkError> {
        self.flush(sink).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::testing::CollectingSink;

    fn removed(users: Vec<String>) -> SourceBatch {
        SourceBatch::Removed {
            users,
            groups: Vec::new(),
        }
    }

    #[tokio::test]
    async fn full_batches_as_they_fill_and_the_rest_at_the_end() {
        let mut sink = CollectingSink::default();
        let mut batcher = Batcher::new(2, removed);
        for id in 0..5 {
            batcher.push(format!("u{id}"), &mut sink).await.unwrap();
        }
        assert_eq!(sink.batches.len(), 2);
        batcher.finish(&mut sink).await.unwrap();
        let sizes: Vec<usize> = sink.batches.iter().map(SourceBatch::len).collect();
        assert_eq!(sizes, vec![2, 2, 1]);
    }

    #[tokio::test]
    async fn nothing_read_sends_nothing() {
        let mut sink = CollectingSink::default();
        Batcher::groups().finish(&mut sink).await.unwrap();
        assert!(sink.batches.is_empty());
    }
}
