package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/orders-reference/orders/internal/metrics"
)

// The deployment assets, relative to this package.
const (
	rulesDir       = "prometheus/rules"
	prometheusYML  = "prometheus/prometheus.yml"
	dashboardsDir  = "grafana/dashboards"
	datasourcesYML = "grafana/provisioning/datasources/datasources.yml"
	providersYML   = "grafana/provisioning/dashboards/dashboards.yml"
	composeYML     = "../docker-compose.yml"
	operatingMD    = "../docs/operating.md"
)

// promql parses as Prometheus does by default.
var promql = parser.NewParser(parser.Options{})

// family is what the server exports under one metric name.
type family struct {
	kind   string // "histogram", "summary" or "other"
	labels []string
}

// exported lists the metric families of the server's registry
// (internal/metrics.New): its own metrics from their descriptions, so that
// a labelled metric counts before it has a series, and the Go and process
// collectors' from a scrape.
func exported(t *testing.T) map[string]family {
	t.Helper()
	m := metrics.New()
	out := map[string]family{}
	desc := regexp.MustCompile(`^Desc\{fqName: "([^"]+)", .*variableLabels: \{([^}]*)\}\}$`)
	v := reflect.ValueOf(m).Elem()
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		c, ok := v.Field(i).Interface().(prometheus.Collector)
		if !ok {
			continue
		}
		kind := "other"
		switch v.Field(i).Interface().(type) {
		case prometheus.Histogram, *prometheus.HistogramVec:
			kind = "histogram"
		case prometheus.Summary, *prometheus.SummaryVec:
			kind = "summary"
		}
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			match := desc.FindStringSubmatch(d.String())
			if match == nil {
				t.Fatalf("field %s: cannot read the metric's name and labels from %s", f.Name, d)
			}
			var labels []string
			if match[2] != "" {
				labels = strings.Split(match[2], ",")
			}
			out[match[1]] = family{kind: kind, labels: labels}
		}
	}
	if len(out) < 10 {
		t.Fatalf("found only %d metrics in internal/metrics: %v", len(out), out)
	}

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", rec.Code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	for name, mf := range families {
		if _, ok := out[name]; ok {
			continue
		}
		kind := strings.ToLower(mf.GetType().String())
		if kind != "histogram" && kind != "summary" {
			kind = "other"
		}
		var labels []string
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if !slices.Contains(labels, l.GetName()) {
					labels = append(labels, l.GetName())
				}
			}
		}
		out[name] = family{kind: kind, labels: labels}
	}
	for _, want := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := out[want]; !ok {
			t.Fatalf("no %s in /metrics", want)
		}
	}
	return out
}

// Series that Prometheus makes itself, with the labels they carry besides
// job and instance.
var synthetic = map[string][]string{
	"up":               nil,
	"ALERTS":           {"alertname", "alertstate", "severity"},
	"ALERTS_FOR_STATE": {"alertname", "severity"},
}

// targetLabels are on every scraped series.
var targetLabels = []string{"job", "instance"}

// checker resolves the metrics and labels of queries against exported.
type checker struct {
	families map[string]family
}

// series returns the labels a selector of name may use, or an error when
// no such series exists: a histogram is only its _bucket, _sum and _count
// series (classic histograms), a summary also its quantiles.
func (c checker) series(name string) ([]string, error) {
	if labels, ok := synthetic[name]; ok {
		return append(slices.Clone(targetLabels), labels...), nil
	}
	with := func(f family, extra ...string) []string {
		return append(append(slices.Clone(targetLabels), f.labels...), extra...)
	}
	if f, ok := c.families[name]; ok {
		switch f.kind {
		case "histogram":
			return nil, fmt.Errorf("%s is a histogram: select %[1]s_bucket, %[1]s_sum or %[1]s_count", name)
		case "summary":
			return with(f, "quantile"), nil
		}
		return with(f), nil
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		f, ok := c.families[base]
		switch {
		case !ok:
		case f.kind == "histogram" && suffix == "_bucket":
			return with(f, "le"), nil
		case f.kind == "histogram" || f.kind == "summary" && suffix != "_bucket":
			return with(f), nil
		}
	}
	return nil, fmt.Errorf("no metric %s in the server's registry (internal/metrics)", name)
}

