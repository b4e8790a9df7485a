// Package deploy holds the deployment assets of Orders that
// docker-compose.yml mounts: Prometheus's configuration and alerting rules
// (prometheus/), Grafana's provisioning and the Orders dashboard
// (grafana/). It has no code; its test checks that the assets parse as
// Prometheus and Grafana would read them, that every query parses as
// PromQL, that every metric and label they use exists in the server's
// registry (internal/metrics), and that every alert's runbook link points
// at a section of docs/operating.md.
package deploy
