//! Schedules read as admins write them: crontab's either-day rule in the 5-field form, both
//! days in the form with seconds, names, shorthands and the steps accepted before croner.

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::scheduler::next_fire;

fn utc(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(year, month, day, hour, minute, 0)
        .single()
        .expect("valid time")
}

/// The next `count` fire times of `schedule` in UTC after `after`.
fn fires(schedule: &str, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
    let schedule = Schedule::parse(schedule).expect("schedule");
    let mut out = Vec::new();
    let mut after = after;
    while out.len() < count {
        let fire = next_fire(&schedule, ScheduleZone::default(), after).expect("a next fire");
        out.push(fire);
        after = fire;
    }
    out
}

#[test]
fn five_fields_run_on_either_day_when_both_are_restricted() {
    // 2026-12-06 is a Sunday: the next Monday comes first, then the 1st of January
    // (a Friday) between Mondays.
    assert_eq!(
        fires("0 0 1 * 1", utc(2026, 12, 6, 12, 0), 6),
        [
            utc(2026, 12, 7, 0, 0),
            utc(2026, 12, 14, 0, 0),
            utc(2026, 12, 21, 0, 0),
            utc(2026, 12, 28, 0, 0),
            utc(2027, 1, 1, 0, 0),
            utc(2027, 1, 4, 0, 0),
        ]
    );
    // 2027-03-30 is a Tuesday: the 1st (a Thursday) comes before the next Monday.
    assert_eq!(
        fires("0 0 1 * mon", utc(2027, 3, 30, 12, 0), 2),
        [utc(2027, 4, 1, 0, 0), utc(2027, 4, 5, 0, 0)]
    );
}

#[test]
fn one_unrestricted_day_field_leaves_the_other_in_charge() {
    // Day-of-week `*`: the 1st only; day-of-month `*` (or `?`): Mondays only.
    assert_eq!(
        fires("0 0 1 * *", utc(2026, 12, 6, 12, 0), 2),
        [utc(2027, 1, 1, 0, 0), utc(2027, 2, 1, 0, 0)]
    );
    assert_eq!(
        fires("0 0 ? * 1", utc(2026, 12, 6, 12, 0), 2),
        [utc(2026, 12, 7, 0, 0), utc(2026, 12, 14, 0, 0)]
    );
}

#[test]
fn the_form_with_seconds_keeps_both_days_required() {
    // Sunday is 1 in this form, so 2 is Monday: the next 1st that is a Monday.
    assert_eq!(
        fires("0 0 0 1 * 2", utc(2026, 12, 6, 12, 0), 2),
        [utc(2027, 2, 1, 0, 0), utc(2027, 3, 1, 0, 0)]
    );
}

#[test]
fn shorthands_full_names_and_single_number_steps_still_parse() {
    assert_eq!(
        fires("@weekly", utc(2026, 12, 6, 12, 0), 1),
        [utc(2026, 12, 13, 0, 0)]
    );
    assert_eq!(
        fires("@Monthly", utc(2026, 12, 6, 12, 0), 1),
        [utc(2027, 1, 1, 0, 0)]
    );
    // `5/20`: from minute 5, every 20 minutes (the `cron` crate's reading, kept).
    assert_eq!(
        fires("5/20 * * * *", utc(2026, 12, 6, 12, 0), 3),
        [
            utc(2026, 12, 6, 12, 5),
            utc(2026, 12, 6, 12, 25),
            utc(2026, 12, 6, 12, 45)
        ]
    );
    assert_eq!(
        fires("0 9 * January Friday", utc(2026, 12, 6, 12, 0), 1),
        [utc(2027, 1, 1, 9, 0)]
    );
    assert_eq!(
        fires("0 0 9 * JAN-MAR Mon", utc(2026, 12, 6, 12, 0), 1),
        [utc(2027, 1, 4, 9, 0)]
    );
}

#[test]
fn a_schedule_that_never_fires_has_no_next_fire() {
    let never = Schedule::parse("0 0 30 2 *").expect("parses");
    assert_eq!(
        next_fire(&never, ScheduleZone::default(), utc(2026, 12, 6, 12, 0)),
        None
    );
}

#[test]
fn zones_show_as_written_in_canonical_form() {
    assert_eq!(
        parse_timezone(" Europe/Berlin ").map(|zone| zone.to_string()),
        Ok("Europe/Berlin".to_owned())
    );
    assert_eq!(
        parse_timezone("-05:30").map(|zone| zone.to_string()),
        Ok("-05:30".to_owned())
    );
    assert_eq!(ScheduleZone::default().to_string(), "+00:00");
    let err = parse_timezone("Mars/Olympus").expect_err("unknown");
    assert!(
        err.starts_with("`Mars/Olympus` is not a time zone"),
        "{err}"
    );
    assert!(err.contains("`Europe/Berlin`"), "{err}");
}

#[test]
fn schedules_the_cron_crate_took_still_parse() {
    for text in [
        "*/15 * * * *",
        "0 */2 * * *",
        "1-10/3 9-17 * * mon-fri",
        "0 9 1,15 * *",
        "0 9 ? * 1",
        "0 0 1 jan-jun *",
        "0 0 * * * *",
        "* * * * * *",
        "0 0 9 ? * MON-FRI",
        "0 0 12 1/2 * *",
        "0 15 10 * * * 2030",
        "0 15 10 * * * 2030-2035",
        "0 0 0 * * 1-7",
        "0 30 9 * * Mon,Wed,Fri",
        "0 0 0 1 January *",
        "@yearly",
        "@hourly",
    ] {
        assert!(
            Schedule::parse(text).is_ok(),
            "{text}: {:?}",
            Schedule::parse(text)
        );
    }
}

#[test]
fn croner_extras_parse() {
    for text in ["0 0 L * *", "0 0 15W * *", "0 0 * * 5#2", "0 0 * * 5L"] {
        assert!(
            Schedule::parse(text).is_ok(),
            "{text}: {:?}",
            Schedule::parse(text)
        );
    }
}

#[test]
fn which_schedules_name_fixed_times() {
    let fixed = |text: &str| Schedule::parse(text).expect("schedule").fixed_times;
    assert!(fixed("30 2 * * *"));
    assert!(fixed("0,30 2 * * *"));
    assert!(fixed("0 9-17 * * *"));
    assert!(fixed("*/10 0 2 * * *"));
    assert!(fixed("@daily"));
    assert!(!fixed("*/15 * * * *"));
    assert!(!fixed("0 * * * *"));
    assert!(!fixed("0 */2 * * *"));
    assert!(!fixed("0 0 * * * *"));
    assert!(!fixed("@hourly"));
}
