//! The per-client budget of failed authentications. Credentials are checked before a
//! tenant's rate limit, so a flood of bad tokens never spends the tenant's quota; instead
//! each client address may fail only so often per minute, after which its failures are
//! answered 429 with `Retry-After`. Valid credentials are never refused by this budget
//! (they never reach it), whoever else fails from the same address.
//!
//! The table of clients is bounded: an attacker rotating addresses cannot grow it past
//! [`MAX_CLIENTS`]. When it is full of clients still inside their window, a failure from
//! a new address is answered 429 as well (it only ever affects requests that failed to
//! authenticate).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most client addresses tracked at once.
pub const MAX_CLIENTS: usize = 10_000;

/// The window failures are counted in.
const WINDOW: Duration = Duration::from_secs(60);

/// The key a client's failures are counted under: its IPv4 address, or the /64 network of
/// an IPv6 address (one host usually holds a whole /64, and could otherwise rotate through
/// it and never meet its budget).
fn key(client: IpAddr) -> IpAddr {
    match client.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

/// Failed authentications per client address within the current window.
pub(super) struct AuthFailures {
    per_window: u32,
    clients: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl AuthFailures {
    pub fn new(per_minute: u32) -> AuthFailures {
        AuthFailures {
            per_window: per_minute.max(1),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one failure of `client` at `now`: None while within its budget, otherwise
    /// the seconds until it may fail again.
    pub fn fail(&self, client: IpAddr, now: Instant) -> Option<u64> {
        let client = key(client);
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if !clients.contains_key(&client) && clients.len() >= MAX_CLIENTS {
            clients.retain(|_, (start, _)| now.saturating_duration_since(*start) < WINDOW);
            if clients.len() >= MAX_CLIENTS {
                return Some(WINDOW.as_secs());
            }
        }
        let entry = clients.entry(client).or_insert((now, 0));
        if now.saturating_duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        if entry.1 <= self.per_window {
            return None;
        }
        let left = WINDOW.saturating_sub(now.saturating_duration_since(entry.0));
        Some((left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1))
    }

    /// Whether `client` has used up its budget (without counting anything): the seconds
    /// until it may try again. Tenants whose secret a person chose (HTTP Basic) refuse such
    /// a client before looking at its password, so guesses stay limited.
    pub fn blocked(&self, client: IpAddr, now: Instant) -> Option<u64> {
        let client = key(client);
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let (start, count) = clients.get(&client)?;
        let elapsed = now.saturating_duration_since(*start);
        if elapsed >= WINDOW || *count < self.per_window {
            return None;
        }
        let left = WINDOW - elapsed;
        Some((left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1))
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.clients.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_client_is_counted_by_its_64() {
        let failures = AuthFailures::new(2);
        let now = Instant::now();
        let addr = |n: u16| IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 7, 0, 0, 0, n));
        assert_eq!(failures.fail(addr(1), now), None);
        assert_eq!(failures.blocked(addr(1), now), None);
        assert_eq!(failures.fail(addr(2), now), None);
        // The budget is used up: the /64 is blocked, and a third address of it is the
        // same client.
        assert!(failures.blocked(addr(1), now).is_some());
        assert!(failures.fail(addr(3), now).is_some());
        assert!(failures.blocked(addr(99), now).is_some());
        let other = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 8, 0, 0, 0, 1));
        assert_eq!(failures.blocked(other, now), None);
        // The window passes.
        assert_eq!(failures.blocked(addr(1), now + WINDOW), None);
    }

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(n))
    }

    #[test]
    fn each_client_has_its_own_budget_per_window() {
        let failures = AuthFailures::new(3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(failures.fail(ip(1), t0), None);
        }
        assert_eq!(failures.fail(ip(1), t0 + Duration::from_secs(10)), Some(50));
        // Another address is not affected.
        assert_eq!(failures.fail(ip(2), t0), None);
        // A new window, a new budget.
        assert_eq!(failures.fail(ip(1), t0 + Duration::from_secs(61)), None);
    }

    #[test]
    fn the_table_stays_bounded_under_rotating_addresses() {
        let failures = AuthFailures::new(5);
        let t0 = Instant::now();
        for n in 0..MAX_CLIENTS as u32 {
            assert_eq!(failures.fail(ip(n), t0), None);
        }
        // Full of live clients: a newcomer's failure is refused, and not tracked.
        assert_eq!(failures.fail(ip(u32::MAX), t0), Some(60));
        assert_eq!(failures.tracked(), MAX_CLIENTS);
        // Once their windows are over, the old entries make room.
        let later = t0 + Duration::from_secs(60);
        assert_eq!(failures.fail(ip(u32::MAX), later), None);
        assert_eq!(failures.tracked(), 1);
    }
}
