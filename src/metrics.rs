//! Process-wide metrics, exposed by the admin API at `/metrics` in the Prometheus text
//! format: sync runs by connector and outcome, their duration and what they changed, held
//! runs, requests to identity providers (and how many were throttled), and SCIM requests by
//! tenant and status with their latency; when each connector last succeeded and next runs;
//! the build's version and the process's own figures (`process_*`, Linux only).

use std::sync::LazyLock;

use prometheus::core::Collector;
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// The registry every idsync metric lives in.
pub static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::new);

/// Registers a new metric, so that it is rendered.
fn registered<M: Collector + Clone + 'static>(metric: prometheus::Result<M>) -> M {
    let metric = metric.expect("valid metric");
    REGISTRY
        .register(Box::new(metric.clone()))
        .expect("registered once");
    metric
}

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    registered(IntCounterVec::new(Opts::new(name, help), labels))
}

fn gauge(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    registered(IntGaugeVec::new(Opts::new(name, help), labels))
}

fn gauge_f64(name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    registered(GaugeVec::new(Opts::new(name, help), labels))
}

fn histogram(name: &str, help: &str, labels: &[&str], buckets: Vec<f64>) -> HistogramVec {
    registered(HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets),
        labels,
    ))
}

/// Sync runs finished, by connector, operation (`sync`, `reconcile`) and outcome.
pub static RUNS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "idsync_sync_runs_total",
        "Sync runs finished, by connector and outcome",
        &["connector", "outcome"],
    )
});

/// Wall time of sync runs.
pub static RUN_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    histogram(
        "idsync_sync_run_duration_seconds",
        "Duration of sync runs",
        &["connector"],
        vec![0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0],
    )
});

/// Records changed by runs, by connector and change (`created`, `updated`, `removed`).
pub static RECORDS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "idsync_sync_records_total",
        "Users and groups created, updated and removed by sync runs",
        &["connector", "change"],
    )
});

/// 1 for each connector whose latest run is held by a safety limit (or SCIM tenant held).
pub static HELD: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge(
        "idsync_held_runs",
        "Connectors whose changes wait for an admin (held by a safety limit)",
        &["connector"],
    )
});

/// Requests to identity-provider APIs, by connector kind and outcome (`ok`, `throttled`,
/// `error`, `transport`).
pub static IDP_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "idsync_idp_requests_total",
        "Requests to identity-provider APIs, by connector kind and outcome",
        &["kind", "outcome"],
    )
});

/// SCIM requests answered, by tenant and HTTP status.
pub static SCIM_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "idsync_scim_requests_total",
        "SCIM requests answered, by tenant and status",
        &["tenant", "status"],
    )
});

/// SCIM request latency, by tenant.
pub static SCIM_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    histogram(
        "idsync_scim_request_duration_seconds",
        "SCIM request latency",
        &["tenant"],
        vec![
            0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
        ],
    )
});

/// The outcomes `idsync_sync_runs_total` counts (`Outcome::as_str`): the daemon starts each
/// connector's series of these at zero.
pub const RUN_OUTCOMES: [&str; 4] = ["succeeded", "unchanged", "held", "failed"];

/// The changes `idsync_sync_records_total` counts.
pub const RECORD_CHANGES: [&str; 3] = ["created", "updated", "removed"];

/// The outcomes `idsync_idp_requests_total` counts.
pub const IDP_OUTCOMES: [&str; 4] = ["ok", "throttled", "error", "transport"];

/// When each connector's latest successful run (succeeded or unchanged) finished, in
/// seconds since the epoch; 0 while it has never succeeded.
pub static LAST_SUCCESS: LazyLock<GaugeVec> = LazyLock::new(|| {
    gauge_f64(
        "idsync_last_success_timestamp_seconds",
        "When the connector's latest successful run finished (0: never)",
        &["connector"],
    )
});

