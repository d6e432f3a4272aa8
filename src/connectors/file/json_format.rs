//! The JSON format: a streaming serde visitor over the top-level object, its arrays and
//! each group's member list, with the position of every record for error messages.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::fmt;
use std::io::{self, BufRead, Read};
use std::marker::PhantomData;
use std::rc::Rc;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::records::{group_from_json, member_from_json, user_from_json};
use super::*;
use crate::model::{MemberRef, SourceGroup, SourceUser};
/// A 1-based line and the 1-based column (in bytes) of the last byte read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pos {
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

pub(super) fn parse_json<R: BufRead>(reader: R, out: &Outbox) -> Result<(), Stop> {
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
pub(super) struct Invalid {
    at: Option<Pos>,
    message: String,
}

impl Invalid {
    pub(super) fn at_record(message: String) -> Self {
        Invalid { at: None, message }
    }
}

/// One record as read: its attributes and, for groups, its streamed members.
pub(super) struct RawRecord {
    /// Position of the record's `{`.
    pub(super) at: Pos,
    pub(super) attributes: Map<String, Value>,
    pub(super) members: Vec<MemberRef>,
    /// The first invalid member, reported once the group's id is known.
    pub(super) bad_member: Option<Invalid>,
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
