//! The scheduler of `idsync serve`: runs each enabled pull connector on its
//! cron schedule.
//!
//! - Every [`Job`] has an optional cron [`Schedule`] (without one, the
//!   connector only runs when triggered), a time zone and an optional jitter.
//! - Time zones are IANA names (`Europe/Berlin`, following daylight saving)
//!   or fixed UTC offsets ([`ScheduleZone`]; UTC by default). A schedule of
//!   fixed times of day runs once on the days the clocks change: at the end
//!   of a skipped hour, at the first pass of a repeated one ([`next_fire`]).
//! - Jitter delays each fire by a pseudo-random amount in `[0, jitter)`,
//!   derived from a hash of the connector id and the fire time, so the delay
//!   is the same every time for the same connector and fire time
//!   ([`jitter_delay`]).
//! - A connector never runs twice at once: a run that falls due while the
//!   same connector is still running (or waiting for a slot) is skipped,
//!   logged and counted ([`JobStatus::skipped_overlaps`]); the next fire
//!   time is computed from the moment of the skip.
//! - At most `max_concurrent` runs go at once across all connectors; the
//!   others wait for a slot (and say so in the log).
//! - [`SchedulerHandle::run_now`] starts a run immediately (subject to the
//!   same rules), and [`SchedulerHandle::status`] reports every job.
//! - [`SchedulerHandle::replace_jobs`] swaps in another set of jobs (a
//!   configuration reload): runs in progress go on, a connector whose
//!   schedule did not change keeps its next fire time.
//! - [`Scheduler::run`] goes until its shutdown future resolves, then starts
//!   nothing more (runs still waiting for a slot are dropped) and waits for
//!   the runs in progress.
//!
//! Fire times come from a [`Clock`]: the wall clock in production
//! ([`SystemClock`]), or [`TokioClock`] (a fixed start plus tokio's elapsed
//! time) under `tokio::time::pause()` in tests. The scheduler sleeps with
//! `tokio::time::sleep_until`, at most [`MAX_SLEEP`] at a time, so that a
//! change of the wall clock is noticed within that time.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::{Semaphore, TryAcquireError, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::config::{Schedule, ScheduleZone};

mod clocks;
mod timing;

pub use clocks::{Clock, SystemClock, TokioClock};
pub use timing::{jitter_delay, next_fire};

#[cfg(test)]
mod tests;

/// The longest the scheduler sleeps before looking at the clock again.
pub const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Starts one run of a connector; the scheduler awaits it. Implemented by
/// the daemon over `sync::sync`.
#[async_trait::async_trait]
pub trait RunLauncher: Send + Sync + 'static {
    /// Runs `connector` once, to the end.
    async fn run(&self, connector: &str, trigger: Trigger) -> RunResult;

    /// Runs `connector` for the schedule's fire time `slot` (before jitter). Nodes sharing
    /// a database claim each slot once between them, so clocks that differ do not run a
    /// slot twice; the default has nothing to share and just runs.
    async fn run_scheduled(&self, connector: &str, slot: DateTime<Utc>) -> RunResult {
        let _ = slot;
        self.run(connector, Trigger::Schedule).await
    }
}

/// Why a run was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Its cron schedule fell due.
    Schedule,
    /// Someone asked for it ([`SchedulerHandle::run_now`]).
    Manual,
}

impl Trigger {
    /// `schedule` or `manual`.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunResult {
    /// The run went to the end.
    Finished,
    /// The run failed, for the reason given.
    Failed(String),
    /// The run did not happen, for the reason given (e.g. another node holds
    /// the connector's lock).
    Skipped(String),
}

/// `finished`, `failed: <reason>` or `skipped: <reason>`.
impl fmt::Display for RunResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunResult::Finished => f.write_str("finished"),
            RunResult::Failed(reason) => write!(f, "failed: {reason}"),
            RunResult::Skipped(reason) => write!(f, "skipped: {reason}"),
        }
    }
}

/// One connector to schedule.
#[derive(Debug, Clone)]
pub struct Job {
    /// The connector's id.
    pub connector: String,
    /// When it runs by itself; `None` when it only runs on demand.
    pub schedule: Option<Schedule>,
    /// The time zone the schedule is read in.
    pub timezone: ScheduleZone,
    /// Each fire is delayed by a stable pseudo-random amount in
    /// `[0, jitter)`; zero for none.
    pub jitter: Duration,
}

