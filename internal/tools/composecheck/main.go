// Command composecheck loads docker-compose.yml the way `docker compose
// config` does (compose-go, with the Compose schema), once without
// profiles, once with each profile the file declares on its own (as
// `docker compose --profile P up` would: a service of P that depends on a
// service of another profile fails there, not with every profile on) and
// once with every profile, and fails on any error. On each of those
// projects it also checks what only `docker compose up` would find: two
// enabled services publishing the same host port. It lives in its own
// module so that the service does not depend on compose-go; `make
// compose-check` runs it (no Docker needed).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: composecheck docker-compose.yml")
		os.Exit(2)
	}
	if err := check(context.Background(), os.Args[1], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "composecheck:", err)
		os.Exit(1)
	}
}

// check validates the compose file at path under every profile selection
// and prints one line per selection on out.
func check(ctx context.Context, path string, out io.Writer) error {
	all, err := load(ctx, path, []string{"*"})
	if err != nil {
		return err
	}
	selections := [][]string{nil}
	for _, p := range declaredProfiles(all) {
		selections = append(selections, []string{p})
	}
	selections = append(selections, []string{"*"})
	for _, profiles := range selections {
		p, err := load(ctx, path, profiles)
		if err != nil {
			return err
		}
		if err := checkPorts(p); err != nil {
			return fmt.Errorf("invalid with profiles %v: %w", profiles, err)
		}
		fmt.Fprintf(out, "%s valid; profiles %v: services %v\n", path, profiles, p.ServiceNames())
	}
	return nil
}

// load loads the project of path with profiles enabled.
func load(ctx context.Context, path string, profiles []string) (*types.Project, error) {
	opts, err := cli.NewProjectOptions([]string{path}, cli.WithOsEnv, cli.WithProfiles(profiles))
	if err != nil {
		return nil, err
	}
	p, err := opts.LoadProject(ctx)
	if err != nil {
		return nil, fmt.Errorf("invalid with profiles %v: %w", profiles, err)
	}
	return p, nil
}

// declaredProfiles lists the profiles of p's services, sorted.
func declaredProfiles(p *types.Project) []string {
	var out []string
	for _, s := range p.AllServices() {
		for _, name := range s.Profiles {
			if !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	slices.Sort(out)
	return out
}

// checkPorts fails if two enabled services of p publish the same host port
// and protocol on overlapping addresses (an empty address or 0.0.0.0 is
// every address).
func checkPorts(p *types.Project) error {
	type binding struct{ service, ip, port, proto string }
	var seen []binding
	for _, name := range p.ServiceNames() {
		for _, port := range p.Services[name].Ports {
			if port.Published == "" {
				continue
			}
			b := binding{name, port.HostIP, port.Published, strings.ToLower(cmpOr(port.Protocol, "tcp"))}
			for _, o := range seen {
				if o.port == b.port && o.proto == b.proto && overlap(o.ip, b.ip) {
					return fmt.Errorf("services %q and %q both publish host port %s/%s", o.service, b.service, b.port, b.proto)
				}
			}
			seen = append(seen, b)
		}
	}
	return nil
}

// overlap reports whether host addresses a and b share an address.
func overlap(a, b string) bool {
	every := func(ip string) bool { return ip == "" || ip == "0.0.0.0" || ip == "::" }
	return a == b || every(a) || every(b)
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
