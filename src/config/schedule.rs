//! A connector's `schedule` and `timezone`: the 5-field crontab form and the `cron` crate's
//! 6/7-field form with seconds, translated into the `cron` crate's dialect, with messages
//! that name the field at fault; time zones as fixed offsets.

use std::fmt;
use std::str::FromStr;

/// What the 5- and 6/7-field forms of a schedule look like, for messages.
const SCHEDULE_FORMS: &str = "expected 5 fields (minute hour day-of-month month day-of-week) \
     or 6-7 fields with seconds first (second minute hour day-of-month month day-of-week [year])";

/// A cron schedule, as written and as parsed.
///
/// Two forms are accepted:
/// - 5 fields, as in crontab: `minute hour day-of-month month day-of-week`,
///   with day-of-week 0-7 (0 and 7 are Sunday) or `sun`-`sat`; it runs at
///   second 0.
/// - the `cron` crate's 6 or 7 fields, seconds first:
///   `second minute hour day-of-month month day-of-week [year]`, with
///   day-of-week 1-7 (1 is Sunday) or `sun`-`sat`.
///
/// `@hourly`, `@daily`, `@weekly`, `@monthly` and `@yearly` work too. When
/// both day-of-month and day-of-week are restricted, a time must match both
/// (crontab would take either).
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The schedule as written in the configuration.
    pub text: String,
    /// The parsed schedule (always in the 6/7-field form).
    pub cron: cron::Schedule,
}

impl Schedule {
    /// Parses either form of schedule.
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let invalid = |reason: String| ScheduleError {
            text: text.to_owned(),
            reason,
        };
        let fields: Vec<&str> = text.split_whitespace().collect();
        let (expression, names, offset): (String, &[&str], usize) = match fields.len() {
            1 if text.trim_start().starts_with('@') => (text.trim().to_owned(), &["shorthand"], 0),
            5 => {
                let day_of_week = crontab_day_of_week(fields[4]).map_err(invalid)?;
                let expression = format!(
                    "0 {} {} {} {} {day_of_week}",
                    fields[0], fields[1], fields[2], fields[3]
                );
                (expression, &FIVE_FIELDS, 1)
            }
            6 | 7 => (fields.join(" "), &SEVEN_FIELDS, 0),
            0 => return Err(invalid("it is empty".to_owned())),
            1 => return Err(invalid("1 field".to_owned())),
            n => return Err(invalid(format!("{n} fields"))),
        };
        match cron::Schedule::from_str(&expression) {
            Ok(cron) => Ok(Schedule {
                text: text.to_owned(),
                cron,
            }),
            Err(err) => Err(invalid(explain_cron_error(
                &err.to_string(),
                &expression,
                &fields,
                names,
                offset,
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

const FIVE_FIELDS: [&str; 5] = ["minute", "hour", "day-of-month", "month", "day-of-week"];
const SEVEN_FIELDS: [&str; 7] = [
    "second",
    "minute",
    "hour",
    "day-of-month",
    "month",
    "day-of-week",
    "year",
];

/// Turns the `cron` crate's error (the expression, a line with a `^` under
/// the trouble, then sometimes a detail line) into a reason naming the
/// field, as the user wrote it. `offset` is how many fields were put in front
/// of the user's (the seconds of the 5-field form).
fn explain_cron_error(
    error: &str,
    expression: &str,
    fields: &[&str],
    names: &[&str],
    offset: usize,
) -> String {
    let mut lines = error.lines();
    let _expression_line = lines.next();
    let caret = lines.next().and_then(|line| line.find('^'));
    let detail = lines
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    // Which field of `expression` the caret is under.
    let field_index = caret.map(|column| {
        let before = expression.get(..column).unwrap_or(expression);
        let mut index = before.split_whitespace().count();
        if before.ends_with(|c: char| !c.is_whitespace()) {
            index -= 1;
        }
        index
    });
    let user_field = field_index
        .and_then(|index| index.checked_sub(offset))
        .filter(|&index| index < fields.len() && index < names.len());
    let detail = if detail.is_empty() {
        "cannot be parsed".to_owned()
    } else {
        detail
    };
    match user_field {
        Some(index) => format!("{} field `{}`: {detail}", names[index], fields[index]),
        None => detail,
    }
}

/// Rewrites a crontab day-of-week field (0-7, 0 and 7 being Sunday) into the
/// `cron` crate's numbering (1-7, 1 being Sunday), as an explicit list of
/// days. Names (`mon`, `monday`) are accepted anywhere a number is.
fn crontab_day_of_week(field: &str) -> Result<String, String> {
    if field == "*" || field == "?" {
        return Ok(field.to_owned());
    }
    let mut days = [false; 7];
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => match step.parse::<usize>() {
                Ok(step) if step > 0 => (range, Some(step)),
                _ => {
                    return Err(format!(
                        "day-of-week field `{field}`: `{step}` is not a step (a whole number from 1)"
                    ));
                }
            },
            None => (item, None),
        };
        let (first, last) = if range == "*" || range == "?" {
            (0, 6)
        } else if let Some((first, last)) = range.split_once('-') {
            (day_number(field, first)?, day_number(field, last)?)
        } else {
            let day = day_number(field, range)?;
            // `day/step` runs from `day` to the end of the week.
            match step {
                Some(_) => (day, 6.max(day)),
                None => (day, day),
            }
        };
        if first > last {
            return Err(format!(
                "day-of-week field `{field}`: range `{range}` runs backwards"
            ));
        }
        for day in (first..=last).step_by(step.unwrap_or(1)) {
            days[day % 7] = true;
        }
    }
    let list: Vec<String> = (0..7)
        .filter(|&day| days[day])
        .map(|day| (day + 1).to_string())
        .collect();
    Ok(list.join(","))
}

/// A crontab day of the week: 0-7 (0 and 7 are Sunday) or a name; 7 stays 7
/// so ranges like `5-7` work.
fn day_number(field: &str, text: &str) -> Result<usize, String> {
    const NAMES: [(&str, &str); 7] = [
        ("sun", "sunday"),
        ("mon", "monday"),
        ("tue", "tuesday"),
        ("wed", "wednesday"),
        ("thu", "thursday"),
        ("fri", "friday"),
        ("sat", "saturday"),
    ];
    if let Ok(number) = text.parse::<usize>()
        && number <= 7
    {
        return Ok(number);
    }
    let lower = text.to_ascii_lowercase();
    NAMES
        .iter()
        .position(|(short, long)| lower == *short || lower == *long)
        .ok_or_else(|| {
            format!("day-of-week field `{field}`: `{text}` is not a day (0-7, 0 and 7 are Sunday, or sun-sat)")
        })
}

/// `UTC`, `Z` or a fixed offset `±HH:MM` (also `±HHMM`, `±HH`).
pub(super) fn parse_timezone(text: &str) -> Option<chrono::FixedOffset> {
    let text = text.trim();
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
