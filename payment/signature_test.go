package payment_test

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orders-reference/orders/payment"
)

// The published Standard Webhooks test vector.
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorBody      = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func at(unix int64) func() time.Time { return func() time.Time { return time.Unix(unix, 0) } }

func vectorHeaders() http.Header {
	h := http.Header{}
	h.Set(payment.HeaderID, vectorID)
	h.Set(payment.HeaderTimestamp, strconv.Itoa(vectorTimestamp))
	h.Set(payment.HeaderSignature, vectorSignature)
	return h
}

func TestSignMatchesTheTestVector(t *testing.T) {
	s, err := payment.NewSigner(vectorSecret)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	if err := s.Sign(h, vectorID, time.Unix(vectorTimestamp, 0), []byte(vectorBody)); err != nil {
		t.Fatal(err)
	}
	if got := h.Get(payment.HeaderSignature); got != vectorSignature {
		t.Fatalf("signature %s, want %s", got, vectorSignature)
	}
	if h.Get(payment.HeaderID) != vectorID || h.Get(payment.HeaderTimestamp) != strconv.Itoa(vectorTimestamp) {
		t.Fatalf("headers %v", h)
	}
}

func TestVerify(t *testing.T) {
	v, err := payment.NewVerifier([]string{vectorSecret}, at(vectorTimestamp))
	if err != nil {
		t.Fatal(err)
	}
	if id, err := v.Verify(vectorHeaders(), []byte(vectorBody)); err != nil || id != vectorID {
		t.Fatalf("test vector: id %q, %v", id, err)
	}

	cases := []struct {
		name string
		edit func(h http.Header) []byte
		now  int64
		want error
	}{
		{"several signatures, one good", func(h http.Header) []byte {
			h.Set(payment.HeaderSignature, "v1,AAAA v2,whatever "+vectorSignature)
			return []byte(vectorBody)
		}, vectorTimestamp, nil},
		{"at the edge of the window, past", func(h http.Header) []byte { return []byte(vectorBody) }, vectorTimestamp + 300, nil},
		{"at the edge of the window, future", func(h http.Header) []byte { return []byte(vectorBody) }, vectorTimestamp - 300, nil},
		{"tampered body", func(h http.Header) []byte { return []byte(`{"test": 2432232315}`) }, vectorTimestamp, payment.ErrBadSignature},
		{"another message id", func(h http.Header) []byte {
			h.Set(payment.HeaderID, "msg_other")
			return []byte(vectorBody)
		}, vectorTimestamp, payment.ErrBadSignature},
		{"stale", func(h http.Header) []byte { return []byte(vectorBody) }, vectorTimestamp + 301, payment.ErrStale},
		{"from the future", func(h http.Header) []byte { return []byte(vectorBody) }, vectorTimestamp - 301, payment.ErrStale},
		{"missing id", func(h http.Header) []byte { h.Del(payment.HeaderID); return []byte(vectorBody) }, vectorTimestamp, payment.ErrMissingHeaders},
		{"missing signature", func(h http.Header) []byte { h.Del(payment.HeaderSignature); return []byte(vectorBody) }, vectorTimestamp, payment.ErrMissingHeaders},
		{"missing timestamp", func(h http.Header) []byte { h.Del(payment.HeaderTimestamp); return []byte(vectorBody) }, vectorTimestamp, payment.ErrMissingHeaders},
		{"timestamp not a number", func(h http.Header) []byte {
			h.Set(payment.HeaderTimestamp, "2021-02-26T15:02:10Z")
			return []byte(vectorBody)
		}, vectorTimestamp, payment.ErrMissingHeaders},
		{"signature without a version", func(h http.Header) []byte {
			h.Set(payment.HeaderSignature, "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
			return []byte(vectorBody)
		}, vectorTimestamp, payment.ErrMissingHeaders}, // malformed: an entry is version,signature
		{"only another version", func(h http.Header) []byte {
			h.Set(payment.HeaderSignature, "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
			return []byte(vectorBody)
		}, vectorTimestamp, payment.ErrBadSignature},
		{"empty v1", func(h http.Header) []byte { h.Set(payment.HeaderSignature, "v1,"); return []byte(vectorBody) }, vectorTimestamp, payment.ErrMissingHeaders},
		// Each entry is exactly version,base64: a good signature in a
		// malformed entry, or beside one, is refused.
		{"a good signature with an extra part", func(h http.Header) []byte {
			h.Set(payment.HeaderSignature, vectorSignature+",extra")
			return []byte(vectorBody)
		}, vectorTimestamp, payment.ErrMissingHeaders},
		{"a good signature beside a malformed entry", func(h http.Header) []byte {
			h.Set(payment.HeaderSignature, "v1,AAAA,x "+vectorSignature)
			return []byte(vectorBody)
		}, vectorTimestamp, payment.ErrMissingHeaders},
		{"two spaces between entries", func(h http.Header) []byte {
			h.Set(payment.HeaderSignature, "v1,AAAA  "+vectorSignature)
			return []byte(vectorBody)
		}, vectorTimestamp, payment.ErrMissingHeaders},
		{"a signature that is not base64", func(h http.Header) []byte {
			h.Set(payment.HeaderSignature, "v1,!!!! "+vectorSignature)
			return []byte(vectorBody)
		}, vectorTimestamp, payment.ErrMissingHeaders},
		{"a version that is not one", func(h http.Header) []byte {
			h.Set(payment.HeaderSignature, "x1,AAAA "+vectorSignature)
			return []byte(vectorBody)
		}, vectorTimestamp, payment.ErrMissingHeaders},
		{"two good entries", func(h http.Header) []byte {
			h.Set(payment.HeaderSignature, vectorSignature+" "+vectorSignature)
			return []byte(vectorBody)
		}, vectorTimestamp, nil},
		// A header sent as two fields is one the check would not read:
		// refused, whichever field holds the right value.
		{"signature twice, the good one first", func(h http.Header) []byte {
			h.Add(payment.HeaderSignature, "v1,AAAA")
			return []byte(vectorBody)
		}, vectorTimestamp, payment.ErrMissingHeaders},
		{"id twice", func(h http.Header) []byte { h.Add(payment.HeaderID, "msg_other"); return []byte(vectorBody) }, vectorTimestamp, payment.ErrMissingHeaders},
		{"timestamp twice", func(h http.Header) []byte {
			h.Add(payment.HeaderTimestamp, "1")
			return []byte(vectorBody)
		}, vectorTimestamp, payment.ErrMissingHeaders},
		{"id too long", func(h http.Header) []byte {
			h.Set(payment.HeaderID, string(make([]byte, payment.MaxIDLength+1)))
			return []byte(vectorBody)
		}, vectorTimestamp, payment.ErrMissingHeaders},
		// The id's length is in characters, as every header's: 255 "é"
		// (510 bytes) is an id; it is then not the signed one.
		{"id of 255 characters, 510 bytes", func(h http.Header) []byte {
			h.Set(payment.HeaderID, strings.Repeat("é", payment.MaxIDLength))
			return []byte(vectorBody)
		}, vectorTimestamp, payment.ErrBadSignature},
		{"id of 256 characters", func(h http.Header) []byte {
			h.Set(payment.HeaderID, strings.Repeat("é", payment.MaxIDLength+1))
			return []byte(vectorBody)
		}, vectorTimestamp, payment.ErrMissingHeaders},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := payment.NewVerifier([]string{vectorSecret}, at(c.now))
			if err != nil {
				t.Fatal(err)
			}
			h := vectorHeaders()
			body := c.edit(h)
			_, err = v.Verify(h, body)
			if (c.want == nil) != (err == nil) || (c.want != nil && !errors.Is(err, c.want)) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
		})
	}
}

