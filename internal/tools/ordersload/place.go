package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

const placeUsage = `Usage: ordersload place -hot PRODUCT-ID [flags]

Places orders in a closed loop against a running ordersd: each of -conns
clients sends POST /orders (its own customer, an Idempotency-Key, quantity
1), waits for the answer and sends the next, for -duration or until it is
stopped (SIGINT/SIGTERM); -hot-share of the orders are on the -hot product,
the others on active products from GET /products. A failed connection is
counted and retried after a short pause, so the load survives the server
being killed; stop the tool before restarting the server if the restarted
server must not see it. Prints the counts on stdout at the end.
`

func placeMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ordersload place", flag.ContinueOnError)
	flagUsage(fs, stderr, placeUsage)
	base := fs.String("url", "http://127.0.0.1:8000", "ordersd base URL")
	hot := fs.String("hot", "", "the hot product's id (required)")
	hotShare := fs.Float64("hot-share", 0.5, "share of the orders on the hot product")
	nProducts := fs.Int("products", 200, "other products to spread the rest over (active ones, from GET /products)")
	conns := fs.Int("conns", 32, "concurrent clients")
	duration := fs.Duration("duration", 30*time.Second, "how long to place orders")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *hot == "" || *conns < 1 || *nProducts < 0 || *hotShare < 0 || *hotShare > 1 {
		return errors.New("-hot is required; -conns must be positive, -products non-negative, -hot-share within 0..1")
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: *conns}}
	others, err := activeProducts(ctx, client, *base, *hot, *nProducts)
	if err != nil {
		return err
	}
	if len(others) == 0 {
		*hotShare = 1
	}
	ctx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()
	run := fmt.Sprintf("%x", time.Now().UnixNano())
	var seq, created, refused, failed atomic.Int64
	var codes sync.Map // status code → *atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range *conns {
		wg.Go(func() {
			for ctx.Err() == nil {
				n := seq.Add(1)
				product := *hot
				if rand.Float64() >= *hotShare {
					product = others[rand.IntN(len(others))]
				}
				body, _ := json.Marshal(map[string]any{
					"user_email": fmt.Sprintf("place-%s-%d@example.com", run, n),
					"items":      []map[string]any{{"product_id": product, "quantity": 1}},
				})
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, *base+"/orders", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Idempotency-Key", fmt.Sprintf("place-%s-%d", run, n))
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
						time.Sleep(20 * time.Millisecond)
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated {
					created.Add(1)
					continue
				}
				refused.Add(1)
				c, _ := codes.LoadOrStore(resp.StatusCode, new(atomic.Int64))
				c.(*atomic.Int64).Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	other := ""
	codes.Range(func(k, v any) bool {
		other += fmt.Sprintf(" %v×%d", k, v.(*atomic.Int64).Load())
		return true
	})
	fmt.Fprintf(stdout, "place: %d orders placed (201) in %s, %.0f/s; %d other answers%s; %d failed connections\n",
		created.Load(), elapsed.Round(time.Millisecond), float64(created.Load())/elapsed.Seconds(), refused.Load(), other, failed.Load())
	return nil
}

// activeProducts returns up to n active products other than hot, from the
// query API (pages of 100).
func activeProducts(ctx context.Context, client *http.Client, base, hot string, n int) ([]string, error) {
	var ids []string
	cursor := ""
	for len(ids) < n {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/products?is_active=true&limit=100"+cursorParam(cursor), nil)
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("list products: %w", err)
		}
		var page struct {
			Items []struct {
				ID    string `json:"id"`
				Stock int64  `json:"stock"`
			} `json:"items"`
			NextCursor *string `json:"next_cursor"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("list products: %s: %w", resp.Status, err)
		}
		for _, p := range page.Items {
			if p.ID != hot && p.Stock > 0 && len(ids) < n {
				ids = append(ids, p.ID)
			}
		}
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	return ids, nil
}

// cursorParam is the cursor parameter of a list's next page: none for the
// first page (the API refuses an empty parameter, as it refuses an empty
// limit).
func cursorParam(cursor string) string {
	if cursor == "" {
		return ""
	}
	return "&cursor=" + url.QueryEscape(cursor)
}