/// When each scheduled connector runs next (jitter included), in seconds since the epoch;
/// absent for connectors that only run on demand.
pub static NEXT_RUN: LazyLock<GaugeVec> = LazyLock::new(|| {
    gauge_f64(
        "idsync_next_run_timestamp_seconds",
        "When the scheduler runs the connector next",
        &["connector"],
    )
});

/// `idsync_build_info{version} 1`: which build a node runs, to join on or to count versions
/// during an upgrade.
static BUILD_INFO: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    let info = gauge(
        "idsync_build_info",
        "The idsync build this process runs (always 1)",
        &["version"],
    );
    info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
    info
});

/// The prometheus crate's process collector: `process_resident_memory_bytes`,
/// `process_cpu_seconds_total` (whole seconds), `process_open_fds`, `process_max_fds`,
/// `process_virtual_memory_bytes`, `process_start_time_seconds` and `process_threads`,
/// read from /proc at each scrape.
#[cfg(target_os = "linux")]
static PROCESS: LazyLock<()> = LazyLock::new(|| {
    let collector = prometheus::process_collector::ProcessCollector::for_self();
    if let Err(error) = REGISTRY.register(Box::new(collector)) {
        tracing::warn!(%error, "process metrics are not available");
    }
});

/// A time as a Prometheus timestamp: seconds since the epoch, with the milliseconds.
pub fn timestamp_seconds(at: chrono::DateTime<chrono::Utc>) -> f64 {
    at.timestamp_millis() as f64 / 1000.0
}

/// Everything registered, in the Prometheus text format.
pub fn render() -> String {
    // Touch every metric so that each family is listed even before its first sample.
    LazyLock::force(&BUILD_INFO);
    #[cfg(target_os = "linux")]
    LazyLock::force(&PROCESS);
    LazyLock::force(&LAST_SUCCESS);
    LazyLock::force(&NEXT_RUN);
    LazyLock::force(&RUNS);
    LazyLock::force(&RUN_SECONDS);
    LazyLock::force(&RECORDS);
    LazyLock::force(&HELD);
    LazyLock::force(&IDP_REQUESTS);
    LazyLock::force(&SCIM_REQUESTS);
    LazyLock::force(&SCIM_SECONDS);
    let mut out = Vec::new();
    let encoder = TextEncoder::new();
    if encoder.encode(&REGISTRY.gather(), &mut out).is_err() {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_in_the_text_format() {
        RUNS.with_label_values(&["hr", "succeeded"]).inc();
        SCIM_SECONDS.with_label_values(&["okta"]).observe(0.004);
        let text = render();
        assert!(
            text.contains("# TYPE idsync_sync_runs_total counter"),
            "{text}"
        );
        assert!(
            text.contains("idsync_sync_runs_total{connector=\"hr\",outcome=\"succeeded\"}"),
            "{text}"
        );
        assert!(
            text.contains(
                "idsync_scim_request_duration_seconds_bucket{tenant=\"okta\",le=\"0.005\"}"
            )
        );
    }

    #[test]
    fn build_info_and_process_metrics_are_there_from_the_first_render() {
        let text = render();
        let version = env!("CARGO_PKG_VERSION");
        assert!(
            text.contains(&format!("idsync_build_info{{version=\"{version}\"}} 1")),
            "{text}"
        );
        #[cfg(target_os = "linux")]
        for name in [
            "process_resident_memory_bytes",
            "process_cpu_seconds_total",
            "process_open_fds",
            "process_start_time_seconds",
        ] {
            let value = text
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .unwrap_or_else(|| panic!("{name} in {text}"));
            let value: f64 = value.parse().expect("a number");
            assert!(value >= 0.0, "{name} {value}");
        }
    }

    #[test]
    fn timestamps_keep_their_milliseconds() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-03-01T12:00:00.250Z")
            .expect("time")
            .to_utc();
        assert_eq!(timestamp_seconds(at), 1_772_366_400.25);
    }
}
