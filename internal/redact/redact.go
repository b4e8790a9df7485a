// Package redact makes connection strings fit to print: in errors, logs
// and help texts. Anything that may be a secret is masked; the rest stays
// readable, so that an operator can still tell which server is meant.
//
// It has no dependencies beyond the standard library, so that every
// command and tool of the module can use it.
package redact

import (
	"net/url"
	"strings"
)

// Mask replaces a secret.
const Mask = "xxxxx"

// Unparseable stands for a value that could not be parsed, of which
// nothing is printed (but its scheme, when it has one).
const Unparseable = "<unparseable>"

// secretKey reports whether a query parameter or keyword/value setting
// named key holds a secret: password, passwd, pass, pwd, secret,
// sslpassword, token and the like, in any case.
func secretKey(key string) bool {
	k := strings.ToLower(strings.TrimSpace(key))
	switch k {
	case "pass", "pwd", "key", "apikey", "api_key", "api-key", "auth", "authorization", "credentials":
		return true
	}
	for _, s := range []string{"password", "passwd", "secret", "token"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// URL returns raw, a connection URL or DSN, with its secrets masked:
//
//   - a URL's userinfo password (postgres://u:pw@h, redis://:pw@h,
//     esdb://admin:pw@h1,h2), and an http(s) URL's user name given alone
//     (https://TOKEN@collector: HTTP has no user without a password, so
//     it is a token; a database's user is a role, and stays);
//   - the value of every query parameter that names a secret (password,
//     passwd, pass, secret, sslpassword, token…, in any case and however
//     percent-encoded), and the fragment;
//   - in a keyword/value DSN (host=h password=pw user=u), the value of
//     every keyword that names a secret, quoted values ('a b') included.
//
// A value that is neither a URL with a scheme nor a keyword/value DSN, or
// that does not parse as one, is printed as its scheme followed by
// Unparseable, or as Unparseable alone.
func URL(raw string) string {
	if raw == "" {
		return ""
	}
	if scheme, _, ok := strings.Cut(raw, "://"); ok && validScheme(scheme) {
		u, err := url.Parse(raw)
		if err != nil || u.Opaque != "" {
			return scheme + "://" + Unparseable
		}
		return redactURL(u)
	}
	if looksLikeKeywordValue(raw) {
		if s, ok := keywordValue(raw); ok {
			return s
		}
	}
	return Unparseable
}

// validScheme reports whether s is a URL scheme (RFC 3986: a letter, then
// letters, digits, +, - or .).
func validScheme(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z':
		case i > 0 && ('0' <= r && r <= '9' || r == '+' || r == '-' || r == '.'):
		default:
			return false
		}
	}
	return true
}

func redactURL(u *url.URL) string {
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), Mask)
		} else if s := strings.ToLower(u.Scheme); s == "http" || s == "https" {
			u.User = url.User(Mask)
		}
	}
	if u.RawQuery != "" {
		u.RawQuery = redactQuery(u.RawQuery)
	}
	if u.Fragment != "" || u.RawFragment != "" {
		u.Fragment, u.RawFragment = Mask, ""
	}
	return u.String()
}

// redactQuery masks the values of secret parameters in a raw query. Pairs
// are separated by & (and, by some parsers, ;): a pair whose key names a
// secret keeps its key and loses the rest of its &-separated piece, so a
// value holding a ; is masked whole, and a key after a ; is looked at too.
func redactQuery(raw string) string {
	pieces := strings.Split(raw, "&")
	for i, piece := range pieces {
		subs := strings.Split(piece, ";")
		for j, sub := range subs {
			k, _, _ := strings.Cut(sub, "=")
			key, err := url.QueryUnescape(k)
			if err != nil {
				key = k
			}
			if secretKey(key) {
				pieces[i] = strings.Join(append(subs[:j:j], k+"="+Mask), ";")
				break
			}
		}
	}
	return strings.Join(pieces, "&")
}

// looksLikeKeywordValue reports whether s starts as a keyword/value DSN
// does: a keyword, optional spaces, then =.
func looksLikeKeywordValue(s string) bool {
	s = strings.TrimLeft(s, " \t\r\n\f\v")
	i := 0
	for i < len(s) && (s[i] == '_' || 'a' <= s[i] && s[i] <= 'z' || 'A' <= s[i] && s[i] <= 'Z' || i > 0 && '0' <= s[i] && s[i] <= '9') {
		i++
	}
	if i == 0 {
		return false
	}
	s = strings.TrimLeft(s[i:], " \t\r\n\f\v")
	return strings.HasPrefix(s, "=")
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// keywordValue masks a keyword/value DSN (libpq's grammar: key = value
// pairs separated by spaces, a value either unquoted up to the next space
// or single-quoted, with backslash escapes in both), rewritten with one
// space between pairs. It reports false if s does not parse.
func keywordValue(s string) (string, bool) {
	var out []string
	i := 0
	for {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i == len(s) {
			break
		}
		start := i
		for i < len(s) && s[i] != '=' && !isSpace(s[i]) {
			i++
		}
		key := s[start:i]
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if key == "" || i == len(s) || s[i] != '=' {
			return "", false
		}
		i++
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		vstart := i
		if i < len(s) && s[i] == '\'' {
			i++
			closed := false
			for i < len(s) {
				if s[i] == '\\' {
					i += 2
					continue
				}
				if s[i] == '\'' {
					closed = true
					i++
					break
				}
				i++
			}
			if !closed || i > len(s) {
				return "", false
			}
		} else {
			for i < len(s) && !isSpace(s[i]) {
				if s[i] == '\\' {
					i++
				}
				i++
			}
			if i > len(s) {
				return "", false
			}
		}
		value := s[vstart:i]
		if secretKey(key) {
			value = Mask
		}
		out = append(out, key+"="+value)
	}
	if len(out) == 0 {
		return "", false
	}
	return strings.Join(out, " "), true
}