// check parses expr as PromQL and checks that every metric it selects
// exists, that every label it matches, groups or matches on exists on the
// metrics it applies to, and returns the metrics and the labels they have.
func (c checker) check(expr string) (names, labels []string, err error) {
	e, err := promql.ParseExpr(expr)
	if err != nil {
		return nil, nil, fmt.Errorf("not PromQL: %w", err)
	}
	var errs []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == model.MetricNameLabel && name == "" {
				name = m.Value
			}
		}
		have, err := c.series(name)
		if err != nil {
			errs = append(errs, err.Error())
			return nil
		}
		names = append(names, name)
		for _, m := range vs.LabelMatchers {
			if m.Name != model.MetricNameLabel && !slices.Contains(have, m.Name) {
				errs = append(errs, fmt.Sprintf("%s has no label %q (it has %v)", name, m.Name, have))
			}
		}
		for _, l := range have {
			if !slices.Contains(labels, l) {
				labels = append(labels, l)
			}
		}
		return nil
	})
	// Labels of by (...) and on (...) must exist on what they group or
	// match.
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		var (
			used  []string
			under parser.Node
		)
		switch n := n.(type) {
		case *parser.AggregateExpr:
			if !n.Without {
				used, under = n.Grouping, n.Expr
			}
		case *parser.BinaryExpr:
			if n.VectorMatching != nil && n.VectorMatching.On {
				used, under = append(slices.Clone(n.VectorMatching.MatchingLabels), n.VectorMatching.Include...), n
			}
		}
		if len(used) == 0 {
			return nil
		}
		var avail []string
		parser.Inspect(under, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok {
				if have, err := c.series(vs.Name); err == nil {
					avail = append(avail, have...)
				}
			}
			return nil
		})
		for _, l := range used {
			if !slices.Contains(avail, l) {
				errs = append(errs, fmt.Sprintf("%s: no metric in %s has label %q", n, under, l))
			}
		}
		return nil
	})
	if len(errs) > 0 {
		return nil, nil, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return names, labels, nil
}

// grafanaVariables replaces the dashboard's variables with values, as
// Grafana does before it sends a query.
var grafanaVariables = strings.NewReplacer(
	"$__rate_interval", "1m", "${__rate_interval}", "1m",
	"$__interval", "15s", "$__range", "1h",
	"${job}", "orders", "$job", "orders",
)

// runbookRef is how every alert's description ends: a reference to its
// section of docs/operating.md (not a runbook_url annotation, which
// Alertmanager and Grafana would take for a link relative to themselves).
var runbookRef = regexp.MustCompile(`Runbook: docs/operating\.md#([a-z0-9-]+) in the Orders repository\.$`)

// anchors lists the anchors of the Markdown headings in file, as GitHub
// makes them.
func anchors(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	drop := regexp.MustCompile(`[^\p{L}\p{N} _-]`)
	inFence := false
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
		}
		if inFence || !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(line, "#"))
		out = append(out, strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(h), ""), " ", "-"))
	}
	return out
}

// Every rule parses as Prometheus loads it, every expression selects only
// what the server exports, and every alert says what it means and links
// to its section of docs/operating.md.
func TestAlertRules(t *testing.T) {
	c := checker{exported(t)}
	sections := anchors(t, operatingMD)
	files, err := filepath.Glob(filepath.Join(rulesDir, "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule files in %s: %v", rulesDir, err)
	}
	alerts, usedInRules := map[string]bool{}, map[string]bool{}
	for _, file := range files {
		groups, errs := rulefmt.ParseFile(file, false, model.LegacyValidation, promql, slog.New(slog.DiscardHandler))
		if len(errs) > 0 {
			t.Fatalf("%s: %v", file, errs)
		}
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				name := r.Alert + r.Record
				names, _, err := c.check(r.Expr)
				if err != nil {
					t.Errorf("%s: %s: %v", file, name, err)
				}
				for _, n := range names {
					usedInRules[n] = true
				}
				if r.Alert == "" {
					continue
				}
				if alerts[r.Alert] {
					t.Errorf("%s: alert %s defined twice", file, r.Alert)
				}
				alerts[r.Alert] = true
				if s := r.Labels["severity"]; s != "warning" && s != "critical" {
					t.Errorf("%s: %s: severity %q, want warning or critical", file, r.Alert, s)
				}
				for _, a := range []string{"summary", "description"} {
					if strings.TrimSpace(r.Annotations[a]) == "" {
						t.Errorf("%s: %s has no %s", file, r.Alert, a)
					}
				}
				if u, ok := r.Annotations["runbook_url"]; ok {
					t.Errorf("%s: %s: runbook_url %q: refer to the runbook in the description", file, r.Alert, u)
				}
				m := runbookRef.FindStringSubmatch(r.Annotations["description"])
				switch {
				case m == nil:
					t.Errorf("%s: %s: the description does not end with its runbook (Runbook: docs/operating.md#section in the Orders repository.)", file, r.Alert)
				case !slices.Contains(sections, m[1]):
					t.Errorf("%s: %s: runbook docs/operating.md#%s: docs/operating.md has no such section", file, r.Alert, m[1])
				case m[1] != strings.ToLower(r.Alert):
					t.Errorf("%s: %s: runbook docs/operating.md#%s, want the section named after the alert", file, r.Alert, m[1])
				}
			}
		}
	}
	// Readiness is alerted on from its gauge, which the server sets
	// without probes.
	if !usedInRules["orders_ready"] {
		t.Error("no alert rule reads orders_ready")
	}
	// The questions the alerts must answer.
	for _, want := range []string{"OrdersDown", "OrdersNotReady", "OrdersProjectionLagging", "OrdersProjectionFailed", "OrdersDeadLetters", "OrdersSagaBacklogGrowing"} {
		if !alerts[want] {
			t.Errorf("no alert %s", want)
		}
	}
}

