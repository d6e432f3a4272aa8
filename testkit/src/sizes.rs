//! The sizes the scale benches run at: a preset from the command line (`--quick` for CI,
//! `--million` for issue 17's million-user case, the 100,000-user default otherwise), each
//! figure overridable by its environment variable (`IDSYNC_BENCH_USERS`, `_GROUPS`,
//! `_MEMBERSHIPS`, `_NESTING_DEPTH`).

// A bench given a wrong argument stops: that is its answer ([lints] in Cargo.toml denies
// panics in production code).
#![allow(clippy::panic)]

/// How large a generated directory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    pub users: usize,
    pub groups: usize,
    pub memberships: usize,
    /// Chains of this many nested groups, every second one closed into a cycle
    /// ([`crate::snapshot::nesting`]); `None`: one nested group per ten groups.
    pub nesting_depth: Option<usize>,
    /// The preset's name, for the bench's first line.
    pub preset: &'static str,
}

impl Sizes {
    /// A small directory that still has every shape (a 20-deep chain with a cycle), for
    /// CI: it checks that the bench runs, not how fast.
    pub const QUICK: Sizes = Sizes {
        users: 2_000,
        groups: 200,
        memberships: 10_000,
        nesting_depth: Some(20),
        preset: "quick",
    };
    /// The sizes the figures in docs/PERFORMANCE.md were measured at.
    pub const DEFAULT: Sizes = Sizes {
        users: 100_000,
        groups: 10_000,
        memberships: 500_000,
        nesting_depth: None,
        preset: "default",
    };
    /// A million users, 100,000 groups, 5,000,000 memberships, nesting 20 deep with cycles.
    pub const MILLION: Sizes = Sizes {
        users: 1_000_000,
        groups: 100_000,
        memberships: 5_000_000,
        nesting_depth: Some(20),
        preset: "million",
    };

    /// The preset the process's arguments name, with the environment's overrides.
    pub fn from_args_and_env() -> Sizes {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let env = |name: &str| std::env::var(name).ok();
        Sizes::from(&args, env)
    }

    /// [`Sizes::from_args_and_env`] over given arguments and environment.
    pub fn from(args: &[String], env: impl Fn(&str) -> Option<String>) -> Sizes {
        // `cargo bench` passes `--bench`; anything else unknown is a typo that would
        // otherwise run the 100,000-user default (minutes in CI's test profile).
        let known = ["--bench", "--quick", "--million"];
        if let Some(unknown) = args.iter().find(|a| !known.contains(&a.as_str())) {
            panic!("unknown argument {unknown:?}: the sizes are --quick and --million");
        }
        let named = |preset: &str| args.iter().any(|a| a == preset);
        let mut sizes = if named("--quick") {
            Sizes::QUICK
        } else if named("--million") {
            Sizes::MILLION
        } else {
            Sizes::DEFAULT
        };
        let number = |name: &str| env(name).and_then(|v| v.trim().parse::<usize>().ok());
        if let Some(n) = number("IDSYNC_BENCH_USERS") {
            sizes.users = n;
        }
        if let Some(n) = number("IDSYNC_BENCH_GROUPS") {
            sizes.groups = n;
        }
        if let Some(n) = number("IDSYNC_BENCH_MEMBERSHIPS") {
            sizes.memberships = n;
        }
        if let Some(n) = number("IDSYNC_BENCH_NESTING_DEPTH") {
            sizes.nesting_depth = (n > 1).then_some(n);
        }
        sizes
    }

    /// `quick: 2000 users, ...` for the bench's first line.
    pub fn describe(&self) -> String {
        let nesting = match self.nesting_depth {
            Some(depth) => format!("nesting {depth} deep with cycles"),
            None => "one nested group per ten".to_string(),
        };
        format!(
            "{}: {} users, {} groups, {} memberships, {nesting}",
            self.preset, self.users, self.groups, self.memberships
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn a_preset_comes_from_the_arguments_and_each_figure_from_its_variable() {
        let none = |_: &str| None;
        assert_eq!(Sizes::from(&args(&["--bench"]), none), Sizes::DEFAULT);
        assert_eq!(
            Sizes::from(&args(&["--bench", "--quick"]), none),
            Sizes::QUICK
        );
        assert_eq!(Sizes::from(&args(&["--million"]), none), Sizes::MILLION);
        let env = |name: &str| match name {
            "IDSYNC_BENCH_USERS" => Some("300000".to_string()),
            "IDSYNC_BENCH_NESTING_DEPTH" => Some("0".to_string()),
            _ => None,
        };
        let sizes = Sizes::from(&args(&["--million"]), env);
        assert_eq!((sizes.users, sizes.groups), (300_000, 100_000));
        assert_eq!(sizes.nesting_depth, None);
    }

    #[test]
    #[should_panic(expected = "unknown argument \"--quik\"")]
    fn a_mistyped_preset_stops_the_bench() {
        Sizes::from(&args(&["--quik"]), |_| None);
    }
}
