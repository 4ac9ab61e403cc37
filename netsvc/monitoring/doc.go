// Package monitoring holds timenode's monitoring assets and the checks
// that keep them honest:
//
//   - alerts.yml: Prometheus alerting rules for every threshold of SPEC.md
//     §9 (the sidecar's ntp_attestation_* metrics, names kept exactly)
//     and for the daemon's own states, each with a runbook_url pointing
//     at docs/runbooks/<alert>.md;
//   - alerts_test.yml: promtool unit tests that fire each alert just past
//     its threshold and keep it quiet at the threshold;
//   - dashboard.json: a Grafana dashboard over the daemon's, the
//     sidecar's and the AppArmor textfile's metrics;
//   - metrics.txt: the allow-list of metric names the rules and the
//     dashboard may use, each marked daemon, sidecar or textfile, and
//     "pending" while the daemon does not export it yet.
//
// The files are embedded (Assets) so that tests elsewhere, such as the
// daemon's, can compare a live /metrics with the allow-list
// (ParseMetricsList). MetricNames extracts metric names from a PromQL
// expression without a PromQL parser dependency.
package monitoring
