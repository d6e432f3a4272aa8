//! Where a run sets records aside as their serialised bytes: in memory up to a limit, then
//! in a temporary file, so that the memory of a run stops growing with the size of the
//! directory (a million users are about 400 MB of JSON). The read buffer keeps what a
//! connector read here until the merge (`store::mirror`); the projection keeps the target
//! users it projected here until the plan and the apply (`pipeline::DesiredUsers`).
//!
//! The file is created unnamed (`O_TMPFILE` where the system has it; otherwise it is
//! unlinked at once) in the system's temporary directory (`TMPDIR`), readable only by
//! idsync, and is gone when the run ends, whichever way it ends. Where `/tmp` is a memory
//! file system, point `TMPDIR` at a disk.
//!
//! Reads and writes are plain blocking file calls: they land in the page cache, in
//! buffered chunks, and cost less than handing each to a thread pool would.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

/// Bytes a spool keeps in memory before it moves them to a file.
pub const MEMORY_LIMIT: usize = 32 * 1024 * 1024;

/// The directory the file goes to, for messages.
pub fn directory() -> String {
    std::env::temp_dir().display().to_string()
}

/// Where one record's bytes are in the spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spot {
    offset: u64,
    len: u32,
}

/// An append-only store of records' bytes.
pub struct Spool {
    memory: Vec<u8>,
    file: Option<BufWriter<File>>,
    /// Bytes written so far: the offset of the next record.
    written: u64,
    limit: usize,
}

impl Spool {
    /// A spool that moves to a file once it holds more than `limit` bytes.
    pub fn new(limit: usize) -> Spool {
        Spool {
            memory: Vec::new(),
            file: None,
            written: 0,
            limit,
        }
    }

    /// Whether the records went to a file.
    pub fn spilled(&self) -> bool {
        self.file.is_some()
    }

    /// Appends `bytes` and says where they are.
    pub fn push(&mut self, bytes: &[u8]) -> io::Result<Spot> {
        let len = u32::try_from(bytes.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a record of {} bytes is over 4 GiB", bytes.len()),
            )
        })?;
        if self.file.is_none() && self.memory.len() + bytes.len() > self.limit {
            let file = tempfile::tempfile()?;
            // An unnamed file cannot be opened by path, but `O_TMPFILE` creates it with
            // the umask's mode: owner-only as well, should it ever be linked or reached
            // through /proc.
            file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
            let mut file = BufWriter::with_capacity(1 << 16, file);
            file.write_all(&self.memory)?;
            self.memory = Vec::new();
            self.file = Some(file);
        }
        match &mut self.file {
            Some(file) => file.write_all(bytes)?,
            None => self.memory.extend_from_slice(bytes),
        }
        let spot = Spot {
            offset: self.written,
            len,
        };
        self.written += u64::from(len);
        Ok(spot)
    }

    /// The spool, for reading back.
    pub fn reader(self) -> io::Result<SpoolReader> {
        let file = match self.file {
            Some(file) => {
                let mut file = file.into_inner().map_err(|e| e.into_error())?;
                file.seek(SeekFrom::Start(0))?;
                Some((BufReader::with_capacity(1 << 16, file), 0))
            }
            None => None,
        };
        Ok(SpoolReader {
            memory: self.memory,
            file,
            scratch: Vec::new(),
        })
    }
}

/// Reads records back from a [`Spool`], in any order (cheapest in the order written:
/// the merge skips unchanged records forward, within the read-ahead).
pub struct SpoolReader {
    memory: Vec<u8>,
    /// The file and the offset its reader stands at.
    file: Option<(BufReader<File>, u64)>,
    scratch: Vec<u8>,
}

impl SpoolReader {
    /// The bytes at `spot`.
    pub fn get(&mut self, spot: Spot) -> io::Result<&[u8]> {
        let len = spot.len as usize;
        let Some((file, at)) = &mut self.file else {
            let start = usize::try_from(spot.offset).map_err(io::Error::other)?;
            let end = start.checked_add(len);
            return end
                .and_then(|end| self.memory.get(start..end))
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "a record past the spool's end",
                    )
                });
        };
        if *at != spot.offset {
            // Forward within the read-ahead (records skipped because they did not change)
            // keeps it; a seek elsewhere drops it.
            match spot.offset.checked_sub(*at).map(i64::try_from) {
                Some(Ok(gap)) => file.seek_relative(gap)?,
                _ => {
                    file.seek(SeekFrom::Start(spot.offset))?;
                }
            }
        }
        self.scratch.resize(len, 0);
        file.read_exact(&mut self.scratch)?;
        *at = spot.offset + spot.len as u64;
        Ok(&self.scratch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> Vec<Vec<u8>> {
        (0..50)
            .map(|i| format!("record {i} {}", "x".repeat(i)).into_bytes())
            .collect()
    }

    fn round_trip(limit: usize) -> bool {
        let mut spool = Spool::new(limit);
        let spots: Vec<Spot> = records().iter().map(|r| spool.push(r).unwrap()).collect();
        let spilled = spool.spilled();
        let mut reader = spool.reader().unwrap();
        // In order, then out of order, then in order again.
        for (spot, record) in spots.iter().zip(records()) {
            assert_eq!(reader.get(*spot).unwrap(), record.as_slice());
        }
        for (spot, record) in spots.iter().zip(records()).rev() {
            assert_eq!(reader.get(*spot).unwrap(), record.as_slice());
        }
        for (spot, record) in spots.iter().zip(records()).skip(3).step_by(7) {
            assert_eq!(reader.get(*spot).unwrap(), record.as_slice());
        }
        spilled
    }

    #[test]
    fn records_read_back_as_written_from_memory() {
        assert!(!round_trip(usize::MAX));
    }

    #[test]
    fn records_read_back_as_written_from_a_file() {
        assert!(round_trip(0));
    }

    #[test]
    fn records_held_in_memory_move_to_the_file_with_the_rest() {
        // Past the limit after a few records: the first ones were in memory.
        assert!(round_trip(100));
    }

    #[test]
    fn the_file_has_no_name_and_only_its_owner_could_read_it() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let mut spool = Spool::new(0);
        spool.push(b"a user's record").unwrap();
        let file = spool.file.as_ref().unwrap().get_ref().metadata().unwrap();
        // No directory entry: no other process can open it, and a crash leaves nothing.
        assert_eq!(file.nlink(), 0);
        assert_eq!(file.permissions().mode() & 0o077, 0);
    }

    #[test]
    fn a_spot_past_the_end_is_an_error_not_a_panic() {
        let mut spool = Spool::new(usize::MAX);
        spool.push(b"abc").unwrap();
        let mut reader = spool.reader().unwrap();
        let err = reader.get(Spot { offset: 2, len: 5 }).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
