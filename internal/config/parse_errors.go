package config

import (
	"encoding"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/caarlos0/env/v11"
)

// byVariable rewrites the parser's per-field errors ("parse error on
// field "RateLimitOrdersPerMinute" of type "int": strconv.ParseInt:
// parsing "abc": invalid syntax") as what an operator can act on: the
// variable, its value (unless the variable holds a secret) and the form
// it must have ("must be a whole number"). T is the configuration struct
// that was parsed.
func byVariable[T any](err error, vars map[string]string) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	out := make([]error, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if f, ok := reflect.TypeFor[T]().FieldByName(pe.Name); ok {
				name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
				e = errors.New(shown(name, vars[name]) + ": " + expectedForm(f.Type, pe.Err))
			}
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

// maxShown bounds the part of a value an error repeats.
const maxShown = 64

// shown names a variable and its value as set, quoted, or only the
// variable when it holds a secret (a secret's value is never printed,
// not even a wrong one: it may be the right secret set in the wrong
// variable).
func shown(name, value string) string {
	if secretVariable(name) {
		return name
	}
	if utf8.RuneCountInString(value) > maxShown {
		value = string([]rune(value)[:maxShown]) + "…"
	}
	return fmt.Sprintf("%s=%q", name, value)
}

// secretVariable reports whether a variable holds a secret.
func secretVariable(name string) bool {
	for _, s := range []string{"SECRET", "PASSWORD", "TOKEN", "KEY"} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	levelType    = reflect.TypeFor[slog.Level]()
	textType     = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// expectedForm says, in an operator's words, what form a variable of type
// t must have; err is the parser's, whose text is shown only when it is
// this package's own (a type of it that reads itself, such as Roles).
func expectedForm(t reflect.Type, err error) string {
	switch {
	case t == durationType:
		return "must be a Go duration such as 250ms, 5s or 15m"
	case t.Kind() == reflect.Slice && t.Elem() == durationType:
		return "must be Go durations separated by commas, such as 1s,2s,4s"
	case t == levelType:
		return "must be a log level: DEBUG, INFO, WARN or ERROR"
	case t.PkgPath() == reflect.TypeFor[Config]().PkgPath() && reflect.PointerTo(t).Implements(textType):
		return err.Error()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "must be true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "must be a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "must be a whole number, 0 or more"
	case reflect.Float32, reflect.Float64:
		return "must be a number such as 0.8"
	}
	return "has a form that cannot be read"
}
