package payment

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/orders-reference/orders/internal/httpx"
)

// Standard Webhooks headers.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// Tolerance is how far a webhook's timestamp may be from now, either way.
const Tolerance = 5 * time.Minute

// MaxIDLength bounds a webhook id, in characters (as httpx.Header counts
// every header it reads); longer ones are refused.
const MaxIDLength = 255

// MinKeyLength is the shortest key a whsec_ secret may decode to (such
// secrets are generated; a short one is a mistake, and an empty one would
// let anyone sign).
const MinKeyLength = 16

// Verification errors; all of them mean 401 and nothing recorded.
var (
	ErrMissingHeaders = errors.New("webhook signature headers missing or malformed")
	ErrStale          = errors.New("webhook timestamp outside the tolerance")
	ErrBadSignature   = errors.New("no webhook signature matches")
)

// webhookKey reads a signing secret as the contract defines it: the bytes
// of the secret, or, for "whsec_…", the base64-decoded rest.
func webhookKey(secret string) (*standardwebhooks.Webhook, error) {
	if strings.TrimSpace(secret) == "" {
		return nil, errors.New("webhook secret is empty")
	}
	if rest, ok := strings.CutPrefix(secret, "whsec_"); ok {
		key, err := base64.StdEncoding.DecodeString(rest)
		if err != nil { // the decoder's words are Go's, and point into the secret
			return nil, errors.New("webhook secret whsec_…: the rest must be standard base64 (RFC 4648 §4, padded with =)")
		}
		if len(key) < MinKeyLength {
			return nil, fmt.Errorf("webhook secret whsec_…: the key is %d bytes, want at least %d", len(key), MinKeyLength)
		}
	}
	if strings.HasPrefix(secret, "whsec_") {
		return standardwebhooks.NewWebhook(secret)
	}
	return standardwebhooks.NewWebhookRaw([]byte(secret))
}

// ValidateSecret reports whether secret can sign and verify webhooks.
func ValidateSecret(secret string) error {
	_, err := webhookKey(secret)
	return err
}

// Signer signs webhooks with one secret.
type Signer struct {
	key *standardwebhooks.Webhook
}

// NewSigner returns a Signer for secret.
func NewSigner(secret string) (*Signer, error) {
	key, err := webhookKey(secret)
	if err != nil {
		return nil, err
	}
	return &Signer{key: key}, nil
}

// Sign sets the Standard Webhooks headers of message id, sent at ts with
// body, on h.
func (s *Signer) Sign(h http.Header, id string, ts time.Time, body []byte) error {
	sig, err := s.key.Sign(id, ts, body)
	if err != nil {
		return fmt.Errorf("sign webhook: %w", err)
	}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, sig)
	return nil
}

// Verifier checks webhook signatures against one or more secrets (the
// current one and those being rotated out) and the timestamp against a
// clock.
type Verifier struct {
	keys []*standardwebhooks.Webhook
	now  func() time.Time
}

// NewVerifier returns a Verifier accepting a signature by any of secrets;
// now is the clock (nil: time.Now).
func NewVerifier(secrets []string, now func() time.Time) (*Verifier, error) {
	if len(secrets) == 0 {
		return nil, errors.New("no webhook secret")
	}
	if now == nil {
		now = time.Now
	}
	v := &Verifier{now: now}
	for _, s := range secrets {
		key, err := webhookKey(s)
		if err != nil {
			return nil, err
		}
		v.keys = append(v.keys, key)
	}
	return v, nil
}

// Verify checks a webhook's headers and body and returns its message id.
// Each signature is compared in constant time, against each secret until
// one matches. Each header must be sent once: a second field would be one
// the check never read (the API answers that 400 before it asks, see
// httpx.Once; here it is refused as malformed).
func (v *Verifier) Verify(h http.Header, body []byte) (string, error) {
	for _, name := range []string{HeaderID, HeaderTimestamp, HeaderSignature} {
		if len(h.Values(name)) > 1 {
			return "", fmt.Errorf("%w: %s sent more than once", ErrMissingHeaders, name)
		}
	}
	id, ts, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || utf8.RuneCountInString(id) > MaxIDLength || ts == "" || sigs == "" {
		return "", ErrMissingHeaders
	}
	if !wellFormedSignatures(sigs) {
		return "", fmt.Errorf("%w: %s must be space-separated entries, each a version and a base64 signature (v1,<base64>)", ErrMissingHeaders, HeaderSignature)
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", fmt.Errorf("%w: webhook-timestamp %s", ErrMissingHeaders, httpx.Quote(ts)) // the client's: bounded
	}
	if d := v.now().Sub(time.Unix(secs, 0)); d > Tolerance || d < -Tolerance {
		return "", fmt.Errorf("%w: %s from now", ErrStale, -d.Round(time.Second))
	}
	for _, key := range v.keys {
		if key.VerifyIgnoringTimestamp(body, h) == nil { // the timestamp is checked above, on our clock
			return id, nil
		}
	}
	return "", ErrBadSignature
}

// wellFormedSignatures reports whether a webhook-signature value is what
// Standard Webhooks says it is: signatures separated by single spaces,
// each exactly "<version>,<signature>" — a version "v" and letters or
// digits (v1, v1a), one comma, and a signature in standard base64
// (padded). "v1,<sig>,extra", "<sig>" alone or "v1," is refused, not read
// as whatever part of it the check would take; several signatures, of
// any version, are read (only v1's are checked).
func wellFormedSignatures(header string) bool {
	for entry := range strings.SplitSeq(header, " ") {
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || len(version) < 2 || version[0] != 'v' || sig == "" || strings.Contains(sig, ",") {
			return false
		}
		for i := 1; i < len(version); i++ {
			if c := version[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'z') {
				return false
			}
		}
		if _, err := base64.StdEncoding.Strict().DecodeString(sig); err != nil {
			return false
		}
	}
	return true
}
