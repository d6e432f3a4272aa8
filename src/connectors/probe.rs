//! The listing steps of `diagnose` (`idsync check --connect`), done once for every API
//! kind: list users, list groups, then list the members of the first group, each a
//! one-item read, stopping at the first failure.
//!
//! What differs between kinds is how a read is made and what a refusal means: which
//! permission, role or scope to grant. That is the kind's [`ListingProbe`] hook; the order
//! of the steps, their names and the "permitted" wording are the same for all.

use async_trait::async_trait;

use super::Diagnosis;

/// One of the listings a read needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeListing<'a> {
    Users,
    Groups,
    /// The members of the group with this id.
    Members(&'a str),
}

impl ProbeListing<'_> {
    /// The step's name in the `check --connect` output.
    pub fn check(&self) -> &'static str {
        match self {
            ProbeListing::Users => "list users",
            ProbeListing::Groups => "list groups",
            ProbeListing::Members(_) => "list group members",
        }
    }
}

/// A kind's side of the probe.
#[async_trait]
pub trait ListingProbe: Sync {
    /// A one-item read of `listing`: the id of the item read (if any, and usable in a
    /// URL), or the failed step, worded with the permission the kind needs.
    async fn probe_listing(&self, listing: ProbeListing<'_>) -> Result<Option<String>, Diagnosis>;

    /// What to report when there is no group to list members of; `None` reports nothing.
    fn no_group_note(&self) -> Option<&'static str> {
        None
    }
}

/// `diagnose` of an API kind: the token step when the kind has one (its name, and the
/// detail shown whether it worked or not), then the listing steps, stopping at the first
/// failure. The steps, and whether every one passed (a kind may have more to try).
pub async fn token_then_listings(
    probe: &dyn ListingProbe,
    token: Option<(&'static str, Result<String, String>)>,
) -> (Vec<Diagnosis>, bool) {
    let mut checks = Vec::new();
    match token {
        Some((step, Ok(detail))) => checks.push(Diagnosis::ok(step, detail)),
        Some((step, Err(detail))) => {
            checks.push(Diagnosis::failed(step, detail));
            return (checks, false);
        }
        None => {}
    }
    let passed = probe_listings(probe, &mut checks).await;
    (checks, passed)
}

/// Runs the listing steps into `checks`; whether every one passed.
pub async fn probe_listings(probe: &dyn ListingProbe, checks: &mut Vec<Diagnosis>) -> bool {
    for listing in [ProbeListing::Users, ProbeListing::Groups] {
        match probe.probe_listing(listing).await {
            Ok(first) => {
                checks.push(Diagnosis::ok(listing.check(), "permitted"));
                if listing == ProbeListing::Groups {
                    return probe_members(probe, first.as_deref(), checks).await;
                }
            }
            Err(failed) => {
                checks.push(failed);
                return false;
            }
        }
    }
    true
}

async fn probe_members(
    probe: &dyn ListingProbe,
    group: Option<&str>,
    checks: &mut Vec<Diagnosis>,
) -> bool {
    let Some(id) = group else {
        if let Some(note) = probe.no_group_note() {
            checks.push(Diagnosis::ok(ProbeListing::Members("").check(), note));
        }
        return true;
    };
    let listing = ProbeListing::Members(id);
    match probe.probe_listing(listing).await {
        Ok(_) => {
            checks.push(Diagnosis::ok(listing.check(), "permitted"));
            true
        }
        Err(failed) => {
            checks.push(failed);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lists one group `g1`; refuses the listing named in `refuse`.
    struct Fake {
        refuse: Option<&'static str>,
        groups: bool,
        note: Option<&'static str>,
    }

    #[async_trait]
    impl ListingProbe for Fake {
        async fn probe_listing(
            &self,
            listing: ProbeListing<'_>,
        ) -> Result<Option<String>, Diagnosis> {
            if self.refuse == Some(listing.check()) {
                return Err(Diagnosis::failed(listing.check(), "forbidden"));
            }
            Ok(self.groups.then(|| "g1".to_string()))
        }

        fn no_group_note(&self) -> Option<&'static str> {
            self.note
        }
    }

    async fn run(
        refuse: Option<&'static str>,
        groups: bool,
        note: Option<&'static str>,
    ) -> (bool, Vec<(&'static str, bool)>) {
        let fake = Fake {
            refuse,
            groups,
            note,
        };
        let mut checks = Vec::new();
        let passed = probe_listings(&fake, &mut checks).await;
        (passed, checks.iter().map(|d| (d.check, d.ok)).collect())
    }

    #[tokio::test]
    async fn steps_run_in_order_and_stop_at_the_first_failure() {
        let all = run(None, true, None).await;
        assert_eq!(
            all,
            (
                true,
                vec![
                    ("list users", true),
                    ("list groups", true),
                    ("list group members", true)
                ]
            )
        );
        let refused = run(Some("list groups"), true, None).await;
        assert_eq!(
            refused,
            (false, vec![("list users", true), ("list groups", false)])
        );
    }

    #[tokio::test]
    async fn no_group_is_noted_only_when_the_kind_says_so() {
        let silent = run(None, false, None).await;
        assert_eq!(silent.1.len(), 2);
        let noted = run(None, false, Some("none")).await;
        assert_eq!(noted.1.last(), Some(&("list group members", true)));
    }
}
