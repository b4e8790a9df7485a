package redact_test

import (
	"strings"
	"testing"

	"github.com/orders-reference/orders/internal/redact"
)

// Every form a connection string takes in DATABASE_URL, REDIS_URL,
// EVENTSTORE_URL or PAYMENT_PROVIDER_URL: the secret never shows, the rest
// stays readable.
func TestURL(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, raw, secret, want string
	}{
		{"postgres userinfo", "postgres://orders:S3cretPW@db.internal:5432/orders?sslmode=disable", "S3cretPW",
			"postgres://orders:xxxxx@db.internal:5432/orders?sslmode=disable"},
		{"postgres query password", "postgres://u@h/db?sslmode=disable&password=QSecret", "QSecret",
			"postgres://u@h/db?sslmode=disable&password=xxxxx"},
		{"postgres query password first", "postgresql://u@h/db?password=QSecret&sslmode=require", "QSecret",
			"postgresql://u@h/db?password=xxxxx&sslmode=require"},
		{"query key in any case", "postgres://u@h/db?PassWord=QSecret", "QSecret", "postgres://u@h/db?PassWord=xxxxx"},
		{"query key percent-encoded", "postgres://u@h/db?pass%77ord=QSecret", "QSecret", "postgres://u@h/db?pass%77ord=xxxxx"},
		{"sslpassword", "postgres://u@h/db?sslmode=verify-full&sslpassword=KeyPass", "KeyPass",
			"postgres://u@h/db?sslmode=verify-full&sslpassword=xxxxx"},
		{"passwd, pass, secret, token", "postgres://u@h/db?passwd=P1x&pass=P2x&secret=P3x&token=P4x&sslmode=disable", "P",
			"postgres://u@h/db?passwd=xxxxx&pass=xxxxx&secret=xxxxx&token=xxxxx&sslmode=disable"},
		{"encoded secret", "postgres://u@h/db?password=a%26b%3Dc", "a%26b", "postgres://u@h/db?password=xxxxx"},
		{"semicolon after the secret", "postgres://u@h/db?password=ab;cd&sslmode=disable", "ab;cd",
			"postgres://u@h/db?password=xxxxx&sslmode=disable"},
		{"secret after a semicolon", "postgres://u@h/db?sslmode=disable;password=Semi", "Semi",
			"postgres://u@h/db?sslmode=disable;password=xxxxx"},
		{"fragment", "postgres://u@h/db?password=ab#cdSecret", "cdSecret", "postgres://u@h/db?password=xxxxx#xxxxx"},
		{"several hosts", "postgres://u:S3cretPW@h1:5432,h2:5433/db?target_session_attrs=read-write", "S3cretPW",
			"postgres://u:xxxxx@h1:5432,h2:5433/db?target_session_attrs=read-write"},
		{"socket directory", "postgres:///orders?host=/var/run/postgresql&password=QSecret", "QSecret",
			"postgres:///orders?host=/var/run/postgresql&password=xxxxx"},
		{"empty password", "postgres://u:@h/db", "u:@", "postgres://u:xxxxx@h/db"},
		{"keyword/value", "host=127.0.0.1 password=S3cretPW user=u dbname=x", "S3cretPW",
			"host=127.0.0.1 password=xxxxx user=u dbname=x"},
		{"keyword/value, spaces around =", "host = 127.0.0.1  password = S3cretPW dbname=x", "S3cretPW",
			"host=127.0.0.1 password=xxxxx dbname=x"},
		{"keyword/value, quoted", "host=h password='a b S3cret' user=u", "S3cret", "host=h password=xxxxx user=u"},
		{"keyword/value, quoted with escapes", `user='o\'brien' password='x\' y S3cret' dbname=d`, "S3cret",
			`user='o\'brien' password=xxxxx dbname=d`},
		{"keyword/value, escaped space", `password=a\ S3cret host=h`, "S3cret", "password=xxxxx host=h"},
		{"keyword/value, unterminated quote", "host=h password='S3cret", "S3cret", "<unparseable>"},
		{"keyword/value, no value before the end", "host=h password=", "S3cret", "host=h password=xxxxx"},
		{"redis password", "redis://:RedisPW@cache:6379/0", "RedisPW", "redis://:xxxxx@cache:6379/0"},
		{"redis user and password", "rediss://default:RedisPW@cache:6380/1?dial_timeout=1s", "RedisPW",
			"rediss://default:xxxxx@cache:6380/1?dial_timeout=1s"},
		{"redis query password", "redis://cache:6379/0?password=RedisPW", "RedisPW", "redis://cache:6379/0?password=xxxxx"},
		{"esdb", "esdb://admin:EsPW@node1:2113,node2:2113,node3:2113?tls=true&tlsVerifyCert=false", "EsPW",
			"esdb://admin:xxxxx@node1:2113,node2:2113,node3:2113?tls=true&tlsVerifyCert=false"},
		{"kurrentdb discover", "kurrentdb+discover://admin:EsPW@cluster.internal:2113", "EsPW",
			"kurrentdb+discover://admin:xxxxx@cluster.internal:2113"},
		{"provider", "https://shop:ProvPW@pay.example/v1?api_key=K3y", "PW", "https://shop:xxxxx@pay.example/v1?api_key=xxxxx"},
		{"provider access token", "https://pay.example/v1?access_token=T0k", "T0k", "https://pay.example/v1?access_token=xxxxx"},
		{"collector token as the user", "https://ghp_T0ken123@collector:4318", "T0ken", "https://xxxxx@collector:4318"},
		{"unparseable URL", "postgres://app:s3cr%t@db/orders", "s3cr", "postgres://<unparseable>"},
		{"unparseable port", "postgres://app:pa/ss@db/orders", "pa/ss", "postgres://<unparseable>"},
		{"control character", "postgres://app:S3cret@db/or\nders", "S3cret", "postgres://<unparseable>"},
		{"not a URL", "S3cretPW", "S3cretPW", "<unparseable>"},
		{"opaque", "postgres:S3cret@db", "S3cret", "<unparseable>"},
		{"no scheme", "app:S3cret@db:5432/orders", "S3cret", "<unparseable>"},
		{"empty", "", "S3cret", ""},
	}
	for _, c := range cases {
		got := redact.URL(c.raw)
		if strings.Contains(got, c.secret) {
			t.Errorf("%s: %q shows %q", c.name, got, c.secret)
		}
		if got != c.want {
			t.Errorf("%s: URL(%q) = %q, want %q", c.name, c.raw, got, c.want)
		}
	}
}

// Whatever the input, a password given after password= never shows.
func FuzzURL(f *testing.F) {
	for _, s := range []string{"postgres://u@h/db?password=SECRET", "host=h password=SECRET", "host=h password='SE CRET'",
		"redis://:SECRET@h", "postgres://u@h/db?a=1;password=SECRET"} {
		f.Add(s, "SECRET")
	}
	f.Fuzz(func(t *testing.T, raw, secret string) {
		if len(secret) < 6 || strings.ContainsAny(secret, " \t\r\n\f\v'\\&;#=%+?/@:") || strings.Contains("xxxxx<unparseable>postgres", secret) {
			return
		}
		for _, s := range []string{
			"postgres://u@h/db?" + raw + "&password=" + secret,
			"postgres://u:" + secret + "@h/db?" + raw,
			"host=h password=" + secret + " " + raw,
			"host=h password='" + secret + "' " + raw,
		} {
			if got := redact.URL(s); strings.Contains(got, secret) && !strings.Contains(raw, secret) {
				t.Fatalf("URL(%q) = %q shows %q", s, got, secret)
			}
		}
	})
}
