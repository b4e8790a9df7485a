package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/orders-reference/orders/internal/config"
	"github.com/orders-reference/orders/internal/httpx"
)

// newProbeCmd is "ordersctl probe URL": a health check for containers
// without a shell or curl (the image is distroless).
func newProbeCmd() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "probe [URL]",
		Short: "Exit 0 if URL (default http://127.0.0.1:8000/readyz) answers 2xx",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			url := "http://127.0.0.1:8000/readyz"
			if len(args) == 1 {
				url = args[0]
			}
			return probe(cmd.Context(), url, timeout, cmd.OutOrStdout())
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "give up after this long")
	return cmd
}

func probe(ctx context.Context, url string, timeout time.Duration, out io.Writer) error {
	if err := checkDuration("timeout", timeout); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	shown := httpx.ClipTo(config.Redacted(url), 256) // what is printed of it: no password or token, bounded
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("probe %s: not a URL", shown) // the parser's error quotes it whole
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var ue *neturl.Error // names the URL, its query included
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("probe %s: %w", shown, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %d: %s", shown, resp.StatusCode, cell(string(body)))
	}
	_, err = fmt.Fprintf(out, "%s: %d %s\n", shown, resp.StatusCode, cell(string(body)))
	return err
}