impl Job {
    /// A job in UTC without jitter.
    pub fn new(connector: impl Into<String>, schedule: Option<Schedule>) -> Job {
        Job {
            connector: connector.into(),
            schedule,
            timezone: ScheduleZone::default(),
            jitter: Duration::ZERO,
        }
    }

    /// The same job with its schedule read in `timezone`.
    pub fn with_timezone(mut self, timezone: ScheduleZone) -> Job {
        self.timezone = timezone;
        self
    }

    /// The same job with `jitter`.
    pub fn with_jitter(mut self, jitter: Duration) -> Job {
        self.jitter = jitter;
        self
    }
}

/// Why [`SchedulerHandle::run_now`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    /// No job has this connector id.
    #[error("connector `{0}` is not known to the scheduler")]
    UnknownConnector(String),
    /// The connector is running (or waiting for a run slot) already.
    #[error("connector `{0}` is already running")]
    AlreadyRunning(String),
    /// The scheduler is shutting down, has stopped, or was never started.
    #[error("the scheduler is not running")]
    Stopped,
}

/// What the scheduler knows of one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatus {
    /// The connector's id.
    pub connector: String,
    /// The schedule as written; `None` for on-demand connectors.
    pub schedule: Option<String>,
    /// Whether a run is in progress (or waiting for a run slot).
    pub running: bool,
    /// When the next scheduled run is due (jitter included).
    pub next_run: Option<DateTime<Utc>>,
    /// How the last run ended ([`RunResult`]'s display form).
    pub last_result: Option<String>,
    /// How many due runs were skipped because the connector was running.
    pub skipped_overlaps: u64,
}

/// Runs connectors on their schedules; see the module documentation.
pub struct Scheduler {
    shared: Arc<Shared>,
    requests_tx: mpsc::UnboundedSender<String>,
    requests_rx: mpsc::UnboundedReceiver<String>,
}

/// Triggers runs and reads the status of a [`Scheduler`]; cheap to clone.
#[derive(Clone)]
pub struct SchedulerHandle {
    shared: Arc<Shared>,
    requests: mpsc::UnboundedSender<String>,
}

struct Shared {
    state: Mutex<State>,
    launcher: Arc<dyn RunLauncher>,
    semaphore: Arc<Semaphore>,
    clock: Arc<dyn Clock>,
    /// Wakes the loop when the jobs were replaced (it may be asleep until an old due time).
    replaced: tokio::sync::Notify,
}

struct State {
    jobs: BTreeMap<String, JobState>,
    shutting_down: bool,
}

struct JobState {
    job: Job,
    /// The next fire time of the schedule.
    next_fire: Option<DateTime<Utc>>,
    /// `next_fire` plus the jitter.
    next_due: Option<DateTime<Utc>>,
    running: bool,
    last_result: Option<String>,
    skipped_overlaps: u64,
}

impl JobState {
    /// A job that has not run here yet, its next fire planned after `now`.
    fn planned(job: Job, now: DateTime<Utc>) -> JobState {
        let mut state = JobState {
            job,
            next_fire: None,
            next_due: None,
            running: false,
            last_result: None,
            skipped_overlaps: 0,
        };
        state.plan(now);
        state
    }

