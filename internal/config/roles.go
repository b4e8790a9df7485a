package config

import (
	"fmt"
	"slices"
	"strings"
)

// Roles a server process can run.
const (
	RoleCommand   = "command"   // the command API and the payment webhook
	RoleQuery     = "query"     // the query API
	RoleProjector = "projector" // the read-model projections
	RoleProcess   = "process"   // the payment process manager
	RoleFakePay   = "fakepay"   // the fake payment provider, in process and at /fakepay
)

// AllRoles is every role, in the order they are listed.
var AllRoles = []string{RoleCommand, RoleQuery, RoleProjector, RoleProcess, RoleFakePay}

// Roles is the set of roles a process runs.
type Roles struct {
	set             map[string]bool
	all             bool // "all" was asked for
	explicitFakePay bool // fakepay was named
}

// UnmarshalText reads a comma-separated list of roles, or "all".
func (r *Roles) UnmarshalText(text []byte) error {
	r.set, r.all, r.explicitFakePay = map[string]bool{}, false, false
	for _, name := range strings.Split(string(text), ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		switch {
		case name == "":
			continue
		case name == "all":
			r.all = true
			for _, role := range AllRoles {
				r.set[role] = true
			}
		case slices.Contains(AllRoles, name):
			r.set[name] = true
			r.explicitFakePay = r.explicitFakePay || name == RoleFakePay
		default:
			return fmt.Errorf("unknown role %q (roles: all, %s)", name, strings.Join(AllRoles, ", "))
		}
	}
	if len(r.set) == 0 {
		return fmt.Errorf("no role given (roles: all, %s)", strings.Join(AllRoles, ", "))
	}
	return nil
}

// Has reports whether role is in the set.
func (r Roles) Has(role string) bool { return r.set[role] }

// String lists the roles in their canonical order.
func (r Roles) String() string {
	var names []string
	for _, role := range AllRoles {
		if r.set[role] {
			names = append(names, role)
		}
	}
	return strings.Join(names, ",")
}
