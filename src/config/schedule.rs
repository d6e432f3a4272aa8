//! A connector's `schedule` and `timezone`: crontab's 5 fields (either day rule matches) and
//! 6/7 fields with seconds first, parsed by croner with messages that name the field at
//! fault; time zones as IANA names (daylight saving followed) or fixed offsets.

use std::fmt;
use std::str::FromStr;

use chrono::Offset;
use croner::errors::CronError;
use croner::parser::{CronParser, Seconds, Year};

/// What the 5- and 6/7-field forms of a schedule look like, for messages.
const SCHEDULE_FORMS: &str = "expected 5 fields (minute hour day-of-month month day-of-week) \
     or 6-7 fields with seconds first (second minute hour day-of-month month day-of-week [year])";

/// The `@` shorthands, each the 5-field schedule croner expands it to.
const SHORTHANDS: [&str; 6] = [
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@hourly",
];

/// A cron schedule, as written and as parsed.
///
/// Two forms are accepted:
/// - 5 fields, as in crontab: `minute hour day-of-month month day-of-week`,
///   with day-of-week 0-7 (0 and 7 are Sunday) or `sun`-`sat`; it runs at
///   second 0. When both day-of-month and day-of-week are restricted (neither
///   is `*`), a day matching either runs, as crontab does: `0 0 1 * 1` runs on
///   the 1st and on every Monday.
/// - 6 or 7 fields, seconds first:
///   `second minute hour day-of-month month day-of-week [year]`, with
///   day-of-week 1-7 (1 is Sunday) or `sun`-`sat`. When both day fields are
///   restricted a day must match both (this form's rule before croner, kept so
///   that no schedule written for it changes meaning).
///
/// `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly` and `@annually` work
/// too.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The schedule as written in the configuration.
    pub text: String,
    /// The parsed schedule.
    pub cron: croner::Cron,
    /// Whether it names times of day: neither its minute nor its hour field starts with
    /// `*`. crontab runs such a schedule once across daylight-saving changes (a time
    /// skipped runs when the clocks have gone forward, a time repeated runs the first
    /// time only), while one that does start with `*` follows the clock.
    pub fixed_times: bool,
}

impl Schedule {
    /// Parses either form of schedule.
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let invalid = |reason: String| ScheduleError {
            text: text.to_owned(),
            reason,
        };
        let fields: Vec<&str> = text.split_whitespace().collect();
        let dialect = match fields.len() {
            1 if fields[0].starts_with('@') => {
                let shorthand = fields[0].to_ascii_lowercase();
                if !SHORTHANDS.contains(&shorthand.as_str()) {
                    return Err(invalid(format!(
                        "shorthand field `{}`: not one of {}",
                        fields[0],
                        SHORTHANDS.join(", ")
                    )));
                }
                return FIVE
                    .parser()
                    .parse(&shorthand)
                    .map(|cron| Schedule {
                        text: text.to_owned(),
                        cron,
                        fixed_times: shorthand != "@hourly",
                    })
                    .map_err(|err| invalid(describe(&err, "")));
            }
            5 => &FIVE,
            6 | 7 => &SEVEN,
            0 => return Err(invalid("it is empty".to_owned())),
            1 => return Err(invalid("1 field".to_owned())),
            n => return Err(invalid(format!("{n} fields"))),
        };
        let normalized: Vec<String> = fields
            .iter()
            .zip(dialect.fields)
            .map(|(field, spec)| {
                spec.names
                    .map_or((*field).to_owned(), |n| shorten(field, n))
            })
            .collect();
        for ((field, normal), spec) in fields.iter().zip(&normalized).zip(dialect.fields) {
            if let Err(detail) = check_field(normal, spec) {
                return Err(invalid(format!("{} field `{field}`: {detail}", spec.name)));
            }
        }
        let parser = dialect.parser();
        // The minute and hour fields, after the seconds of the 6/7-field form.
        let offset = usize::from(dialect.seconds == Seconds::Required);
        let fixed_times = fields
            .iter()
            .skip(offset)
            .take(2)
            .all(|field| !field.starts_with('*'));
        match parser.parse(&normalized.join(" ")) {
            Ok(cron) => Ok(Schedule {
                text: text.to_owned(),
                cron,
                fixed_times,
            }),
            Err(err) => Err(invalid(locate(
                &parser,
                &fields,
                &normalized,
                dialect,
                &err,
            ))),
        }
    }
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<Schedule, ScheduleError> {
        Schedule::parse(text)
    }
}

