//! Durations as settings spell them: `90s`, `30m`, `12h`, `7d`, `1w`, or combinations
//! such as `1d12h` (shared by every kind that has one).

use std::time::Duration;

/// Parses `"90s"`, `"30m"`, `"12h"`, `"7d"`, `"1w"` or combinations (`"1d12h"`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("an empty duration".to_owned());
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => {
                return Err(format!(
                    "`{text}` is not a duration (use s, m, h, d or w, such as \"7d\" or \"12h\")"
                ));
            }
        };
        let n: u64 = number.parse().map_err(|_| {
            format!("`{text}` is not a duration (a number goes before each unit, such as \"7d\")")
        })?;
        number.clear();
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(|| format!("`{text}` is too long"))?;
    }
    if !number.is_empty() {
        return Err(format!(
            "`{text}` needs a unit after {number} (s, m, h, d or w)"
        ));
    }
    Ok(Duration::from_secs(total))
}
