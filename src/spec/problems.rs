//! Collecting configuration problems with their file, line and key.
//!
//! A [`Problem`] is one mistake, shown as `file:line: key: message`; [`Problems`] gathers every [`Problem`] found while loading; [`Source`] is one
//! configuration file's text, which turns byte spans (from TOML errors and from
//! [`toml::Spanned`] values) into 1-based lines.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::Spanned;

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file the problem is in, relative to the configuration's base
    /// directory when it lies under it (as it is shown to people), else as
    /// found.
    pub file: PathBuf,
    /// The 1-based line in `file`, when the problem has one.
    pub line: Option<usize>,
    /// The dotted key the problem is about (`schedule`, `file.path`,
    /// `target.database_url`), when known.
    pub key: Option<String>,
    /// What is wrong, for people.
    pub message: String,
}

impl Problem {
    /// A problem with a whole file: no line, no key.
    pub(crate) fn in_file(file: &Path, message: impl Into<String>) -> Problem {
        Problem {
            file: file.to_path_buf(),
            line: None,
            key: None,
            message: message.into(),
        }
    }
}

/// `<file>:<line>: <key>: <message>`, leaving out the parts that are absent.
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The problems found so far, with file paths shown relative to the
/// configuration's base directory where they lie under it.
pub struct Problems {
    /// The directory of `idsync.toml`; problem files are shown relative to it.
    base_dir: PathBuf,
    /// The problems, in the order found.
    list: Vec<Problem>,
    /// Which of them say that a secret (an environment variable, a file) cannot be looked
    /// up: commands that read only the database load the configuration without them.
    secrets: Vec<usize>,
}

impl Problems {
    pub(crate) fn new(base_dir: &Path) -> Problems {
        Problems {
            base_dir: base_dir.to_path_buf(),
            list: Vec::new(),
            secrets: Vec::new(),
        }
    }

    /// `path` as shown to people: relative to the base directory when under
    /// it, else unchanged.
    pub(crate) fn display_path(&self, path: &Path) -> PathBuf {
        match path.strip_prefix(&self.base_dir) {
            Ok(relative) if !relative.as_os_str().is_empty() => relative.to_path_buf(),
            _ => path.to_path_buf(),
        }
    }

    pub(crate) fn push(
        &mut self,
        file: &Path,
        line: Option<usize>,
        key: Option<&str>,
        message: impl Into<String>,
    ) {
        self.list.push(Problem {
            file: self.display_path(file),
            line,
            key: key.map(str::to_owned),
            message: message.into(),
        });
    }

    /// How many problems there are so far.
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub(crate) fn into_vec(self) -> Vec<Problem> {
        self.list
    }

    /// Forgets the problems of secrets that cannot be looked up (see `Source::report_secret`).
    pub(crate) fn forget_unavailable_secrets(&mut self) {
        let secrets = std::mem::take(&mut self.secrets);
        let mut index = 0;
        self.list.retain(|_| {
            let keep = !secrets.contains(&index);
            index += 1;
            keep
        });
    }
}

/// One configuration file and its text.
pub struct Source<'a> {
    /// The file's path (absolute).
    pub(crate) file: &'a Path,
    /// The file's contents.
    pub(crate) text: &'a str,
}

