//! Process-wide metrics, exposed by the admin API at `/metrics` in the Prometheus text
//! format: sync runs by connector and outcome, their duration and what they changed, held
//! runs, requests to identity providers (and how many were throttled), and SCIM requests by
//! tenant and status with their latency.

use std::sync::LazyLock;

use prometheus::core::Collector;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
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

/// Everything registered, in the Prometheus text format.
pub fn render() -> String {
    // Touch every metric so that each family is listed even before its first sample.
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
}