/// Shows the schedule as written.
impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A schedule that is not valid cron.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a valid cron schedule ({reason}); {SCHEDULE_FORMS}")]
pub struct ScheduleError {
    /// The schedule as written.
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

/// One field of a form: its name, the numbers it takes, what to tell the
/// user it takes, and the names it knows (full names are shortened to the
/// three letters croner reads).
struct FieldSpec {
    name: &'static str,
    range: Option<(u16, u16)>,
    allowed: &'static str,
    names: Option<&'static [&'static str]>,
}

impl FieldSpec {
    const fn new(
        name: &'static str,
        range: Option<(u16, u16)>,
        allowed: &'static str,
        names: Option<&'static [&'static str]>,
    ) -> Self {
        FieldSpec {
            name,
            range,
            allowed,
            names,
        }
    }
}

/// A form of schedule: its fields and how croner is set up to read it.
struct Dialect {
    fields: &'static [FieldSpec],
    seconds: Seconds,
    /// Quartz day numbers (1 is Sunday) and both day fields required to match.
    quartz: bool,
}

impl Dialect {
    fn parser(&self) -> CronParser {
        CronParser::builder()
            .seconds(self.seconds)
            .year(if self.quartz {
                Year::Optional
            } else {
                Year::Disallowed
            })
            .alternative_weekdays(self.quartz)
            .dom_and_dow(self.quartz)
            // `5/15` (from 5, every 15) was accepted before croner; croner 4 wants
            // `5-59/15` unless told otherwise.
            .sloppy_ranges(true)
            .build()
    }
}

const DAYS: &[&str] = &[
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];
const MONTHS: &[&str] = &[
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

const SECOND: FieldSpec = FieldSpec::new("second", Some((0, 59)), "0-59", None);
const MINUTE: FieldSpec = FieldSpec::new("minute", Some((0, 59)), "0-59", None);
const HOUR: FieldSpec = FieldSpec::new("hour", Some((0, 23)), "0-23", None);
const DAY_OF_MONTH: FieldSpec =
    FieldSpec::new("day-of-month", Some((1, 31)), "1-31, L or nW", None);
const MONTH: FieldSpec = FieldSpec::new("month", Some((1, 12)), "1-12 or jan-dec", Some(MONTHS));
const YEAR: FieldSpec = FieldSpec::new("year", None, "a year such as 2030", None);

/// crontab's form: day-of-week 0-7, 0 and 7 being Sunday.
const FIVE: Dialect = Dialect {
    fields: &[
        MINUTE,
        HOUR,
        DAY_OF_MONTH,
        MONTH,
        FieldSpec::new(
            "day-of-week",
            Some((0, 7)),
            "0-7, 0 and 7 are Sunday, or sun-sat",
            Some(DAYS),
        ),
    ],
    seconds: Seconds::Disallowed,
    quartz: false,
};

/// The form with seconds: day-of-week 1-7, 1 being Sunday.
const SEVEN: Dialect = Dialect {
    fields: &[
        SECOND,
        MINUTE,
        HOUR,
        DAY_OF_MONTH,
        MONTH,
        FieldSpec::new(
            "day-of-week",
            Some((1, 7)),
            "1-7, 1 is Sunday, or sun-sat",
            Some(DAYS),
        ),
        YEAR,
    ],
    seconds: Seconds::Required,
    quartz: true,
};

/// `field` with every full name (`monday`, `January`) cut to its first three
/// letters, which is what croner reads (it would read `MONDAY` as `1DAY`).
fn shorten(field: &str, names: &[&str]) -> String {
    let mut out = String::with_capacity(field.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let lower = word.to_ascii_lowercase();
        match names.iter().find(|name| **name == lower) {
            Some(name) => out.push_str(name.get(..3).unwrap_or(name)),
            None => out.push_str(word),
        }
        word.clear();
    };
    for c in field.chars() {
        if c.is_ascii_alphabetic() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// What croner lets through or words poorly: empty list items (`1,,2`),
/// numbers out of the field's range and ranges that run backwards.
fn check_field(field: &str, spec: &FieldSpec) -> Result<(), String> {
    for item in field.split(',') {
        if item.is_empty() {
            return Err(format!("an empty item in the list ({})", spec.allowed));
        }
        let Some((min, max)) = spec.range else {
            continue;
        };
        let body = item.split(['/', '#']).next().unwrap_or(item);
        let body = body.trim_end_matches(['L', 'l', 'W', 'w']);
        let numbers: Vec<Option<u16>> = body.split('-').map(|n| n.parse().ok()).collect();
        for number in numbers.iter().flatten() {
            if !(min..=max).contains(number) {
                return Err(format!("`{number}` is out of range ({})", spec.allowed));
            }
        }
        if let [Some(first), Some(last)] = numbers[..]
            && first > last
        {
            return Err(format!("range `{body}` runs backwards"));
        }
    }
    Ok(())
}

/// Which field croner refused, found by parsing each field alone (the others
/// `*`), with croner's reason.
fn locate(
    parser: &CronParser,
    fields: &[&str],
    normalized: &[String],
    dialect: &Dialect,
    err: &CronError,
) -> String {
    for (index, (field, spec)) in fields.iter().zip(dialect.fields).enumerate() {
        let alone: Vec<&str> = normalized
            .iter()
            .enumerate()
            .map(|(other, text)| if other == index { text.as_str() } else { "*" })
            .collect();
        if let Err(err) = parser.parse(&alone.join(" ")) {
            return format!(
                "{} field `{field}`: {} ({})",
                spec.name,
                describe(&err, field),
                spec.allowed
            );
        }
    }
    describe(err, "")
}

/// croner's reason, as a clause: the character the user wrote for an illegal
/// one, the rest lower-cased and without the final full stop.
fn describe(err: &CronError, field: &str) -> String {
    if let CronError::IllegalCharacters(message) = err {
        // "CronPattern contains illegal character 'X' in part '...'": croner has
        // upper-cased the pattern, so find the character as written.
        let reported = message.split('\'').nth(1).and_then(|c| c.chars().next());
        if let Some(reported) = reported {
            let written = field
                .chars()
                .find(|c| c.to_ascii_uppercase() == reported)
                .unwrap_or(reported);
            return format!("`{written}` is not allowed here");
        }
    }
    let message = match err {
        CronError::InvalidPattern(message)
        | CronError::IllegalCharacters(message)
        | CronError::ComponentError(message) => message.clone(),
        other => other.to_string(),
    };
    let message = message.trim_end_matches('.');
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => "cannot be parsed".to_owned(),
    }
}

/// The time zone a schedule is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleZone {
    /// A fixed offset from UTC (`UTC`, `+01:00`): the same all year.
    Fixed(chrono::FixedOffset),
    /// An IANA zone (`Europe/Berlin`): its offset follows its daylight-saving
    /// rules.
    Named(chrono_tz::Tz),
}

/// UTC.
impl Default for ScheduleZone {
    fn default() -> Self {
        ScheduleZone::Fixed(chrono::Utc.fix())
    }
}

/// The IANA name, or the offset as `+01:00`.
impl fmt::Display for ScheduleZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScheduleZone::Fixed(offset) => write!(f, "{offset}"),
            ScheduleZone::Named(zone) => f.write_str(zone.name()),
        }
    }
}

