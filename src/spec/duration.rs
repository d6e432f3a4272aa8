//! Durations as settings and `--since` spell them, in humantime's syntax: `90s`, `30m`,
//! `12h`, `7d`, `2w`, combinations such as `1d12h` or `1h 30m`, and long unit names such as
//! `7 days` (shared by every kind that has one).

use std::time::Duration;

/// What to write instead, for messages.
const USE: &str = "use s, m, h, d or w, such as \"7d\" or \"12h\"";

/// Parses a duration in humantime's syntax
/// (<https://docs.rs/humantime/latest/humantime/fn.parse_duration.html>): numbers each
/// followed by a unit, `s`, `m`, `h`, `d`, `w` (or `sec`, `min`, `hours`, `days`,
/// `weeks`, ...) or `y` (years of 365.25 days), added up; months (`M`) are refused, being
/// one shift key from minutes.
/// Settings count whole seconds, so a duration with a fraction of a second left over
/// (`500ms`) is refused rather than rounded.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("an empty duration".to_owned());
    }
    // In humantime `M` is months and `m` minutes: one shift key from a 43,000-fold
    // mistake in `full_sync_every`, so months are refused (write days or weeks).
    if text.contains('M') || text.to_ascii_lowercase().contains("month") {
        return Err(format!(
            "`{text}`: months are not a unit here (`M` would be months, `m` is minutes); {USE}"
        ));
    }
    let duration = humantime::parse_duration(text).map_err(|err| explain(text, &err))?;
    if duration.subsec_nanos() != 0 {
        return Err(format!("`{text}` is not a whole number of seconds"));
    }
    Ok(duration)
}

/// humantime's error, in the words idsync's messages use.
fn explain(text: &str, err: &humantime::DurationError) -> String {
    use humantime::DurationError as E;
    match err {
        E::Empty => "an empty duration".to_owned(),
        E::UnknownUnit { unit, value, .. } if unit.is_empty() => {
            format!("`{text}` needs a unit after {value} (s, m, h, d or w)")
        }
        E::UnknownUnit { unit, .. } => {
            format!("`{text}` is not a duration (`{unit}` is not a unit; {USE})")
        }
        E::NumberExpected(_) => {
            format!("`{text}` is not a duration (a number goes before each unit, such as \"7d\")")
        }
        E::InvalidCharacter(_) => format!("`{text}` is not a duration ({USE})"),
        E::NumberOverflow => format!("`{text}` is too long"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_refused_so_that_m_always_means_minutes() {
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        let refused = parse_duration("30M").expect_err("months");
        assert!(refused.contains("months are not a unit here"), "{refused}");
        assert!(parse_duration("2 months").is_err());
        assert_eq!(parse_duration("1d12h"), Ok(Duration::from_secs(129_600)));
    }
}
