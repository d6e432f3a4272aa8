//! Tests of the scheduler, on tokio's paused clock (virtual time only).

use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{FixedOffset, TimeZone};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::*;

const EVERY_MINUTE: &str = "0 * * * * *";
const HOURLY: &str = "0 0 * * * *";

/// 2025-01-01 00:00:30 UTC: the virtual clock's start.
fn base() -> DateTime<Utc> {
    at(0, 0, 30)
}

fn at(hour: u32, minute: u32, second: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, hour, minute, second)
        .single()
        .expect("valid time")
}

fn job(connector: &str, schedule: &str) -> Job {
    Job::new(
        connector,
        Some(Schedule::parse(schedule).expect("schedule")),
    )
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Started(String, Trigger, DateTime<Utc>),
    Ended(String, DateTime<Utc>),
}

/// Records every run; when `block` is set, each run waits until released.
struct TestLauncher {
    clock: TokioClock,
    block: bool,
    events: mpsc::UnboundedSender<Event>,
    releases: Mutex<Vec<(String, oneshot::Sender<RunResult>)>>,
    calls: AtomicUsize,
}

#[async_trait::async_trait]
impl RunLauncher for TestLauncher {
    async fn run(&self, connector: &str, trigger: Trigger) -> RunResult {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let _ = self.events.send(Event::Started(
            connector.to_owned(),
            trigger,
            self.clock.now(),
        ));
        let result = if self.block {
            let (tx, rx) = oneshot::channel();
            self.releases
                .lock()
                .expect("lock")
                .push((connector.to_owned(), tx));
            rx.await.unwrap_or(RunResult::Failed("dropped".to_owned()))
        } else {
            RunResult::Finished
        };
        let _ = self
            .events
            .send(Event::Ended(connector.to_owned(), self.clock.now()));
        result
    }
}

struct Harness {
    clock: TokioClock,
    launcher: Arc<TestLauncher>,
    handle: SchedulerHandle,
    events: mpsc::UnboundedReceiver<Event>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Harness {
    fn start(jobs: Vec<Job>, block: bool, max_concurrent: usize) -> Harness {
        Harness::start_at(base(), jobs, block, max_concurrent)
    }

    /// Like [`Harness::start`], on a virtual clock starting at `start`.
    fn start_at(
        start: DateTime<Utc>,
        jobs: Vec<Job>,
        block: bool,
        max_concurrent: usize,
    ) -> Harness {
        let clock = TokioClock::starting_at(start);
        let (events_tx, events) = mpsc::unbounded_channel();
        let launcher = Arc::new(TestLauncher {
            clock,
            block,
            events: events_tx,
            releases: Mutex::new(Vec::new()),
            calls: AtomicUsize::new(0),
        });
        let scheduler = Scheduler::with_clock(
            jobs,
            Arc::clone(&launcher) as Arc<dyn RunLauncher>,
            max_concurrent,
            Arc::new(clock),
        );
        let handle = scheduler.handle();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(scheduler.run(async move {
            let _ = stopped.await;
        }));
        Harness {
            clock,
            launcher,
            handle,
            events,
            stop: Some(stop),
            task,
        }
    }

    /// The next event, within an hour of virtual time.
    async fn next_event(&mut self) -> Event {
        tokio::time::timeout(Duration::from_secs(3600), self.events.recv())
            .await
            .expect("an event within an hour")
            .expect("launcher alive")
    }

    fn no_event(&mut self) {
        assert_eq!(self.events.try_recv().ok(), None);
    }

    async fn sleep_until(&self, time: DateTime<Utc>) {
        let wait = (time - self.clock.now()).to_std().expect("in the future");
        tokio::time::sleep(wait).await;
    }

    fn release(&self, connector: &str) {
        let mut releases = self.launcher.releases.lock().expect("lock");
        let index = releases
            .iter()
            .position(|(name, _)| name == connector)
            .expect("a blocked run");
        let (_, tx) = releases.remove(index);
        tx.send(RunResult::Finished).expect("run waiting");
    }

    fn status(&self, connector: &str) -> JobStatus {
        self.handle
            .status()
            .into_iter()
            .find(|status| status.connector == connector)
            .expect("job")
    }

    fn calls(&self) -> usize {
        self.launcher.calls.load(Ordering::SeqCst)
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).expect("scheduler running");
        }
        self.task.await.expect("scheduler task");
    }
}

