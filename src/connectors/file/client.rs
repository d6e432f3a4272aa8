//! Reading the snapshot file, this kind's client: on a blocking thread, from a buffered
//! reader, past a byte order mark, into batches sent over a bounded channel.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use tokio::sync::mpsc;

use super::csv_format::parse_csv;
use super::json_format::parse_json;
use super::{FileFormat, READ_BUFFER, UTF8_BOM};
use crate::connectors::{ConnectorError, SourceBatch};

/// Why the parser stopped early.
#[derive(Debug)]
pub(super) enum Stop {
    /// The file could not be read or parsed.
    Failed(ConnectorError),
    /// The async side closed the channel (the sink failed or the read was dropped).
    Cancelled,
}

/// Where the parser sends its batches and how it names the file in errors.
pub(super) struct Outbox {
    tx: mpsc::Sender<SourceBatch>,
    path: String,
}

impl Outbox {
    pub(super) fn send(&self, batch: SourceBatch) -> Result<(), Stop> {
        self.tx.blocking_send(batch).map_err(|_| Stop::Cancelled)
    }

    pub(super) fn malformed(&self, line: u64, column: u64, message: impl Into<String>) -> Stop {
        Stop::Failed(ConnectorError::Malformed {
            path: self.path.clone(),
            line,
            // Columns count from 1, as docs/file-formats.md says; serde_json reports 0 for
            // the end of the input after a newline.
            column: column.max(1),
            message: message.into(),
        })
    }

    pub(super) fn io(&self, source: io::Error) -> Stop {
        Stop::Failed(ConnectorError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

pub(super) fn parse_file(
    path: &Path,
    format: FileFormat,
    tx: mpsc::Sender<SourceBatch>,
) -> Result<(), Stop> {
    let out = Outbox {
        tx,
        path: path.display().to_string(),
    };
    let file = File::open(path).map_err(|source| out.io(source))?;
    let mut reader = BufReader::with_capacity(READ_BUFFER, file);
    skip_bom(&mut reader).map_err(|source| out.io(source))?;
    match format {
        FileFormat::Json => parse_json(reader, &out),
        FileFormat::Csv => parse_csv(reader, &out),
    }
}

/// Skips a leading UTF-8 byte order mark.
fn skip_bom<R: BufRead>(reader: &mut R) -> io::Result<()> {
    let head = reader.fill_buf()?;
    if head.starts_with(UTF8_BOM) {
        reader.consume(UTF8_BOM.len());
    }
    Ok(())
}