    /// Sets the next fire after `after`, and shows it in `idsync_next_run_timestamp_seconds`.
    fn plan(&mut self, after: DateTime<Utc>) {
        let job = &self.job;
        self.next_fire = job
            .schedule
            .as_ref()
            .and_then(|schedule| next_fire(schedule, job.timezone, after));
        self.next_due = self.next_fire.and_then(|fire| {
            TimeDelta::from_std(jitter_delay(&job.connector, fire, job.jitter))
                .ok()
                .and_then(|delay| fire.checked_add_signed(delay))
        });
        let connector = [job.connector.as_str()];
        match self.next_due {
            Some(due) => crate::metrics::NEXT_RUN
                .with_label_values(&connector)
                .set(crate::metrics::timestamp_seconds(due)),
            // On demand only (or a schedule with no fire left): no time to show.
            None => {
                let _ = crate::metrics::NEXT_RUN.remove_label_values(&connector);
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The tokio instant to wake at for wall time `at`, at most
    /// [`MAX_SLEEP`] away.
    fn wake_at(&self, at: DateTime<Utc>) -> Instant {
        let now = Instant::now();
        let wait = (at - self.clock.now()).to_std().unwrap_or(Duration::ZERO);
        now + wait.min(MAX_SLEEP)
    }
}

impl Scheduler {
    /// A scheduler on the system clock. `max_concurrent` is the most runs
    /// going at once (0 counts as 1). Of two jobs with the same connector,
    /// the later one is kept.
    pub fn new(jobs: Vec<Job>, launcher: Arc<dyn RunLauncher>, max_concurrent: usize) -> Self {
        Scheduler::with_clock(jobs, launcher, max_concurrent, Arc::new(SystemClock))
    }

    /// A scheduler reading the time from `clock`.
    pub fn with_clock(
        jobs: Vec<Job>,
        launcher: Arc<dyn RunLauncher>,
        max_concurrent: usize,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let now = clock.now();
        let mut states = BTreeMap::new();
        for job in jobs {
            let state = JobState::planned(job, now);
            let connector = state.job.connector.clone();
            if states.insert(connector.clone(), state).is_some() {
                warn!(%connector, "connector scheduled twice; keeping the last job");
            }
        }
        let (requests_tx, requests_rx) = mpsc::unbounded_channel();
        Scheduler {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    jobs: states,
                    shutting_down: false,
                }),
                launcher,
                semaphore: Arc::new(Semaphore::new(max_concurrent.max(1))),
                clock,
                replaced: tokio::sync::Notify::new(),
            }),
            requests_tx,
            requests_rx,
        }
    }

    /// A handle to trigger runs and read the status.
    pub fn handle(&self) -> SchedulerHandle {
        SchedulerHandle {
            shared: Arc::clone(&self.shared),
            requests: self.requests_tx.clone(),
        }
    }

    /// Runs until `shutdown` resolves; then stops starting runs and waits for
    /// running ones.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Scheduler {
            shared,
            requests_tx,
            mut requests_rx,
        } = self;
        drop(requests_tx);
        let mut shutdown = std::pin::pin!(shutdown);
        let mut runs = JoinSet::new();
        let mut requests_open = true;
        info!(jobs = shared.lock().jobs.len(), "scheduler started");
        loop {
            let next_due = shared.lock().jobs.values().filter_map(|j| j.next_due).min();
            let wake = next_due.map(|due| shared.wake_at(due));
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                request = requests_rx.recv(), if requests_open => match request {
                    Some(connector) => {
                        runs.spawn(execute(Arc::clone(&shared), connector, None));
                    }
                    None => requests_open = false,
                },
                Some(joined) = runs.join_next(), if !runs.is_empty() => log_join(joined),
                () = shared.replaced.notified() => {}
                () = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {
                    start_due(&shared, &mut runs);
                }
            }
        }

        shared.lock().shutting_down = true;
        // Runs waiting for a slot give up; runs holding one go on.
        shared.semaphore.close();
        requests_rx.close();
        while let Ok(connector) = requests_rx.try_recv() {
            if let Some(job) = shared.lock().jobs.get_mut(&connector) {
                job.running = false;
            }
        }
        info!(
            runs = runs.len(),
            "scheduler stopping; waiting for running runs"
        );
        while let Some(joined) = runs.join_next().await {
            log_join(joined);
        }
        info!("scheduler stopped");
    }
}

impl SchedulerHandle {
    /// Starts a run of `connector` now (it may still wait for a run slot).
    pub fn run_now(&self, connector: &str) -> Result<(), TriggerError> {
        let mut state = self.shared.lock();
        if state.shutting_down {
            return Err(TriggerError::Stopped);
        }
        let job = state
            .jobs
            .get_mut(connector)
            .ok_or_else(|| TriggerError::UnknownConnector(connector.to_owned()))?;
        if job.running {
            return Err(TriggerError::AlreadyRunning(connector.to_owned()));
        }
        self.requests
            .send(connector.to_owned())
            .map_err(|_| TriggerError::Stopped)?;
        job.running = true;
        info!(connector, "run requested");
        Ok(())
    }

    /// Replaces the jobs with `jobs`. A connector that stays keeps its state (running,
    /// last result, skipped overlaps), and its next fire time when its schedule, time zone
    /// and jitter are unchanged; a removed connector's run in progress finishes unrecorded.
    pub fn replace_jobs(&self, jobs: Vec<Job>) {
        let now = self.shared.clock.now();
        {
            let mut state = self.shared.lock();
            let mut old = std::mem::take(&mut state.jobs);
            for job in jobs {
                let connector = job.connector.clone();
                let next = match old.remove(&connector) {
                    Some(mut kept) => {
                        let same_plan = kept.job.schedule.as_ref().map(|s| &s.text)
                            == job.schedule.as_ref().map(|s| &s.text)
                            && kept.job.timezone == job.timezone
                            && kept.job.jitter == job.jitter;
                        kept.job = job;
                        if !same_plan {
                            kept.plan(now);
                        }
                        kept
                    }
                    None => JobState::planned(job, now),
                };
                state.jobs.insert(connector, next);
            }
            info!(
                jobs = state.jobs.len(),
                removed = ?old.keys().collect::<Vec<_>>(),
                "scheduler jobs replaced"
            );
        }
        // notify_one keeps the wake-up if the loop is not waiting right now.
        self.shared.replaced.notify_one();
    }