fn started(connector: &str, trigger: Trigger, time: DateTime<Utc>) -> Event {
    Event::Started(connector.to_owned(), trigger, time)
}

#[tokio::test(start_paused = true)]
async fn every_minute_fires_at_the_right_virtual_times() {
    let mut h = Harness::start(vec![job("a", EVERY_MINUTE)], false, 4);
    assert_eq!(h.status("a").next_run, Some(at(0, 1, 0)));
    for minute in 1..=3 {
        let time = at(0, minute, 0);
        assert_eq!(h.next_event().await, started("a", Trigger::Schedule, time));
        assert_eq!(h.next_event().await, Event::Ended("a".to_owned(), time));
    }
    let status = h.status("a");
    assert!(!status.running);
    assert_eq!(status.next_run, Some(at(0, 4, 0)));
    assert_eq!(status.last_result.as_deref(), Some("finished"));
    assert_eq!(status.skipped_overlaps, 0);
    h.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_due_run_is_skipped_while_the_connector_runs() {
    let mut h = Harness::start(vec![job("a", EVERY_MINUTE)], true, 4);
    assert_eq!(
        h.next_event().await,
        started("a", Trigger::Schedule, at(0, 1, 0))
    );
    h.sleep_until(at(0, 2, 10)).await;
    h.no_event();
    let status = h.status("a");
    assert!(status.running);
    assert_eq!(status.skipped_overlaps, 1);
    assert_eq!(status.next_run, Some(at(0, 3, 0)));

    h.release("a");
    assert_eq!(
        h.next_event().await,
        Event::Ended("a".to_owned(), at(0, 2, 10))
    );
    assert_eq!(
        h.next_event().await,
        started("a", Trigger::Schedule, at(0, 3, 0))
    );
    assert_eq!(h.calls(), 2);
    h.release("a");
    h.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn max_concurrent_one_serialises_two_connectors() {
    let mut h = Harness::start(vec![job("a", HOURLY), job("b", HOURLY)], true, 1);
    let Event::Started(first, _, time) = h.next_event().await else {
        panic!("expected a start");
    };
    assert_eq!(time, at(1, 0, 0));
    h.sleep_until(at(1, 0, 40)).await;
    h.no_event();
    assert_eq!(h.calls(), 1);
    assert!(h.status("a").running && h.status("b").running);

    let second = if first == "a" { "b" } else { "a" };
    h.release(&first);
    assert_eq!(h.next_event().await, Event::Ended(first, at(1, 0, 40)));
    assert_eq!(
        h.next_event().await,
        started(second, Trigger::Schedule, at(1, 0, 40))
    );
    h.release(second);
    h.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn run_now_starts_immediately_and_refuses_while_running() {
    let mut h = Harness::start(vec![job("a", HOURLY)], true, 4);
    h.handle.run_now("a").expect("triggered");
    assert_eq!(h.next_event().await, started("a", Trigger::Manual, base()));
    assert_eq!(
        h.handle.run_now("a"),
        Err(TriggerError::AlreadyRunning("a".to_owned()))
    );
    h.release("a");
    assert_eq!(h.next_event().await, Event::Ended("a".to_owned(), base()));
    h.handle.run_now("a").expect("triggered again");
    assert_eq!(h.next_event().await, started("a", Trigger::Manual, base()));
    h.release("a");
    h.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn run_now_of_an_unknown_connector_is_an_error() {
    let h = Harness::start(vec![job("a", HOURLY)], false, 4);
    assert_eq!(
        h.handle.run_now("nope"),
        Err(TriggerError::UnknownConnector("nope".to_owned()))
    );
    h.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn on_demand_jobs_only_run_when_triggered() {
    let mut h = Harness::start(vec![Job::new("manual", None)], false, 4);
    assert_eq!(h.status("manual").next_run, None);
    h.handle.run_now("manual").expect("triggered");
    assert_eq!(
        h.next_event().await,
        started("manual", Trigger::Manual, base())
    );
    h.sleep_until(at(5, 0, 0)).await;
    assert_eq!(h.calls(), 1);
    h.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_the_running_run_and_starts_no_more() {
    let mut h = Harness::start(vec![job("a", EVERY_MINUTE)], true, 4);
    assert_eq!(
        h.next_event().await,
        started("a", Trigger::Schedule, at(0, 1, 0))
    );
    let stop = h.stop.take().expect("stop");
    stop.send(()).expect("scheduler running");
    h.sleep_until(at(0, 5, 0)).await;
    assert!(!h.task.is_finished());
    assert_eq!(h.calls(), 1);
    assert_eq!(h.handle.run_now("a"), Err(TriggerError::Stopped));

    h.release("a");
    assert_eq!(
        h.next_event().await,
        Event::Ended("a".to_owned(), at(0, 5, 0))
    );
    h.sleep_until(at(0, 5, 1)).await;
    assert!(h.task.is_finished());
    assert_eq!(h.calls(), 1);
    assert_eq!(h.handle.run_now("a"), Err(TriggerError::Stopped));
    h.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_drops_runs_waiting_for_a_slot() {
    let mut h = Harness::start(vec![job("a", HOURLY), job("b", HOURLY)], true, 1);
    let Event::Started(first, _, _) = h.next_event().await else {
        panic!("expected a start");
    };
    let stop = h.stop.take().expect("stop");
    stop.send(()).expect("scheduler running");
    h.sleep_until(at(1, 0, 1)).await;
    h.release(&first);
    h.sleep_until(at(1, 30, 0)).await;
    assert!(h.task.is_finished());
    assert_eq!(h.calls(), 1);
    assert!(h.handle.status().iter().all(|status| !status.running));
    h.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn jitter_delays_the_run_by_the_stable_amount() {
    let jitter = Duration::from_secs(30);
    let mut h = Harness::start(vec![job("a", EVERY_MINUTE).with_jitter(jitter)], false, 4);
    let fire = at(0, 1, 0);
    let delay = TimeDelta::from_std(jitter_delay("a", fire, jitter)).expect("delay");
    assert_eq!(
        h.next_event().await,
        started("a", Trigger::Schedule, fire + delay)
    );
    h.shutdown().await;
}

#[test]
fn jitter_stays_within_bounds_and_is_stable() {
    let jitter = Duration::from_secs(90);
    let mut distinct = std::collections::BTreeSet::new();
    for minute in 0..200 {
        let fire = base() + TimeDelta::minutes(minute);
        let delay = jitter_delay("okta-main", fire, jitter);
        assert!(delay < jitter);
        assert_eq!(delay, jitter_delay("okta-main", fire, jitter));
        distinct.insert(delay);
    }
    assert!(distinct.len() > 150, "delays spread out");
    let fire = at(3, 0, 0);
    assert_ne!(
        jitter_delay("a", fire, jitter),
        jitter_delay("b", fire, jitter)
    );
    assert_eq!(jitter_delay("a", fire, Duration::ZERO), Duration::ZERO);
    assert!(jitter_delay("a", fire, Duration::from_micros(999)).is_zero());
}

#[test]
fn schedules_are_read_in_their_fixed_offset() {
    let daily_at_three = Schedule::parse("0 0 3 * * *").expect("schedule");
    let plus_two = ScheduleZone::Fixed(FixedOffset::east_opt(2 * 3600).expect("offset"));
    assert_eq!(
        next_fire(&daily_at_three, plus_two, at(0, 0, 30)),
        Some(at(1, 0, 0))
    );
    assert_eq!(
        next_fire(&daily_at_three, ScheduleZone::default(), at(0, 0, 30)),
        Some(at(3, 0, 0))
    );
    // A fixed offset does not follow daylight saving: 03:00 at +01:00 is 02:00 UTC
    // on both sides of Europe's change (2026-03-29).
    let plus_one = ScheduleZone::Fixed(FixedOffset::east_opt(3600).expect("offset"));
    let daily = Schedule::parse("0 3 * * *").expect("schedule");
    assert_eq!(
        next_fire(&daily, plus_one, utc(2026, 3, 28, 12, 0)),
        Some(utc(2026, 3, 29, 2, 0))
    );
    assert_eq!(
        next_fire(&daily, plus_one, utc(2026, 3, 29, 12, 0)),
        Some(utc(2026, 3, 30, 2, 0))
    );
}

fn utc(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(year, month, day, hour, minute, 0)
        .single()
        .expect("valid time")
}

const BERLIN: ScheduleZone = ScheduleZone::Named(chrono_tz::Europe::Berlin);

/// Every fire of `schedule` in `zone` after `from`, up to `until`.
fn fires_between(
    schedule: &str,
    zone: ScheduleZone,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    let schedule = Schedule::parse(schedule).expect("schedule");
    let mut out = Vec::new();
    let mut after = from;
    while let Some(fire) = next_fire(&schedule, zone, after).filter(|fire| *fire <= until) {
        out.push(fire);
        after = fire;
    }
    out
}

#[test]
fn a_daily_run_in_a_skipped_hour_runs_once_after_the_gap() {
    // 2026-03-29, the last Sunday of March: Berlin goes from 02:00 CET straight
    // to 03:00 CEST (01:00 UTC), so 02:30 does not happen that day.
    assert_eq!(
        fires_between(
            "30 2 * * *",
            BERLIN,
            utc(2026, 3, 27, 12, 0),
            utc(2026, 3, 30, 12, 0)
        ),
        [
            utc(2026, 3, 28, 1, 30), // 02:30 CET
            utc(2026, 3, 29, 1, 0),  // 03:00 CEST, the end of the gap
            utc(2026, 3, 30, 0, 30), // 02:30 CEST
        ]
    );
}

#[test]
fn a_daily_run_in_a_repeated_hour_runs_once() {
    // 2026-10-25, the last Sunday of October: Berlin goes from 03:00 CEST back to
    // 02:00 CET (01:00 UTC), so 02:30 happens at 00:30 and again at 01:30 UTC.
    assert_eq!(
        fires_between(
            "30 2 * * *",
            BERLIN,
            utc(2026, 10, 24, 12, 0),
            utc(2026, 10, 26, 12, 0)
        ),
        [
            utc(2026, 10, 25, 0, 30), // 02:30 CEST, the first pass
            utc(2026, 10, 26, 1, 30), // 02:30 CET
        ]
    );
    // Planned from inside the second pass (a restart at 02:45 CET), it waits
    // for the next day rather than running 02:30 again.
    let daily = Schedule::parse("30 2 * * *").expect("schedule");
    assert_eq!(
        next_fire(&daily, BERLIN, utc(2026, 10, 25, 1, 45)),
        Some(utc(2026, 10, 26, 1, 30))
    );
}

#[test]
fn several_fixed_times_run_once_across_changes_as_in_crontab() {
    // 02:00 and 02:30 are both skipped on 2026-03-29: one run when the clocks
    // have gone forward, then the next day's times.
    assert_eq!(
        fires_between(
            "0,30 2 * * *",
            BERLIN,
            utc(2026, 3, 28, 12, 0),
            utc(2026, 3, 30, 12, 0)
        ),
        [
            utc(2026, 3, 29, 1, 0),  // 03:00 CEST, the end of the gap
            utc(2026, 3, 30, 0, 0),  // 02:00 CEST
            utc(2026, 3, 30, 0, 30), // 02:30 CEST
        ]
    );
    // Both happen twice on 2026-10-25: each runs on its first pass only.
    assert_eq!(
        fires_between(
            "0,30 2 * * *",
            BERLIN,
            utc(2026, 10, 24, 12, 0),
            utc(2026, 10, 26, 12, 0)
        ),
        [
            utc(2026, 10, 25, 0, 0),  // 02:00 CEST
            utc(2026, 10, 25, 0, 30), // 02:30 CEST
            utc(2026, 10, 26, 1, 0),  // 02:00 CET
            utc(2026, 10, 26, 1, 30), // 02:30 CET
        ]
    );
    // The form with seconds, a time in the gap: once, at its end.
    assert_eq!(
        fires_between(
            "20 15 2 * * *",
            BERLIN,
            utc(2026, 3, 28, 12, 0),
            utc(2026, 3, 29, 12, 0)
        ),
        [utc(2026, 3, 29, 1, 0)]
    );
}

#[test]
fn a_repeating_schedule_follows_the_clock_across_changes() {
    // Every 30 minutes: nothing in the skipped hour, both passes of the repeated one.
    assert_eq!(
        fires_between(
            "*/30 * * * *",
            BERLIN,
            utc(2026, 3, 29, 0, 15),
            utc(2026, 3, 29, 1, 45)
        ),
        [
            utc(2026, 3, 29, 0, 30), // 01:30 CET
            utc(2026, 3, 29, 1, 0),  // 03:00 CEST
            utc(2026, 3, 29, 1, 30), // 03:30 CEST
        ]
    );
    assert_eq!(
        fires_between(
            "*/30 * * * *",
            BERLIN,
            utc(2026, 10, 24, 23, 45),
            utc(2026, 10, 25, 1, 45)
        ),
        [
            utc(2026, 10, 25, 0, 0),  // 02:00 CEST
            utc(2026, 10, 25, 0, 30), // 02:30 CEST
            utc(2026, 10, 25, 1, 0),  // 02:00 CET
            utc(2026, 10, 25, 1, 30), // 02:30 CET
        ]
    );
}

/// The runs the scheduler started, in order, draining the events.
fn runs_started(h: &mut Harness) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    while let Ok(event) = h.events.try_recv() {
        if let Event::Started(_, Trigger::Schedule, time) = event {
            out.push(time);
        }
    }
    out
}

#[tokio::test(start_paused = true)]
async fn the_scheduler_runs_a_berlin_job_once_on_both_change_days() {
    let job = || job("a", "30 2 * * *").with_timezone(BERLIN);

    let mut h = Harness::start_at(utc(2026, 3, 28, 12, 0), vec![job()], false, 4);
    h.sleep_until(utc(2026, 3, 30, 12, 0)).await;
    assert_eq!(
        runs_started(&mut h),
        [utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)]
    );
    h.shutdown().await;

    let mut h = Harness::start_at(utc(2026, 10, 24, 12, 0), vec![job()], false, 4);
    h.sleep_until(utc(2026, 10, 26, 12, 0)).await;
    assert_eq!(
        runs_started(&mut h),
        [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
    );
    h.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn replaced_jobs_keep_their_state_and_fire_on_the_new_schedules() {
    let mut h = Harness::start(vec![job("a", HOURLY), job("b", HOURLY)], true, 4);
    h.handle.run_now("a").expect("run a");
    assert_eq!(h.next_event().await, started("a", Trigger::Manual, base()));

    h.handle
        .replace_jobs(vec![job("a", HOURLY), job("c", EVERY_MINUTE)]);
    let a = h.status("a");
    assert!(a.running, "a run in progress stays known");
    assert_eq!(a.next_run, Some(at(1, 0, 0)));
    assert!(h.handle.status().iter().all(|s| s.connector != "b"));
    assert_eq!(
        h.handle.run_now("a"),
        Err(TriggerError::AlreadyRunning("a".to_owned()))
    );
    assert_eq!(
        h.handle.run_now("b"),
        Err(TriggerError::UnknownConnector("b".to_owned()))
    );
    // On time: the loop, asleep until 00:01:30 at most, was woken to plan `c`.
    assert_eq!(
        h.next_event().await,
        started("c", Trigger::Schedule, at(0, 1, 0))
    );

    // A changed schedule is planned afresh.
    h.handle
        .replace_jobs(vec![job("a", EVERY_MINUTE), job("c", EVERY_MINUTE)]);
    assert_eq!(h.status("a").next_run, Some(at(0, 2, 0)));
    h.release("a");
    h.release("c");
    h.shutdown().await;
}
