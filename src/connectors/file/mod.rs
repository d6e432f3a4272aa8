//! The `file` connector: reads a directory snapshot from a JSON file (users and groups) or
//! a CSV file (users only). See `docs/file-formats.md` for both formats.
//!
//! Every read is a complete, full snapshot: the file is the whole source. The file is
//! never held in memory whole. It is parsed on a blocking thread from a buffered reader,
//! records are converted as they are parsed, and batches of at most [`BATCH_SIZE`]
//! records travel through a small bounded channel to the sink on the async side. For
//! JSON this takes a streaming serde visitor over the top-level object and its arrays
//! rather than one big `serde_json::Value`; group member lists are streamed too, as they
//! can be huge. When the sink refuses a batch the channel closes and the parser stops at
//! its next batch.
//!
//! Problems with the file's content are reported as [`ConnectorError::Malformed`] with a
//! line and column: serde_json's for syntax errors, the start of the offending record (or
//! group member) for semantic ones, whose message also names the record, as in
//! `users[3] (id "u-4"): missing userName`. Duplicate ids and dangling member references
//! are left to the engine, which sees every batch.

mod client;
mod csv_format;
mod json_format;
mod records;
mod settings;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::{BatchSink, ConnectorError, PullConnector, ReadMode, ReadSummary, SourceBatch};
use client::{Outbox, Stop, parse_file};
pub use settings::{FileFormat, FileSettings, RawFileSettings};

/// The most records one batch carries.
pub const BATCH_SIZE: usize = 1000;

/// Batches parsed ahead of the sink. Small: the point is to bound memory.
const CHANNEL_CAPACITY: usize = 2;

/// Read buffer of the file.
const READ_BUFFER: usize = 64 * 1024;

/// The UTF-8 byte order mark some editors (and spreadsheet exports) put first.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads users and groups from a local JSON or CSV file.
#[derive(Debug, Clone)]
pub struct FileConnector {
    path: PathBuf,
    format: FileFormat,
}

impl FileConnector {
    /// The connector for checked settings (it cannot fail: the file is opened by `read`).
    pub fn connect(settings: &FileSettings) -> Result<FileConnector, ConnectorError> {
        Ok(FileConnector::new(settings.path.clone(), settings.format))
    }

    /// A connector reading `path` in `format`.
    pub fn new(path: PathBuf, format: FileFormat) -> Self {
        FileConnector { path, format }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn format(&self) -> FileFormat {
        self.format
    }
}

#[async_trait]
impl PullConnector for FileConnector {
    fn kind(&self) -> &'static str {
        "file"
    }

    async fn diagnose(&self) -> Vec<super::Diagnosis> {
        match File::open(&self.path) {
            Ok(_) => vec![super::Diagnosis::ok(
                "open the file",
                format!("{} is readable", self.path.display()),
            )],
            Err(e) => vec![super::Diagnosis::failed(
                "open the file",
                format!("cannot read {}: {e}", self.path.display()),
            )],
        }
    }

    /// Reads the whole file. The checkpoint is ignored: a file has no deltas.
    async fn read(
        &self,
        _checkpoint: Option<&str>,
        sink: &mut dyn BatchSink,
    ) -> Result<ReadSummary, ConnectorError> {
        let (tx, mut rx) = mpsc::channel(CHANNEL_CAPACITY);
        let path = self.path.clone();
        let format = self.format;
        let parser = tokio::task::spawn_blocking(move || parse_file(&path, format, tx));

        while let Some(batch) = rx.recv().await {
            if let Err(err) = sink.accept(batch).await {
                // Closing the channel makes the parser's next send fail, which stops it.
                drop(rx);
                if let Err(join) = parser.await
                    && join.is_panic()
                {
                    std::panic::resume_unwind(join.into_panic());
                }
                return Err(err.into());
            }
        }

        match parser.await {
            Ok(Ok(())) => Ok(ReadSummary::complete(ReadMode::Full, None)),
            Ok(Err(Stop::Failed(err))) => Err(err),
            // Only happens when the channel was closed, which this side did not do.
            Ok(Err(Stop::Cancelled)) => Err(ConnectorError::Io {
                path: self.path.display().to_string(),
                source: io::Error::new(io::ErrorKind::Interrupted, "the read was cancelled"),
            }),
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(join) => Err(ConnectorError::Io {
                path: self.path.display().to_string(),
                source: io::Error::other(join.to_string()),
            }),
        }
    }
}
