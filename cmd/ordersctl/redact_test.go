package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// No form of DATABASE_URL or EVENTSTORE_URL shows its password in the help
// of any command, nor in an error; the rest of the URL stays readable.
func TestHelpAndErrorsShowNoPassword(t *testing.T) {
	t.Parallel()
	cases := []struct{ db, es, secret, shown string }{
		{"postgres://u@db.internal/orders?sslmode=disable&password=QSecret", "", "QSecret",
			"postgres://u@db.internal/orders?sslmode=disable&password=xxxxx"},
		{"host=127.0.0.1 password=S3cretPW user=u dbname=x", "", "S3cretPW", "host=127.0.0.1 password=xxxxx user=u dbname=x"},
		{"host=127.0.0.1 password='S3cret PW' user=u", "", "S3cret", "host=127.0.0.1 password=xxxxx user=u"},
		{"postgres://u@db.internal/orders", "esdb://admin:EsPW@node1:2113,node2:2113?tls=true", "EsPW",
			"esdb://admin:xxxxx@node1:2113,node2:2113?tls=true"},
	}
	for _, c := range cases {
		for _, args := range [][]string{{"--help"}, {"migrate", "up", "--help"}, {"projections", "rebuild", "--help"},
			{"dlq", "list", "--help"}, {"orders", "history", "--help"}, {"probe", "--help"}} {
			out, err := ctlESErr(c.db, c.es, args...)
			if err != nil || strings.Contains(out, c.secret) || !strings.Contains(out, c.shown) {
				t.Fatalf("ordersctl %s (%v):\n%s\nwant %q and no %q", strings.Join(args, " "), err, out, c.shown, c.secret)
			}
		}
	}
	out, err := ctlErr("postgres://u@127.0.0.1:1/orders?sslmode=disable&connect_timeout=2&password=QSecret", "migrate", "up")
	if err == nil || strings.Contains(out+err.Error(), "QSecret") {
		t.Fatalf("migrate up on a closed port: %v\n%s", err, out)
	}
}

// The probe prints its URL without a password or token, whatever happens.
func TestProbeShowsNoSecret(t *testing.T) {
	t.Parallel()
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"status":"ready"}`)) }))
	defer ok.Close()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	defer down.Close()
	withSecrets := func(base string) string {
		return strings.Replace(base, "http://", "http://ops:ProbePW@", 1) + "/readyz?token=ProbeTok"
	}
	for _, u := range []string{withSecrets(ok.URL), withSecrets(down.URL), withSecrets("http://127.0.0.1:1"), "http://ops:ProbePW@exa mple/?token=ProbeTok"} {
		out, err := ctlErr("", "probe", u)
		if err != nil {
			out += err.Error()
		}
		if strings.Contains(out, "ProbePW") || strings.Contains(out, "ProbeTok") || !strings.Contains(out, "xxxxx") && !strings.Contains(out, "<unparseable>") {
			t.Fatalf("probe %s:\n%s", u, out)
		}
	}
}
