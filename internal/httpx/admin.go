package httpx

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
)

// AdminChallenge is the WWW-Authenticate challenge of the admin API: there
// is no registered scheme for a shared-secret header, so the scheme token
// names it.
const AdminChallenge = `X-Admin-Secret realm="orders-admin"`

// RequireAdmin lets a request through only with the right X-Admin-Secret.
// Both sides are hashed before the constant-time comparison, so neither
// the secret's length nor its content leaks through timing. A missing and a
// wrong secret get the same answer. The header is read as every header
// the service reads (Once): sent twice, one right and one wrong, it is
// 400, never read as its first value.
func RequireAdmin(secret string) func(http.Handler) http.Handler {
	want := sha256.Sum256([]byte(secret))
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sent, _, p := singleHeader(r, "X-Admin-Secret")
			if p != nil {
				WriteProblem(w, *p)
				return
			}
			got := sha256.Sum256([]byte(sent))
			if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
				// RFC 9110 §11.6.1: a 401 carries a challenge; the
				// scheme names the header that answers it.
				w.Header().Set("WWW-Authenticate", AdminChallenge)
				WriteProblem(w, Problem{Type: TypeUnauthorized,
					Detail: "A valid X-Admin-Secret header is required."})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
