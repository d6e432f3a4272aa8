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

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use async_trait::async_trait;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use super::{BatchSink, ConnectorError, PullConnector, ReadMode, ReadSummary, SourceBatch};
use crate::config::FileFormat;
use crate::model::{Email, MemberKind, MemberRef, SourceGroup, SourceUser};

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
            Ok(Ok(())) => Ok(ReadSummary {
                mode: ReadMode::Full,
                complete: true,
                next_checkpoint: None,
            }),
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

// ---------------------------------------------------------------------------------------
// Plumbing shared by both formats (runs on the blocking thread).
// ---------------------------------------------------------------------------------------

/// Why the parser stopped early.
#[derive(Debug)]
enum Stop {
    /// The file could not be read or parsed.
    Failed(ConnectorError),
    /// The async side closed the channel (the sink failed or the read was dropped).
    Cancelled,
}

/// Where the parser sends its batches and how it names the file in errors.
struct Outbox {
    tx: mpsc::Sender<SourceBatch>,
    path: String,
}

impl Outbox {
    fn send(&self, batch: SourceBatch) -> Result<(), Stop> {
        self.tx.blocking_send(batch).map_err(|_| Stop::Cancelled)
    }

    fn malformed(&self, line: u64, column: u64, message: impl Into<String>) -> Stop {
        Stop::Failed(ConnectorError::Malformed {
            path: self.path.clone(),
            line,
            column,
            message: message.into(),
        })
    }

    fn io(&self, source: io::Error) -> Stop {
        Stop::Failed(ConnectorError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

fn parse_file(path: &Path, format: FileFormat, tx: mpsc::Sender<SourceBatch>) -> Result<(), Stop> {
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

/// The JSON type of a value, for messages.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

// ---------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------

/// A 1-based line and the 1-based column (in bytes) of the last byte read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    line: u64,
    column: u64,
}

impl Pos {
    const START: Pos = Pos { line: 1, column: 0 };
}

/// Hands the deserializer one byte at a time while tracking the position of the last
/// byte handed out. serde_json reads byte by byte and peeks one byte ahead, so when a
/// seed for an array element or object value is called, the last byte read is the first
/// byte of that value: its `{` for a record.
struct PosReader<R> {
    inner: R,
    pos: Rc<Cell<Pos>>,
}

impl<R: BufRead> Read for PosReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(slot) = buf.first_mut() else {
            return Ok(0);
        };
        let Some(&byte) = self.inner.fill_buf()?.first() else {
            return Ok(0);
        };
        self.inner.consume(1);
        *slot = byte;
        let mut pos = self.pos.get();
        if byte == b'\n' {
            pos.line += 1;
            pos.column = 0;
        } else {
            pos.column += 1;
        }
        self.pos.set(pos);
        Ok(1)
    }
}

/// The record being read, to name it in errors.
struct Element {
    key: &'static str,
    index: usize,
    id: Option<String>,
}

impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.key, self.index)?;
        match &self.id {
            Some(id) => write!(f, " (id {id:?})"),
            None => Ok(()),
        }
    }
}

/// State shared by the visitors of one JSON parse.
struct JsonCtx<'a> {
    out: &'a Outbox,
    pos: Rc<Cell<Pos>>,
    /// The reason a visitor aborted, which the serde error it returned cannot carry.
    failure: RefCell<Option<Stop>>,
    /// The record being read, if any.
    element: RefCell<Option<Element>>,
}