// promConfig is the part of prometheus.yml the stack uses; unknown fields
// are refused.
type promConfig struct {
	Global struct {
		ScrapeInterval     string `yaml:"scrape_interval"`
		EvaluationInterval string `yaml:"evaluation_interval"`
	} `yaml:"global"`
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName         string   `yaml:"job_name"`
		ScrapeProtocols []string `yaml:"scrape_protocols"`
		StaticConfigs   []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
		DNSSDConfigs []struct {
			Names           []string `yaml:"names"`
			Type            string   `yaml:"type"`
			Port            int      `yaml:"port"`
			RefreshInterval string   `yaml:"refresh_interval"`
		} `yaml:"dns_sd_configs"`
	} `yaml:"scrape_configs"`
}

// compose is the part of docker-compose.yml that mounts the assets.
type compose struct {
	Services map[string]struct {
		Profiles []string `yaml:"profiles"`
		Ports    []string `yaml:"ports"`
		Expose   []string `yaml:"expose"`
		Configs  []struct {
			Source string `yaml:"source"`
			Target string `yaml:"target"`
		} `yaml:"configs"`
		Volumes []string `yaml:"volumes"`
	} `yaml:"services"`
	Configs map[string]struct {
		File string `yaml:"file"`
	} `yaml:"configs"`
}

func decodeYAML(t *testing.T, file string, v any, strict bool) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	d := yaml.NewDecoder(bytes.NewReader(b))
	d.KnownFields(strict)
	if err := d.Decode(v); err != nil && err != io.EOF {
		t.Fatalf("%s: %v", file, err)
	}
}

// mounted returns where docker-compose.yml puts the file or directory
// deploy/<local> inside service's container ("" if nowhere).
func (c compose) mounted(service, local string) string {
	want := path.Clean("deploy/" + local)
	s := c.Services[service]
	for _, cfg := range s.Configs {
		if path.Clean(strings.TrimPrefix(c.Configs[cfg.Source].File, "./")) == want {
			return cfg.Target
		}
	}
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && path.Clean(strings.TrimPrefix(parts[0], "./")) == want {
			return parts[1]
		}
	}
	return ""
}

// prometheus.yml has only known settings, loads every rule file where
// docker-compose.yml mounts it, and scrapes services of the compose stack.
func TestPrometheusConfig(t *testing.T) {
	var cfg promConfig
	decodeYAML(t, prometheusYML, &cfg, true)
	var stack compose
	decodeYAML(t, composeYML, &stack, false)

	for _, d := range []string{cfg.Global.ScrapeInterval, cfg.Global.EvaluationInterval} {
		if _, err := model.ParseDuration(d); err != nil {
			t.Errorf("global interval %q: %v", d, err)
		}
	}
	configDir := path.Dir(stack.mounted("prometheus", prometheusYML))
	if configDir == "." {
		t.Fatalf("docker-compose.yml does not mount deploy/%s into prometheus", prometheusYML)
	}
	files, _ := filepath.Glob(filepath.Join(rulesDir, "*.yml"))
	for _, file := range files {
		target := stack.mounted("prometheus", filepath.ToSlash(file))
		if target == "" {
			t.Errorf("docker-compose.yml does not mount deploy/%s into prometheus", filepath.ToSlash(file))
			continue
		}
		loaded := false
		for _, glob := range cfg.RuleFiles {
			if ok, _ := path.Match(path.Join(configDir, glob), target); ok {
				loaded = true
			}
		}
		if !loaded {
			t.Errorf("%s is mounted at %s, which rule_files %v do not load", file, target, cfg.RuleFiles)
		}
	}

	protocols := []string{"PrometheusProto", "OpenMetricsText0.0.1", "OpenMetricsText1.0.0", "PrometheusText0.0.4", "PrometheusText1.0.0"}
	hosts := 0
	for _, sc := range cfg.ScrapeConfigs {
		if !strings.HasPrefix(sc.JobName, "orders") {
			t.Errorf("job %q: the rules and the dashboard select job=~\"orders.*\"", sc.JobName)
		}
		for _, p := range sc.ScrapeProtocols {
			if !slices.Contains(protocols, p) {
				t.Errorf("job %s: unknown scrape protocol %q", sc.JobName, p)
			}
		}
		var targets []string
		for _, s := range sc.StaticConfigs {
			targets = append(targets, s.Targets...)
		}
		for _, d := range sc.DNSSDConfigs {
			for _, n := range d.Names {
				targets = append(targets, fmt.Sprintf("%s:%d", n, d.Port))
			}
		}
		for _, target := range targets {
			host, port, _ := strings.Cut(target, ":")
			if _, ok := stack.Services[host]; !ok || port != "8000" {
				t.Errorf("job %s: target %s is not an ordersd of docker-compose.yml (service:8000)", sc.JobName, target)
			}
			hosts++
		}
	}
	if hosts == 0 {
		t.Error("prometheus.yml scrapes nothing")
	}
}

