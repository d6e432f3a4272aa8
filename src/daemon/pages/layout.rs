//! The frame every admin page shares (head, navigation, who is signed in, sign-out form)
//! and the small pieces pages repeat: outcome badges, times, durations.

use maud::{DOCTYPE, Markup, html};

use super::PageSession;
use crate::store::runs::{Outcome, RunRecord};

/// The sections of the navigation, by path.
const SECTIONS: [(&str, &str); 5] = [
    ("/ui/", "Overview"),
    ("/ui/held", "Held runs"),
    ("/ui/directory", "Directory"),
    ("/ui/mappings", "Mappings"),
    ("/ui/events", "SCIM event log"),
];

/// A whole page: `title` in the tab and as the heading, `current` the navigation entry
/// it belongs to.
pub fn page(session: &PageSession, title: &str, current: &str, body: Markup) -> Markup {
    refreshing_page(session, title, current, None, body)
}

/// [`page`] that loads `refresh`'s page after its seconds (while a run is in progress, so
/// the admin sees it finish without JavaScript).
pub fn refreshing_page(
    session: &PageSession,
    title: &str,
    current: &str,
    refresh: Option<(u32, &str)>,
    body: Markup,
) -> Markup {
    let header = html! {
        header.top {
            a.brand href="/ui/" { "idsync" }
            nav aria-label="Sections" {
                ul {
                    @for (path, name) in SECTIONS {
                        li {
                            @if path == current {
                                a href=(path) aria-current="page" { (name) }
                            } @else {
                                a href=(path) { (name) }
                            }
                        }
                    }
                }
            }
            div.who {
                span { "Signed in as " strong { (session.actor) } }
                form.inline method="post" action="/ui/logout" {
                    (csrf_field(session))
                    button type="submit" { "Sign out" }
                }
            }
        }
    };
    document(title, refresh, header, body)
}

/// A page for someone not signed in (the sign-in form, its errors).
pub fn bare_page(title: &str, body: Markup) -> Markup {
    document(
        title,
        None,
        html! { header.top { span.brand { "idsync" } } },
        body,
    )
}

/// The HTML document around a page's header and body.
fn document(title: &str, refresh: Option<(u32, &str)>, header: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some((seconds, url)) = refresh {
                    meta http-equiv="refresh" content={ (seconds) "; url=" (url) };
                }
                title { (title) " · idsync" }
                link rel="stylesheet" href="/ui/style.css";
            }
            body {
                (header)
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The hidden field that carries the session's CSRF token in every form.
pub fn csrf_field(session: &PageSession) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// An outcome as a coloured badge (colour is never the only signal: the word is there).
pub fn outcome_badge(outcome: Outcome) -> Markup {
    html! { span class={ "badge " (outcome.as_str()) } { (outcome.as_str()) } }
}

/// `2026-12-06T15:31:29.123Z` as `2026-12-06 15:31:29 UTC`, kept machine-readable in a
/// `time` element.
pub fn time(rfc3339: &str) -> Markup {
    let shown = rfc3339.get(..19).map_or_else(
        || rfc3339.to_string(),
        |t| format!("{} UTC", t.replace('T', " ")),
    );
    html! { time datetime=(rfc3339) { (shown) } }
}

/// How long a run took in seconds, once it has finished.
pub fn run_seconds(run: &RunRecord) -> Option<f64> {
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
    let (start, end) = (parse(&run.started_at)?, parse(run.finished_at.as_deref()?)?);
    Some((end - start).num_milliseconds().max(0) as f64 / 1000.0)
}

/// How long a run took, or `—` while it runs.
pub fn duration(run: &RunRecord) -> String {
    match run_seconds(run) {
        Some(seconds) if seconds < 10.0 => format!("{seconds:.1} s"),
        Some(seconds) if seconds < 600.0 => format!("{} s", seconds as u64),
        Some(seconds) => format!("{} min", seconds as u64 / 60),
        None => "—".to_string(),
    }
}

/// A run's counts that are not zero, as `12 users created, 3 memberships added`.
pub fn counts_summary(run: &RunRecord) -> String {
    counts_summary_of(&run.counts)
}

/// Counts that are not zero, in words ("no changes" when all are).
pub fn counts_summary_of(c: &crate::pipeline::plan::PlanCounts) -> String {
    let parts: Vec<String> = [
        (c.users_created, "users created"),
        (c.users_updated, "users updated"),
        (c.users_disabled, "users disabled"),
        (c.users_deleted, "users deleted"),
        (c.groups_created, "groups created"),
        (c.groups_updated, "groups updated"),
        (c.groups_deleted, "groups deleted"),
        (c.memberships_added, "memberships added"),
        (c.memberships_removed, "memberships removed"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    if parts.is_empty() {
        "no changes".to_string()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc_and_keep_their_machine_form() {
        let markup = time("2026-12-06T15:31:29.123Z").into_string();
        assert_eq!(
            markup,
            r#"<time datetime="2026-12-06T15:31:29.123Z">2026-12-06 15:31:29 UTC</time>"#
        );
    }

    #[test]
    fn text_from_the_directory_is_escaped() {
        let session = PageSession {
            actor: "<script>alert(1)</script>".to_string(),
            csrf: "c\"srf".to_string(),
        };
        let markup = page(&session, "T", "/ui/", html! {}).into_string();
        assert!(!markup.contains("<script>alert"));
        assert!(markup.contains("&lt;script&gt;"));
        assert!(markup.contains(r#"value="c&quot;srf""#));
    }
}