impl JsonCtx<'_> {
    /// Records why the parse stops and returns the error that unwinds the deserializer.
    fn abort<E: de::Error>(&self, stop: Stop) -> E {
        let mut failure = self.failure.borrow_mut();
        if failure.is_none() {
            *failure = Some(stop);
        }
        E::custom("aborted")
    }

    /// Aborts with a semantic error about the current record, at `at`.
    fn invalid<E: de::Error>(&self, at: Pos, message: &str) -> E {
        let message = match &*self.element.borrow() {
            Some(element) => format!("{element}: {message}"),
            None => message.to_owned(),
        };
        self.abort(self.out.malformed(at.line, at.column, message))
    }

    fn send<E: de::Error>(&self, batch: SourceBatch) -> Result<(), E> {
        self.out.send(batch).map_err(|stop| self.abort(stop))
    }

    fn enter(&self, key: &'static str, index: usize) {
        *self.element.borrow_mut() = Some(Element {
            key,
            index,
            id: None,
        });
    }

    fn leave(&self) {
        *self.element.borrow_mut() = None;
    }

    fn saw_id(&self, id: &str) {
        if let Some(element) = self.element.borrow_mut().as_mut()
            && element.id.is_none()
            && !id.trim().is_empty()
        {
            element.id = Some(id.to_owned());
        }
    }

    /// Turns an error serde_json raised itself into the connector's error.
    fn convert(&self, err: serde_json::Error) -> Stop {
        if err.is_io() {
            return self.out.io(io::Error::from(err));
        }
        let mut message = err.to_string();
        if err.line() > 0 {
            let suffix = format!(" at line {} column {}", err.line(), err.column());
            if message.ends_with(&suffix) {
                message.truncate(message.len() - suffix.len());
            }
        }
        if let Some(element) = &*self.element.borrow() {
            message = format!("{element}: {message}");
        }
        self.out
            .malformed(err.line() as u64, err.column() as u64, message)
    }
}

fn parse_json<R: BufRead>(reader: R, out: &Outbox) -> Result<(), Stop> {
    let pos = Rc::new(Cell::new(Pos::START));
    let ctx = JsonCtx {
        out,
        pos: Rc::clone(&pos),
        failure: RefCell::new(None),
        element: RefCell::new(None),
    };
    let mut de = serde_json::Deserializer::from_reader(PosReader { inner: reader, pos });
    let result = TopSeed { ctx: &ctx }
        .deserialize(&mut de)
        .and_then(|()| de.end());
    match result {
        Ok(()) => Ok(()),
        Err(err) => Err(ctx.failure.take().unwrap_or_else(|| ctx.convert(err))),
    }
}

/// The top-level object: `users` and `groups`, both optional, in any order.
struct TopSeed<'c, 'a> {
    ctx: &'c JsonCtx<'a>,
}

