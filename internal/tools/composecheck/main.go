// Command composecheck loads docker-compose.yml the way `docker compose
// config` does (compose-go, with the Compose schema), once without and once
// with every profile, and fails on any error. It lives in its own module so
// that the service does not depend on compose-go; `make compose-check` runs
// it (no Docker needed).
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: composecheck docker-compose.yml")
		os.Exit(2)
	}
	for _, profiles := range [][]string{nil, {"*"}} {
		opts, err := cli.NewProjectOptions([]string{os.Args[1]}, cli.WithOsEnv, cli.WithProfiles(profiles))
		if err != nil {
			fmt.Fprintln(os.Stderr, "composecheck:", err)
			os.Exit(1)
		}
		p, err := opts.LoadProject(context.Background())
		if err != nil {
			fmt.Fprintln(os.Stderr, "composecheck: invalid:", err)
			os.Exit(1)
		}
		fmt.Printf("%s valid; profiles %v: services %v\n", os.Args[1], profiles, p.ServiceNames())
	}
}