impl Source<'_> {
    /// The 1-based line holding byte `offset` (offsets past the end count as
    /// the last line).
    pub(crate) fn line(&self, offset: usize) -> usize {
        let bytes = self.text.as_bytes();
        let end = offset.min(bytes.len());
        bytes[..end].iter().filter(|&&byte| byte == b'\n').count() + 1
    }

    /// The line of a value's span; `None` for the empty span that
    /// [`defaulted`] values carry, since they were not written anywhere.
    pub(crate) fn span_line(&self, span: &Range<usize>) -> Option<usize> {
        if span.is_empty() {
            None
        } else {
            Some(self.line(span.start))
        }
    }

    /// Records a problem with the value `spanned`, found under `key`.
    /// [`Source::report`] for a secret that cannot be looked up: a problem like any other,
    /// which commands that need only the database leave out.
    pub(crate) fn report_secret<T>(
        &self,
        problems: &mut Problems,
        spanned: &Spanned<T>,
        key: &str,
        message: impl Into<String>,
    ) {
        problems.secrets.push(problems.list.len());
        self.report(problems, spanned, key, message);
    }

    pub(crate) fn report<T>(
        &self,
        problems: &mut Problems,
        spanned: &Spanned<T>,
        key: &str,
        message: impl Into<String>,
    ) {
        problems.push(
            self.file,
            self.span_line(&spanned.span()),
            Some(key),
            message,
        );
    }

    /// What a check of the value `spanned` (under `key`) gave, or None with its error
    /// recorded as a problem.
    pub(crate) fn checked<T, V, E: ToString>(
        &self,
        problems: &mut Problems,
        spanned: &Spanned<V>,
        key: &str,
        result: Result<T, E>,
    ) -> Option<T> {
        result
            .map_err(|error| self.report(problems, spanned, key, error.to_string()))
            .ok()
    }

    /// An optional setting: `default` when unset, else what `check` makes of its value
    /// (None, and a problem, when it refuses it).
    pub(crate) fn checked_or<T, U>(
        &self,
        problems: &mut Problems,
        value: Option<&Spanned<T>>,
        key: &str,
        default: U,
        check: impl FnOnce(&T) -> Result<U, String>,
    ) -> Option<U> {
        match value {
            None => Some(default),
            Some(spanned) => self.checked(problems, spanned, key, check(spanned.get_ref())),
        }
    }

    /// Deserialises the whole file, or records why it cannot be. Deserialising stops at
    /// the first unknown key or bad value, so the line holding it is blanked out (spaces,
    /// so every other line and offset stays where it was) and the file read again, up to
    /// [`MAX_PARSE_PROBLEMS`] times: `check` then names every such key and value of a file
    /// at once (the file's other checks run once these are fixed).
    pub(crate) fn parse<T: DeserializeOwned>(&self, problems: &mut Problems) -> Option<T> {
        let before = problems.list.len();
        let parsed = self.parse_blanking(problems);
        // Found in serde's order; shown in the file's.
        problems.list[before..].sort_by_key(|problem| problem.line);
        parsed
    }

    fn parse_blanking<T: DeserializeOwned>(&self, problems: &mut Problems) -> Option<T> {
        let mut text = std::borrow::Cow::Borrowed(self.text);
        let mut blanked: Vec<usize> = Vec::new();
        loop {
            let err = match toml::from_str(&text) {
                // With a line blanked the rest would be checked without it, and its absence
                // reported again as a second problem: the file's own problems are enough.
                Ok(value) => return blanked.is_empty().then_some(value),
                Err(err) => err,
            };
            let line = err
                .span()
                .and_then(|span| self.blankable_line(&text, span.start));
            let repeated = line.is_some_and(|line| blanked.contains(&line));
            let missing = err.message().starts_with("missing field");
            // A missing field after a blanked line is the blanked value itself: said already.
            let said_already = missing && !blanked.is_empty();
            if !said_already && !repeated {
                self.report_toml(problems, &err);
            }
            match line {
                Some(line) if !missing && !repeated && blanked.len() < MAX_PARSE_PROBLEMS => {
                    text = std::borrow::Cow::Owned(blank_line(&text, line));
                    blanked.push(line);
                }
                _ => return None,
            }
        }
    }

    /// The 1-based line at `offset` when it is one `key = value` line (not a table header,
    /// not part of a value spanning lines), which can be blanked out on its own.
    fn blankable_line(&self, text: &str, offset: usize) -> Option<usize> {
        let line = self.line(offset);
        let content = text.lines().nth(line - 1)?.trim();
        let single = content.contains('=')
            && !content.starts_with('[')
            && !content.ends_with('[')
            && !content.ends_with('{')
            && !content.contains("\"\"\"")
            && !content.contains("'''");
        single.then_some(line)
    }

    /// Records a TOML syntax or deserialisation error as a problem.
    pub(crate) fn report_toml(&self, problems: &mut Problems, err: &toml::de::Error) {
        let message = err.message().trim().replace('\n', "; ");
        let mut key = error_key_path(err);
        let mut line = err.span().map(|span| self.line(span.start));
        if let Some(field) = backticked_after(&message, "missing field `") {
            key.push(field.to_owned());
            // A field missing from the top-level table has no line of its own.
            if err.span().is_some_and(|span| span == (0..0)) {
                line = None;
            }
        } else if let Some(field) = backticked_after(&message, "unknown field `") {
            key.push(field.to_owned());
        } else if message == "duplicate key"
            && let Some(text) = err.span().and_then(|span| self.text.get(span))
        {
            key.push(text.trim().trim_matches(['"', '\'']).to_owned());
        }
        let key = (!key.is_empty()).then(|| key.join("."));
        problems.push(self.file, line, key.as_deref(), message);
    }
}

