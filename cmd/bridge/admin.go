package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/core/gateway"
	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/identity"
)

// adminServer serves /healthz, /readyz and /metrics for operators and orchestrators,
// and /identicons/ for connectors' icons. It is a plain HTTP listener on http.listen
// (loopback by default): it shows no secrets, but queue names and states are not for
// the public either; expose only /identicons/ through a reverse proxy.
type adminServer struct {
	addr  string
	gw    *gateway.Gateway
	peers func() int
	nd    *node.Node // nil in tests without a node
	reg   *prometheus.Registry
	// token is the bearer token of /v1/routes (http.token_file); "" refuses every
	// request there.
	token string
	log   *slog.Logger
	bound chan net.Addr // receives the listening address once (tests)
	// limits bound each connection; the zero value means adminLimits (tests shorten
	// them).
	limits httpLimits
}

// httpLimits bound what one connection to an HTTP listener may hold: a slow client
// (slowloris: an idle keep-alive, headers or a body dribbled a byte at a time) is cut
// off instead of holding a socket and a goroutine for ever.
type httpLimits struct {
	readHeader     time.Duration // request line and headers
	read           time.Duration // the whole request, body included
	write          time.Duration // from the end of the request headers to the end of the response
	idle           time.Duration // a keep-alive connection between requests
	maxHeaderBytes int           // request line and headers (longer: 431)
}

// adminLimits: every admin response is small and computed at once, so the bounds are
// tight; the request line of the longest valid identicon URL is under 300 bytes.
var adminLimits = httpLimits{
	readHeader:     5 * time.Second,
	read:           10 * time.Second,
	write:          30 * time.Second,
	idle:           60 * time.Second,
	maxHeaderBytes: 8 << 10,
}

// server returns an http.Server for h bounded by l.
func (l httpLimits) server(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: l.readHeader, ReadTimeout: l.read,
		WriteTimeout: l.write, IdleTimeout: l.idle, MaxHeaderBytes: l.maxHeaderBytes}
}

// maxIdenticonID is the longest {id} of GET /identicons/{id} looked at: "status:" and
// a 132-character chat key and ".png" is 143. Longer ids are answered 414 before any
// decoding (issue 15 finding 3: base58 is quadratic; the path is public).
const maxIdenticonID = 256

// readiness is the body of /readyz.
type readiness struct {
	Ready      bool                      `json:"ready"`
	Gateway    bool                      `json:"gateway"`
	Peers      int                       `json:"peers"`
	Connectors map[string]connectorReady `json:"connectors"`
	Queues     map[string]int64          `json:"queues"`
	// Discovery is topic discovery's state (peers per topic, searching or paused).
	Discovery *discoveryReport `json:"discovery,omitempty"`
}

type connectorReady struct {
	State string    `json:"state"`
	Error string    `json:"error,omitempty"`
	Since time.Time `json:"since,omitzero"`
}

func (a *adminServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		r := a.readiness()
		w.Header().Set("Content-Type", "application/json")
		if !r.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(r)
	})
	mux.HandleFunc("GET /peers", func(w http.ResponseWriter, _ *http.Request) {
		if a.nd == nil {
			http.Error(w, "no node", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(reportPeers(a.nd))
	})
	mux.HandleFunc("GET /identicons/{id}", identiconHandler)
	if a.gw != nil {
		routes := routesHandler(a.gw, a.token)
		mux.Handle("/v1/routes", routes)
		mux.Handle("/v1/routes/", routes)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}))
	return mux
}

// identiconHandler serves the Status identicon of a Status user, by sender ID
// ("status:0x04…", URL-escaped, optionally ending in ".png") or bare chat key: the icon
// connectors show for bridged Status users (connectors.slack[].icon_url_base pointed
// here through a public reverse proxy). Only this path needs to be public.
func identiconHandler(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if len(id) > maxIdenticonID {
		http.Error(w, "not a Status chat key: too long", http.StatusRequestURITooLong)
		return
	}
	id = strings.TrimSuffix(id, ".png")
	key := strings.TrimPrefix(id, gateway.StatusNetwork+":")
	pub, err := identity.ParseChatKey(key)
	if err != nil {
		http.Error(w, "not a Status chat key", http.StatusNotFound)
		return
	}
	ic, err := identity.NewIdenticon(pub)
	if err != nil {
		http.Error(w, "identicon failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	// A key's identicon never changes.
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	_, _ = w.Write(ic.PNG)
}

// readiness is ready when the gateway joined its chats and every connector is
// connected. No peer is not unready: a gateway may be the first node of its network.
func (a *adminServer) readiness() readiness {
	r := readiness{Connectors: map[string]connectorReady{}, Queues: a.gw.QueueDepths()}
	select {
	case <-a.gw.Ready():
		r.Gateway = true
	default:
	}
	if a.peers != nil {
		r.Peers = a.peers()
	}
	if a.nd != nil {
		if d := reportDiscovery(a.nd); d.On {
			d.Mailservers, d.Dropped = nil, nil
			r.Discovery = &d
		}
	}
	r.Ready = r.Gateway
	states := a.gw.States()
	names := make([]string, 0, len(states))
	for n := range states {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s := states[n]
		r.Connectors[n] = connectorReady{State: s.State.String(), Error: s.Err, Since: s.Since}
		if s.State != bridges.StateConnected {
			r.Ready = false
		}
	}
	return r
}

// Run serves until ctx ends. A listen failure is returned: the operator asked for
// this address.
func (a *adminServer) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.addr)
	if err != nil {
		return fmt.Errorf("admin http: listen %s: %w", a.addr, err)
	}
	if a.bound != nil {
		a.bound <- ln.Addr()
	}
	a.log.Info("admin http listening", "addr", ln.Addr().String(), "paths", "/healthz /readyz /metrics /peers")
	limits := a.limits
	if limits == (httpLimits{}) {
		limits = adminLimits
	}
	srv := limits.server(a.handler())
	srv.ErrorLog = slog.NewLogLogger(a.log.Handler(), slog.LevelDebug)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("admin http: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin http: %w", err)
	}
	return nil
}