impl<'de> DeserializeSeed<'de> for TopSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with `users` and `groups` arrays")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format_args!(
                    "duplicate top-level key `{key}`"
                )));
            }
            match key.as_str() {
                "users" => map.next_value_seed(RecordsSeed::<Users>::new(self.ctx))?,
                "groups" => map.next_value_seed(RecordsSeed::<Groups>::new(self.ctx))?,
                _ => {
                    return Err(de::Error::custom(format_args!(
                        "unknown top-level key `{key}` (expected `users` or `groups`)"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// What differs between the `users` and the `groups` arrays.
trait Section {
    const KEY: &'static str;
    const EXPECTING: &'static str;
    /// Whether `members` is streamed apart from the other keys.
    const HAS_MEMBERS: bool;
    type Record;

    fn convert(raw: RawRecord) -> Result<Self::Record, Invalid>;
    fn batch(records: Vec<Self::Record>) -> SourceBatch;
}

struct Users;
struct Groups;

impl Section for Users {
    const KEY: &'static str = "users";
    const EXPECTING: &'static str = "a user object";
    const HAS_MEMBERS: bool = false;
    type Record = SourceUser;

    fn convert(raw: RawRecord) -> Result<SourceUser, Invalid> {
        user_from_json(raw.attributes).map_err(Invalid::at_record)
    }

    fn batch(records: Vec<SourceUser>) -> SourceBatch {
        SourceBatch::Users(records)
    }
}

impl Section for Groups {
    const KEY: &'static str = "groups";
    const EXPECTING: &'static str = "a group object";
    const HAS_MEMBERS: bool = true;
    type Record = SourceGroup;

    fn convert(raw: RawRecord) -> Result<SourceGroup, Invalid> {
        group_from_json(raw)
    }

    fn batch(records: Vec<SourceGroup>) -> SourceBatch {
        SourceBatch::Groups(records)
    }
}

/// A semantic problem with one record; `at` is `None` for the record's own start.
#[derive(Debug)]
struct Invalid {
    at: Option<Pos>,
    message: String,
}

impl Invalid {
    fn at_record(message: String) -> Self {
        Invalid { at: None, message }
    }
}

/// One record as read: its attributes and, for groups, its streamed members.
struct RawRecord {
    /// Position of the record's `{`.
    at: Pos,
    attributes: Map<String, Value>,
    members: Vec<MemberRef>,
    /// The first invalid member, reported once the group's id is known.
    bad_member: Option<Invalid>,
}

/// An array of records, converted and sent in batches as they are read.
struct RecordsSeed<'c, 'a, S> {
    ctx: &'c JsonCtx<'a>,
    section: PhantomData<S>,
}

impl<'c, 'a, S> RecordsSeed<'c, 'a, S> {
    fn new(ctx: &'c JsonCtx<'a>) -> Self {
        RecordsSeed {
            ctx,
            section: PhantomData,
        }
    }
}

impl<'de, S: Section> DeserializeSeed<'de> for RecordsSeed<'_, '_, S> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, S: Section> Visitor<'de> for RecordsSeed<'_, '_, S> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an array of {}", S::KEY)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let ctx = self.ctx;
        let mut batch = Vec::new();
        let mut index = 0;
        loop {
            let seed = RecordSeed {
                ctx,
                key: S::KEY,
                index,
                expecting: S::EXPECTING,
                has_members: S::HAS_MEMBERS,
            };
            let Some(raw) = seq.next_element_seed(seed)? else {
                break;
            };
            let start = raw.at;
            let record = S::convert(raw)
                .map_err(|invalid| ctx.invalid(invalid.at.unwrap_or(start), &invalid.message))?;
            ctx.leave();
            batch.push(record);
            if batch.len() >= BATCH_SIZE {
                ctx.send(S::batch(std::mem::take(&mut batch)))?;
            }
            index += 1;
        }
        if !batch.is_empty() {
            ctx.send(S::batch(batch))?;
        }
        Ok(())
    }
}

/// One record object: every key into `attributes`, except a group's `members`, which
/// is streamed into member references.
struct RecordSeed<'c, 'a> {
    ctx: &'c JsonCtx<'a>,
    key: &'static str,
    index: usize,
    expecting: &'static str,
    has_members: bool,
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_, '_> {
    type Value = RawRecord;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<RawRecord, D::Error> {
        self.ctx.enter(self.key, self.index);
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_, '_> {
    type Value = RawRecord;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawRecord, A::Error> {
        // serde_json has read the `{` and nothing after it yet.
        let at = self.ctx.pos.get();
        let mut attributes = Map::new();
        let mut members = None;
        let mut bad_member = None;
        while let Some(key) = map.next_key::<String>()? {
            if self.has_members && key == "members" {
                if members.is_some() {
                    return Err(de::Error::custom("duplicate key `members`"));
                }
                let (list, bad) = map.next_value_seed(MembersSeed { ctx: self.ctx })?;
                members = Some(list);
                bad_member = bad;
            } else {
                let value: Value = map.next_value()?;
                if key == "id"
                    && let Value::String(id) = &value
                {
                    self.ctx.saw_id(id);
                }
                attributes.insert(key, value);
            }
        }
        Ok(RawRecord {
            at,
            attributes,
            members: members.unwrap_or_default(),
            bad_member,
        })
    }
}

/// A group's `members`: an array (or null) of `{"type", "id"}` objects.
struct MembersSeed<'c, 'a> {
    ctx: &'c JsonCtx<'a>,
}

type Members = (Vec<MemberRef>, Option<Invalid>);

impl<'de> DeserializeSeed<'de> for MembersSeed<'_, '_> {
    type Value = Members;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Members, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for MembersSeed<'_, '_> {
    type Value = Members;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of members")
    }

    fn visit_none<E: de::Error>(self) -> Result<Members, E> {
        Ok((Vec::new(), None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Members, E> {
        Ok((Vec::new(), None))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Members, D::Error> {
        deserializer.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Members, A::Error> {
        let mut members = Vec::new();
        let mut index = 0;
        loop {
            let Some((value, at)) = seq.next_element_seed(MemberSeed { ctx: self.ctx })? else {
                break;
            };
            match member_from_json(value) {
                Ok(member) => members.push(member),
                Err(message) => {
                    // Skip (but still check the syntax of) the rest of the list.
                    while seq.next_element::<IgnoredAny>()?.is_some() {}
                    let invalid = Invalid {
                        at: Some(at),
                        message: format!("members[{index}]: {message}"),
                    };
                    return Ok((Vec::new(), Some(invalid)));
                }
            }
            index += 1;
        }
        Ok((members, None))
    }
}

/// One member as a small `Value`, with the position of its first byte.
struct MemberSeed<'c, 'a> {
    ctx: &'c JsonCtx<'a>,
}

impl<'de> DeserializeSeed<'de> for MemberSeed<'_, '_> {
    type Value = (Value, Pos);

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(Value, Pos), D::Error> {
        let at = self.ctx.pos.get();
        Ok((Value::deserialize(deserializer)?, at))
    }
}

// --- JSON records to the model ---------------------------------------------------------

/// A required, non-blank string field.
fn required_string(record: &Map<String, Value>, field: &str) -> Result<String, String> {
    match record.get(field) {
        None | Some(Value::Null) => Err(format!("missing {field}")),
        Some(Value::String(text)) if text.trim().is_empty() => Err(format!("empty {field}")),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(other) => Err(format!("{field} must be a string, not {}", kind_of(other))),
    }
}

/// An optional string field; null and `""` are absent.
fn optional_string(record: &Map<String, Value>, field: &str) -> Result<Option<String>, String> {
    match record.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(format!("{field} must be a string, not {}", kind_of(other))),
    }
}

fn user_from_json(attributes: Map<String, Value>) -> Result<SourceUser, String> {
    let external_id = required_string(&attributes, "id")?;
    let user_name = required_string(&attributes, "userName")?;
    let given_name = optional_string(&attributes, "givenName")?;
    let family_name = optional_string(&attributes, "familyName")?;
    let display_name = optional_string(&attributes, "displayName")?;
    let emails = emails_from_json(&attributes)?;
    let active = match attributes.get("active") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(active)) => *active,
        Some(other) => {
            return Err(format!(
                "active must be true or false, not {}",
                kind_of(other)
            ));
        }
    };
    Ok(SourceUser {
        external_id,
        user_name,
        given_name,
        family_name,
        display_name,
        emails,
        active,
        attributes,
    })
}

/// `emails` (strings or `{value, type?, primary?}` objects) and `email` (the primary
/// address: marked primary in `emails` if listed there, else put first).
fn emails_from_json(record: &Map<String, Value>) -> Result<Vec<Email>, String> {
    let mut emails = match record.get("emails") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(index, item)| email_from_json(item).map_err(|e| format!("emails[{index}]: {e}")))
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => {
            return Err(format!("emails must be an array, not {}", kind_of(other)));
        }
    };
    if let Some(primary) = optional_string(record, "email")? {
        for email in &mut emails {
            email.primary = email.value.eq_ignore_ascii_case(&primary);
        }
        if !emails.iter().any(|e| e.primary) {
            emails.insert(
                0,
                Email {
                    value: primary,
                    kind: None,
                    primary: true,
                },
            );
        }
    }
    Ok(emails)
}

fn email_from_json(item: &Value) -> Result<Email, String> {
    match item {
        Value::String(value) if value.trim().is_empty() => Err("empty address".into()),
        Value::String(value) => Ok(Email {
            value: value.clone(),
            kind: None,
            primary: false,
        }),
        Value::Object(fields) => {
            let value = required_string(fields, "value")?;
            let kind = optional_string(fields, "type")?;
            let primary = match fields.get("primary") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(primary)) => *primary,
                Some(other) => {
                    return Err(format!(
                        "primary must be true or false, not {}",
                        kind_of(other)
                    ));
                }
            };
            Ok(Email {
                value,
                kind,
                primary,
            })
        }
        other => Err(format!(
            "expected an address or a {{\"value\": ...}} object, not {}",
            kind_of(other)
        )),
    }
}

fn group_from_json(raw: RawRecord) -> Result<SourceGroup, Invalid> {
    let RawRecord {
        at: _,
        attributes,
        members,
        bad_member,
    } = raw;
    let external_id = required_string(&attributes, "id").map_err(Invalid::at_record)?;
    if let Some(invalid) = bad_member {
        return Err(invalid);
    }
    let display_name = match attributes.get("displayName") {
        None | Some(Value::Null) if attributes.contains_key("name") => {
            required_string(&attributes, "name")
        }
        _ => required_string(&attributes, "displayName"),
    }
    .map_err(Invalid::at_record)?;
    let description = optional_string(&attributes, "description").map_err(Invalid::at_record)?;
    Ok(SourceGroup {
        external_id,
        display_name,
        description,
        members,
        attributes,
    })
}

fn member_from_json(value: Value) -> Result<MemberRef, String> {
    let Value::Object(fields) = value else {
        return Err(format!(
            "expected a {{\"type\", \"id\"}} object, not {}",
            kind_of(&value)
        ));
    };
    let kind = match fields.get("type") {
        None | Some(Value::Null) => return Err("missing type".into()),
        Some(Value::String(text)) => {
            MemberKind::parse(&text.to_ascii_lowercase()).ok_or_else(|| {
                format!("unknown member type {text:?} (expected \"user\" or \"group\")")
            })?
        }
        Some(other) => return Err(format!("type must be a string, not {}", kind_of(other))),
    };
    let id = required_string(&fields, "id")?;
    Ok(MemberRef { kind, id })
}

// ---------------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------------

/// A column the connector maps onto a model field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    Id,
    UserName,
    GivenName,
    FamilyName,
    DisplayName,
    Email,
    Active,
}

impl Known {
    /// Recognises a header, case-insensitively.
    fn parse(header: &str) -> Option<Known> {
        match header.to_ascii_lowercase().as_str() {
            "id" => Some(Known::Id),
            "username" | "user_name" => Some(Known::UserName),
            "givenname" | "given_name" => Some(Known::GivenName),
            "familyname" | "family_name" => Some(Known::FamilyName),
            "displayname" | "display_name" => Some(Known::DisplayName),
            "email" => Some(Known::Email),
            "active" => Some(Known::Active),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Known::Id => "id",
            Known::UserName => "userName",
            Known::GivenName => "givenName",
            Known::FamilyName => "familyName",
            Known::DisplayName => "displayName",
            Known::Email => "email",
            Known::Active => "active",
        }
    }
}

/// The header row, resolved.
struct Columns {
    /// Every header as written (trimmed); empty ones are ignored.
    names: Vec<String>,
    id: usize,
    user_name: usize,
    given_name: Option<usize>,
    family_name: Option<usize>,
    display_name: Option<usize>,
    email: Option<usize>,
    active: Option<usize>,
}

impl Columns {
    fn from_headers(headers: &csv::StringRecord) -> Result<Columns, String> {
        let names: Vec<String> = headers.iter().map(str::to_owned).collect();
        let mut known: [Option<usize>; 7] = [None; 7];
        let mut seen = HashSet::new();
        for (index, name) in names.iter().enumerate() {
            if name.is_empty() {
                continue;
            }
            if let Some(field) = Known::parse(name) {
                let slot = &mut known[field as usize];
                if let Some(first) = *slot {
                    return Err(format!(
                        "columns `{}` and `{name}` both give {}",
                        names[first],
                        field.name()
                    ));
                }
                *slot = Some(index);
            }
            if !seen.insert(name.as_str()) {
                return Err(format!("duplicate column `{name}`"));
            }
        }
        let Some(id) = known[Known::Id as usize] else {
            return Err("missing required column `id`".into());
        };
        let Some(user_name) = known[Known::UserName as usize] else {
            return Err(
                "missing required column `userName` (also accepted: `user_name`, `username`)"
                    .into(),
            );
        };
        Ok(Columns {
            id,
            user_name,
            given_name: known[Known::GivenName as usize],
            family_name: known[Known::FamilyName as usize],
            display_name: known[Known::DisplayName as usize],
            email: known[Known::Email as usize],
            active: known[Known::Active as usize],
            names,
        })
    }

    fn user(&self, record: &csv::StringRecord) -> Result<SourceUser, String> {
        if record.len() != self.names.len() {
            return Err(format!(
                "row has {} fields but the header has {}",
                record.len(),
                self.names.len()
            ));
        }
        let cell = |index: usize| record.get(index).filter(|text| !text.is_empty());
        let optional = |index: Option<usize>| index.and_then(cell).map(str::to_owned);

        let external_id = cell(self.id).ok_or("empty id")?.to_owned();
        let label = format!("id {external_id:?}");
        let user_name = cell(self.user_name)
            .ok_or_else(|| format!("{label}: empty userName"))?
            .to_owned();
        let active = match self.active.and_then(cell) {
            None => true,
            Some(text) => parse_active(text).ok_or_else(|| {
                format!(
                    "{label}: invalid active value {text:?} (expected true/false, 1/0 or yes/no)"
                )
            })?,
        };
        let emails = optional(self.email)
            .map(|value| Email {
                value,
                kind: None,
                primary: true,
            })
            .into_iter()
            .collect();
        let attributes = self
            .names
            .iter()
            .zip(record.iter())
            .filter(|(name, text)| !name.is_empty() && !text.is_empty())
            .map(|(name, text)| (name.clone(), Value::String(text.to_owned())))
            .collect();
        Ok(SourceUser {
            external_id,
            user_name,
            given_name: optional(self.given_name),
            family_name: optional(self.family_name),
            display_name: optional(self.display_name),
            emails,
            active,
            attributes,
        })
    }
}

fn parse_active(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

fn parse_csv<R: Read>(reader: R, out: &Outbox) -> Result<(), Stop> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let headers = csv.headers().map_err(|err| csv_error(out, err))?.clone();
    let header_line = headers.position().map_or(1, |pos| pos.line());
    let columns = Columns::from_headers(&headers)
        .map_err(|message| out.malformed(header_line, 1, message))?;

    let mut record = csv::StringRecord::new();
    let mut batch = Vec::new();
    while csv
        .read_record(&mut record)
        .map_err(|err| csv_error(out, err))?
    {
        let line = record.position().map_or(0, |pos| pos.line());
        let user = columns
            .user(&record)
            .map_err(|message| out.malformed(line, 1, message))?;
        batch.push(user);
        if batch.len() >= BATCH_SIZE {
            out.send(SourceBatch::Users(std::mem::take(&mut batch)))?;
        }
    }
    if !batch.is_empty() {
        out.send(SourceBatch::Users(batch))?;
    }
    Ok(())
}

fn csv_error(out: &Outbox, err: csv::Error) -> Stop {
    let line = err.position().map_or(0, |pos| pos.line());
    let text = err.to_string();
    match err.into_kind() {
        csv::ErrorKind::Io(source) => out.io(source),
        csv::ErrorKind::Utf8 { err, .. } => out.malformed(
            line,
            1,
            format!("field {} is not valid UTF-8", err.field() + 1),
        ),
        _ => out.malformed(line, 1, text),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::PathBuf;

    use async_trait::async_trait;
    use serde_json::json;

    use super::*;
    use crate::connectors::SinkError;
    use crate::connectors::testing::CollectingSink;

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
        let groups = json!([{"id": "g-1", "displayName": "One", "members": [{"type": "user", "id": "u-0"}]}]);
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
        let (line, _, message) =
            malformed("{\"users\": [\n{\"id\": \"u-1\"", FileFormat::Json).await;
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
        let (line, _, message) =
            malformed("{\"users\": [],\n \"roles\": []}", FileFormat::Json).await;
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
        let (line, column, message) =
            malformed("id,email\nu-1,a@example.com\n", FileFormat::Csv).await;
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
        let (line, _, message) =
            malformed("id,userName,dept\nu-1,a,x\nu-2,b\n", FileFormat::Csv).await;
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
}