// dashboard is the part of a Grafana dashboard the test reads.
type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string     `json:"name"`
			Datasource datasource `json:"datasource"`
			Definition string     `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	Targets    []struct {
		RefID        string      `json:"refId"`
		Expr         string      `json:"expr"`
		LegendFormat string      `json:"legendFormat"`
		Datasource   *datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// The provisioned data sources, by uid.
type datasources struct {
	Datasources []struct {
		Name     string `yaml:"name"`
		UID      string `yaml:"uid"`
		Type     string `yaml:"type"`
		URL      string `yaml:"url"`
		JSONData struct {
			ExemplarTraceIDDestinations []struct {
				DatasourceUID string `yaml:"datasourceUid"`
			} `yaml:"exemplarTraceIdDestinations"`
		} `yaml:"jsonData"`
	} `yaml:"datasources"`
}

// Every dashboard is valid JSON whose panels query provisioned data
// sources in PromQL that selects only what the server exports, and the
// Orders dashboard shows what docs/operating.md says to watch. Grafana
// finds the dashboards and the data sources where docker-compose.yml
// mounts them.
func TestDashboards(t *testing.T) {
	c := checker{exported(t)}
	var stack compose
	decodeYAML(t, composeYML, &stack, false)

	var ds datasources
	decodeYAML(t, datasourcesYML, &ds, false)
	uids := map[string]string{}
	for _, d := range ds.Datasources {
		uids[d.UID] = d.Type
		host, _, _ := strings.Cut(strings.TrimPrefix(d.URL, "http://"), ":")
		if _, ok := stack.Services[host]; !ok {
			t.Errorf("data source %s: %s is not a service of docker-compose.yml", d.Name, d.URL)
		}
	}
	for _, d := range ds.Datasources {
		for _, dest := range d.JSONData.ExemplarTraceIDDestinations {
			if _, ok := uids[dest.DatasourceUID]; !ok {
				t.Errorf("data source %s: exemplars link to unknown data source %q", d.Name, dest.DatasourceUID)
			}
		}
	}
	if uids["prometheus"] != "prometheus" {
		t.Fatalf("no Prometheus data source with uid prometheus in %s", datasourcesYML)
	}

	var providers struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	decodeYAML(t, providersYML, &providers, false)
	mountedAt := stack.mounted("grafana", dashboardsDir)
	if len(providers.Providers) != 1 || mountedAt == "" || providers.Providers[0].Options.Path != mountedAt {
		t.Errorf("the dashboard provider reads %+v; docker-compose.yml mounts deploy/%s at %q", providers.Providers, dashboardsDir, mountedAt)
	}

	files, err := filepath.Glob(filepath.Join(dashboardsDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in %s: %v", dashboardsDir, err)
	}
	used := map[string]bool{}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		dec := json.NewDecoder(bytes.NewReader(b))
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: no uid or title", file)
		}
		checkDS := func(where string, ref *datasource) {
			if ref == nil || ref.Type == "grafana" {
				return
			}
			if typ, ok := uids[ref.UID]; !ok || typ != ref.Type {
				t.Errorf("%s: %s: data source %+v is not provisioned", file, where, *ref)
			}
		}
		for _, v := range d.Templating.List {
			checkDS("variable "+v.Name, &v.Datasource)
			sel, ok := strings.CutPrefix(v.Definition, "label_values(")
			if !ok {
				continue
			}
			sel = strings.TrimSuffix(sel[:strings.LastIndex(sel, ",")], " ")
			if _, _, err := c.check(sel); err != nil {
				t.Errorf("%s: variable %s: %v", file, v.Name, err)
			}
		}
		ids := map[int]bool{}
		var walk func([]panel)
		walk = func(ps []panel) {
			for _, p := range ps {
				if ids[p.ID] {
					t.Errorf("%s: panel id %d twice", file, p.ID)
				}
				ids[p.ID] = true
				walk(p.Panels)
				if p.Type == "row" {
					continue
				}
				where := fmt.Sprintf("panel %q", p.Title)
				checkDS(where, p.Datasource)
				if len(p.Targets) == 0 {
					t.Errorf("%s: %s has no queries", file, where)
				}
				for _, q := range p.Targets {
					checkDS(where, q.Datasource)
					// Probes and scrapes, every few seconds, would bury the requests that matter.
					if n := strings.Count(q.Expr, "http_request_duration_seconds"); n != strings.Count(q.Expr, `route!~"/readyz|/healthz|/metrics"`) {
						t.Errorf("%s: %s, query %s: requests selected without route!~\"/readyz|/healthz|/metrics\"", file, where, q.RefID)
					}
					names, labels, err := c.check(grafanaVariables.Replace(q.Expr))
					if err != nil {
						t.Errorf("%s: %s, query %s: %v", file, where, q.RefID, err)
						continue
					}
					for _, n := range names {
						used[n] = true
					}
					for _, m := range regexp.MustCompile(`\{\{\s*(\w+)\s*\}\}`).FindAllStringSubmatch(q.LegendFormat, -1) {
						if !slices.Contains(labels, m[1]) {
							t.Errorf("%s: %s, query %s: legend uses label %q, which the query has not", file, where, q.RefID, m[1])
						}
					}
				}
			}
		}
		walk(d.Panels)
	}
	// What docs/operating.md says to watch.
	for _, want := range []string{
		"http_request_duration_seconds_count", "http_request_duration_seconds_bucket",
		"orders_total", "orders_paid_total", "orders_canceled_total", "orders_saga_duration_seconds_bucket",
		"outbox_pending", "orders_backpressure", "orders_ready",
		"projection_lag_seconds", "projection_failed",
		"process_manager_steps_total", "process_manager_step_duration_seconds_bucket",
		"process_manager_queue_age_seconds", "process_manager_dead_letters", "worker_errors_total",
		"eventstore_append_duration_seconds_bucket", "eventstore_append_batch_appends_bucket",
	} {
		if !used[want] {
			t.Errorf("no dashboard panel shows %s", want)
		}
	}
}

// The default stack does not trace: its Jaeger is in the observability
// profile, and an endpoint without a collector would only log a warning a
// minute. OTEL_EXPORTER_OTLP_ENDPOINT turns tracing on.
func TestComposeTracesOnlyWhenAsked(t *testing.T) {
	var stack struct {
		Tracing map[string]string `yaml:"x-tracing"`
	}
	decodeYAML(t, composeYML, &stack, false)
	if got := stack.Tracing["OTEL_EXPORTER_OTLP_ENDPOINT"]; got != "${OTEL_EXPORTER_OTLP_ENDPOINT:-}" {
		t.Errorf("x-tracing: OTEL_EXPORTER_OTLP_ENDPOINT %q, want ${OTEL_EXPORTER_OTLP_ENDPOINT:-} (off unless set)", got)
	}
}

// The checker itself: a renamed metric, an unknown label or a bare
// histogram name is an error.
func TestCheckerRefusesUnknownMetricsAndLabels(t *testing.T) {
	c := checker{exported(t)}
	for _, expr := range []string{
		`rate(orders_placed_total[5m])`,
		`sum by (route) (rate(http_request_duration_seconds_count{path="/orders"}[5m]))`,
		`sum by (path) (rate(http_request_duration_seconds_count[5m]))`,
		`histogram_quantile(0.9, rate(http_request_duration_seconds[5m]))`,
		`orders_total_bucket`,
		`sum(rate(`,
	} {
		if _, _, err := c.check(expr); err == nil {
			t.Errorf("%s: no error", expr)
		}
	}
	for _, expr := range []string{
		`histogram_quantile(0.9, sum by (route, le) (rate(http_request_duration_seconds_bucket{job="orders"}[5m])))`,
		`max by (job, projection) (projection_lag_seconds) > 30`,
		`up{job=~"orders.*"} == 0`,
		`go_gc_duration_seconds{quantile="0.5"}`,
	} {
		if _, _, err := c.check(expr); err != nil {
			t.Errorf("%s: %v", expr, err)
		}
	}
}