    /// The status of every job, by connector id.
    pub fn status(&self) -> Vec<JobStatus> {
        self.shared
            .lock()
            .jobs
            .values()
            .map(|job| JobStatus {
                connector: job.job.connector.clone(),
                schedule: job.job.schedule.as_ref().map(|s| s.text.clone()),
                running: job.running,
                next_run: job.next_due,
                last_result: job.last_result.clone(),
                skipped_overlaps: job.skipped_overlaps,
            })
            .collect()
    }
}

/// Starts the runs that are due, skipping those of running connectors, and
/// plans every due job's next fire from now.
fn start_due(shared: &Arc<Shared>, runs: &mut JoinSet<()>) {
    let now = shared.clock.now();
    let mut due = Vec::new();
    {
        let mut state = shared.lock();
        if state.shutting_down {
            return;
        }
        for (connector, job) in &mut state.jobs {
            if job.next_due.is_none_or(|at| at > now) {
                continue;
            }
            if job.running {
                job.skipped_overlaps += 1;
                warn!(
                    %connector,
                    fire = ?job.next_fire,
                    skipped = job.skipped_overlaps,
                    "scheduled run skipped: the connector is still running"
                );
            } else {
                job.running = true;
                due.push((connector.clone(), job.next_fire.unwrap_or(now)));
            }
            job.plan(now);
        }
    }
    for (connector, slot) in due {
        runs.spawn(execute(Arc::clone(shared), connector, Some(slot)));
    }
}

fn log_join(joined: Result<(), tokio::task::JoinError>) {
    if let Err(err) = joined {
        error!(error = %err, "a connector run panicked");
    }
}

/// How a run task ended, for [`RunGuard`].
enum Outcome {
    /// Panicked or cancelled before recording a result.
    Interrupted,
    /// Never started (shutdown while waiting for a slot).
    NotStarted,
    Done(RunResult),
}

/// Clears the job's `running` flag however the run task ends.
struct RunGuard {
    shared: Arc<Shared>,
    connector: String,
    outcome: Outcome,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        if let Some(job) = state.jobs.get_mut(&self.connector) {
            job.running = false;
            match &self.outcome {
                Outcome::Interrupted => {
                    job.last_result = Some("failed: the run was interrupted".to_owned());
                }
                Outcome::NotStarted => {}
                Outcome::Done(result) => job.last_result = Some(result.to_string()),
            }
        }
    }
}

/// One run (scheduled for `slot`, or manual when None): waits for a run slot, launches,
/// records the result.
async fn execute(shared: Arc<Shared>, connector: String, slot: Option<DateTime<Utc>>) {
    let trigger = match slot {
        Some(_) => Trigger::Schedule,
        None => Trigger::Manual,
    };
    let mut guard = RunGuard {
        shared: Arc::clone(&shared),
        connector,
        outcome: Outcome::Interrupted,
    };
    let connector = guard.connector.as_str();
    let semaphore = Arc::clone(&shared.semaphore);
    let permit = match Arc::clone(&semaphore).try_acquire_owned() {
        Ok(permit) => Ok(permit),
        Err(TryAcquireError::NoPermits) => {
            info!(connector, %trigger, "run waiting for a free slot (too many runs at once)");
            semaphore.acquire_owned().await.map_err(|_| ())
        }
        Err(TryAcquireError::Closed) => Err(()),
    };
    let Ok(permit) = permit else {
        info!(connector, %trigger, "run not started: the scheduler is stopping");
        guard.outcome = Outcome::NotStarted;
        return;
    };
    info!(connector, %trigger, "run started");
    let result = match slot {
        Some(slot) => shared.launcher.run_scheduled(connector, slot).await,
        None => shared.launcher.run(connector, trigger).await,
    };
    drop(permit);
    match &result {
        RunResult::Finished => info!(connector, %trigger, "run finished"),
        RunResult::Failed(reason) => warn!(connector, %trigger, reason, "run failed"),
        RunResult::Skipped(reason) => info!(connector, %trigger, reason, "run skipped"),
    }
    guard.outcome = Outcome::Done(result);
}
