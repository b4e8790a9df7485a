package pgtest

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Proxy is a TCP proxy between a test's connections and the test server,
// which the test can cut off the database as a network failure would. Give
// each instance of a service under test a pool of its own through a proxy
// of its own (NewPoolVia) to cut that instance alone.
//
// It forwards bytes as they come; it knows nothing of the protocol.
type Proxy struct {
	ln             net.Listener
	network, raddr string // the server

	mu     sync.Mutex
	state  proxyState
	links  map[*link]struct{}
	held   []net.Conn // accepted during a partition, never forwarded
	closed bool
	wg     sync.WaitGroup // the accept loop and every copier
}

type proxyState int

const (
	flowing     proxyState = iota
	cut                    // connections closed, new ones refused
	partitioned            // nothing gets through, nothing is closed
)

// link is one proxied connection: the client's and the server's sides.
type link struct {
	client, server net.Conn
	frozen         atomic.Bool // partitioned: nothing is forwarded
	once           sync.Once
	done           chan struct{} // closed with the link
}

func (l *link) close() {
	l.once.Do(func() {
		close(l.done)
		_ = l.client.Close()
		_ = l.server.Close()
	})
}

// NewProxy starts a proxy on 127.0.0.1 (a free port) to the test server
// (ServerURL), and closes it, with every connection through it, when t
// ends.
func NewProxy(t testing.TB) *Proxy {
	t.Helper()
	cfg, err := pgconn.ParseConfig(ServerURL())
	if err != nil {
		t.Fatalf("pgtest: server url: %v", err)
	}
	network, raddr := "tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	if strings.HasPrefix(cfg.Host, "/") {
		network, raddr = "unix", filepath.Join(cfg.Host, ".s.PGSQL."+strconv.Itoa(int(cfg.Port)))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pgtest: proxy: %v", err)
	}
	p := &Proxy{ln: ln, network: network, raddr: raddr, links: map[*link]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Addr is the address the proxy listens on (127.0.0.1:port).
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every connection through the proxy at once, both ways, and
// refuses new ones (accepted and closed at once) until Restore: the
// server ends the sessions (their transactions and session locks go
// with them) and the clients see their connections fail, as after a
// crash of the network path that both sides notice.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state = cut
	p.dropLocked()
}

// Partition makes the network silent until Restore, as a partition that
// drops packets would: nothing sent either way gets through, closes
// included, so neither side learns anything; clients wait on their
// timeouts, and the server keeps the sessions (and their locks) open. New
// connections are accepted and never answered.
func (p *Proxy) Partition() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state = partitioned
	for l := range p.links {
		l.frozen.Store(true)
	}
}

// Restore lets connections through again. The connections of a partition
// are closed, both ways, as if their TCP sessions had timed out: what was
// sent during it is lost.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == partitioned {
		p.dropLocked()
	}
	p.state = flowing
}

// Close stops the proxy and closes every connection through it. NewProxy
// registers it with t.Cleanup; calling it more than once is harmless.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.dropLocked()
	p.mu.Unlock()
	_ = p.ln.Close()
	p.wg.Wait()
}

// dropLocked closes every connection.
func (p *Proxy) dropLocked() {
	for l := range p.links {
		l.close()
		delete(p.links, l)
	}
	for _, c := range p.held {
		_ = c.Close()
	}
	p.held = nil
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(5 * time.Millisecond) // a transient failure (too many files)
			continue
		}
		p.mu.Lock()
		switch {
		case p.closed || p.state == cut:
			_ = c.Close()
		case p.state == partitioned:
			p.held = append(p.held, c)
		default:
			p.wg.Add(1)
			go p.connect(c)
		}
		p.mu.Unlock()
	}
}

// connect dials the server for client c and forwards both ways.
func (p *Proxy) connect(c net.Conn) {
	defer p.wg.Done()
	s, err := net.DialTimeout(p.network, p.raddr, 5*time.Second)
	if err != nil {
		_ = c.Close()
		return
	}
	l := &link{client: c, server: s, done: make(chan struct{})}
	p.mu.Lock()
	switch {
	case p.closed || p.state == cut:
		p.mu.Unlock()
		l.close()
		return
	case p.state == partitioned:
		l.frozen.Store(true)
	}
	p.links[l] = struct{}{}
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		p.copy(l, l.server, l.client)
	}()
	p.copy(l, l.client, l.server)
	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
}

// copy forwards from src to dst until either fails, then closes the link;
// while the link is frozen it forwards nothing, and waits for the link to
// be closed by Restore, Cut or Close.
func (p *Proxy) copy(l *link, dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if l.frozen.Load() {
			<-l.done
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	l.close()
}

// NewPoolVia returns a pool on base's database (a pool of NewPool, say)
// whose every connection goes through p, closed when t ends; configure,
// if given, adjusts its configuration first (an application_name per
// instance, say).
func NewPoolVia(t testing.TB, p *Proxy, base *pgxpool.Pool, maxConns int32, configure ...func(*pgxpool.Config)) *pgxpool.Pool {
	t.Helper()
	cfg := base.Config() // a copy
	host, port, err := net.SplitHostPort(p.Addr())
	if err != nil {
		t.Fatalf("pgtest: proxy address: %v", err)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		t.Fatalf("pgtest: proxy address: %v", err)
	}
	cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Fallbacks = host, uint16(n), nil
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	for _, f := range configure {
		f(cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("pgtest: pool through the proxy: %v", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		t.Fatalf("pgtest: pool through the proxy: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}