// During a rotation both secrets verify; a secret outside the list does
// not. A secret without the whsec_ prefix is used as raw bytes.
func TestVerifyRotationAndRawSecrets(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	sign := func(secret string) http.Header {
		s, err := payment.NewSigner(secret)
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header{}
		if err := s.Sign(h, "msg_1", now, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		return h
	}
	v, err := payment.NewVerifier([]string{"new-secret", vectorSecret}, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"new-secret", vectorSecret} {
		if _, err := v.Verify(sign(secret), []byte(`{}`)); err != nil {
			t.Errorf("signed with %s: %v", secret, err)
		}
	}
	if _, err := v.Verify(sign("retired-secret"), []byte(`{}`)); !errors.Is(err, payment.ErrBadSignature) {
		t.Errorf("retired secret: %v", err)
	}
	// "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" without the prefix is another key.
	if _, err := v.Verify(sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), []byte(`{}`)); !errors.Is(err, payment.ErrBadSignature) {
		t.Errorf("the raw bytes of a whsec secret verified: %v", err)
	}
	for _, bad := range []string{"whsec_!!!", "whsec_", "whsec_c2hvcnQ="} {
		if _, err := payment.NewVerifier([]string{bad}, nil); err == nil {
			t.Errorf("secret %q accepted", bad)
		}
		if _, err := payment.NewVerifier([]string{vectorSecret, bad}, nil); err == nil {
			t.Errorf("secret %q accepted among others", bad)
		}
	}
	if _, err := payment.NewSigner(""); err == nil {
		t.Error("an empty secret was accepted")
	}
}

// A webhook-id of 200 "é" (400 bytes, 200 characters) is signed and
// verified: the bound is in characters.
func TestVerifyCountsTheIDInCharacters(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s, err := payment.NewSigner(vectorSecret)
	if err != nil {
		t.Fatal(err)
	}
	v, err := payment.NewVerifier([]string{vectorSecret}, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	id := strings.Repeat("é", 200)
	h := http.Header{}
	if err := s.Sign(h, id, now, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if got, err := v.Verify(h, []byte(`{}`)); err != nil || got != id {
		t.Fatalf("id of 200 characters: %q, %v", got, err)
	}
}