/// `UTC`, `Z`, a fixed offset `±HH:MM` (also `±HHMM`, `±HH`) or an IANA time
/// zone name such as `Europe/Berlin` (its case does not matter).
pub fn parse_timezone(text: &str) -> Result<ScheduleZone, String> {
    let text = text.trim();
    if let Some(offset) = parse_offset(text) {
        return Ok(ScheduleZone::Fixed(offset));
    }
    if let Ok(zone) = text.parse::<chrono_tz::Tz>() {
        return Ok(ScheduleZone::Named(zone));
    }
    if let Some(zone) = chrono_tz::TZ_VARIANTS
        .iter()
        .find(|zone| zone.name().eq_ignore_ascii_case(text))
    {
        return Ok(ScheduleZone::Named(*zone));
    }
    Err(format!(
        "`{text}` is not a time zone idsync understands: give an IANA name such as \
         `Europe/Berlin`, `UTC`, or a fixed offset such as `+01:00` or `-05:30`"
    ))
}

/// `UTC`, `Z`, `GMT` or `±HH:MM` (also `±HHMM`, `±HH`).
fn parse_offset(text: &str) -> Option<chrono::FixedOffset> {
    if text.eq_ignore_ascii_case("utc") || text == "Z" || text.eq_ignore_ascii_case("gmt") {
        return chrono::FixedOffset::east_opt(0);
    }
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) || !(digits.len() == 2 || digits.len() == 4) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = if digits.len() == 4 {
        digits[2..].parse().ok()?
    } else {
        0
    };
    if hours > 14 || minutes > 59 {
        return None;
    }
    chrono::FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

#[cfg(test)]
mod tests;