/// The text between `prefix` (which ends in a backtick) and the next
/// backtick, when `message` starts with `prefix`.
fn backticked_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = message.strip_prefix(prefix)?;
    rest.split_once('`').map(|(inside, _)| inside)
}

/// The keys leading to the value a TOML error is about (`["file", "path"]`).
///
/// `toml::de::Error` keeps them private, but its `Display` shows them as a
/// final "in `a.b`" line when it has no input to quote, so read them there.
fn error_key_path(err: &toml::de::Error) -> Vec<String> {
    let mut bare = err.clone();
    bare.set_input(None);
    let shown = bare.to_string();
    shown
        .strip_prefix(err.message())
        .map(|rest| rest.trim())
        .and_then(|rest| rest.strip_prefix("in `"))
        .and_then(|rest| rest.strip_suffix('`'))
        .filter(|keys| !keys.is_empty())
        .map(|keys| keys.split('.').map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The most unknown keys and bad values one file's parse reports before it gives up.
const MAX_PARSE_PROBLEMS: usize = 50;

/// `text` with 1-based line `line` turned into spaces (byte for byte, newline kept).
fn blank_line(text: &str, line: usize) -> String {
    let mut out = String::with_capacity(text.len());
    for (index, piece) in text.split_inclusive('\n').enumerate() {
        if index + 1 == line {
            let body = piece.trim_end_matches(['\n', '\r']);
            out.extend(std::iter::repeat_n(' ', body.len()));
            out.push_str(&piece[body.len()..]);
        } else {
            out.push_str(piece);
        }
    }
    out
}

/// A default value, marked by an empty span: it appears on no line.
pub(crate) fn defaulted<T>(value: T) -> Spanned<T> {
    Spanned::new(0..0, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
        #[serde(default)]
        inner: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    fn problems_of(text: &str) -> Vec<Problem> {
        let mut problems = Problems::new(Path::new("/etc/idsync"));
        let source = Source {
            file: Path::new("/etc/idsync/doc.toml"),
            text,
        };
        assert!(source.parse::<Doc>(&mut problems).is_none());
        problems.into_vec()
    }

    fn problem(line: Option<usize>, key: Option<&str>, message: &str) -> Problem {
        Problem {
            file: PathBuf::from("doc.toml"),
            line,
            key: key.map(str::to_owned),
            message: message.to_owned(),
        }
    }

    #[test]
    fn lines_are_one_based_and_clamped() {
        let source = Source {
            file: Path::new("x.toml"),
            text: "a\nb\n",
        };
        assert_eq!(source.line(0), 1);
        assert_eq!(source.line(2), 2);
        assert_eq!(source.line(4), 3);
        assert_eq!(source.line(400), 3);
        assert_eq!(source.span_line(&(0..0)), None);
        assert_eq!(source.span_line(&(2..3)), Some(2));
    }

    #[test]
    fn toml_errors_keep_line_and_key() {
        assert_eq!(
            problems_of("name = \"x\"\n[inner]\ncount = \"three\"\n"),
            [problem(
                Some(3),
                Some("inner.count"),
                "invalid type: string \"three\", expected u32"
            )]
        );
        assert_eq!(
            problems_of("name = \"x\"\n[inner]\ncuont = 3\n"),
            [problem(
                Some(3),
                Some("inner.cuont"),
                "unknown field `cuont`, expected `count`"
            )]
        );
        assert_eq!(
            problems_of("# nothing\n"),
            [problem(None, Some("name"), "missing field `name`")]
        );
        assert_eq!(
            problems_of("name = \"x\"\n\n[inner]\n"),
            [problem(
                Some(3),
                Some("inner.count"),
                "missing field `count`"
            )]
        );
        assert_eq!(
            problems_of("name = \"x\"\nname = \"y\"\n"),
            [problem(Some(2), Some("name"), "duplicate key")]
        );
        assert_eq!(
            problems_of("name = \"x"),
            [problem(
                Some(1),
                None,
                "invalid basic string, expected `\"`"
            )]
        );
    }

    #[test]
    fn paths_outside_the_base_dir_are_kept_whole() {
        let problems = Problems::new(Path::new("/etc/idsync"));
        assert_eq!(
            problems.display_path(Path::new("/etc/idsync/connectors/a.toml")),
            Path::new("connectors/a.toml")
        );
        assert_eq!(
            problems.display_path(Path::new("/srv/a.toml")),
            Path::new("/srv/a.toml")
        );
        assert_eq!(
            problems.display_path(Path::new("/etc/idsync")),
            Path::new("/etc/idsync")
        );
    }
}
