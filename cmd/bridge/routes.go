package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/core/gateway"
	"github.com/statusgate/statusgate/records"
)

// The route table over HTTP, on the admin server: GET /v1/routes lists it, POST
// /v1/routes adds a route, DELETE /v1/routes/{chat} removes one; each change is
// persisted and applied at once (gateway.AddRoute, RemoveRoute). Every request needs
// "Authorization: Bearer <http.token_file>". `bridge routes` is the client.

// routeJSON is a route as the API reads and writes it.
type routeJSON struct {
	Chat     string        `json:"chat"`
	Channels []channelJSON `json:"channels"`
	LongText string        `json:"long_text,omitempty"`
}

type channelJSON struct {
	Channel   string `json:"channel"`
	Direction string `json:"direction,omitempty"`
}

// maxRouteBody bounds a POST /v1/routes body.
const maxRouteBody = 64 << 10

func routeToJSON(r gateway.Route) routeJSON {
	out := routeJSON{Chat: r.Chat, LongText: r.LongText.String(), Channels: []channelJSON{}}
	for _, ch := range r.Channels {
		out.Channels = append(out.Channels, channelJSON{Channel: string(ch.Channel), Direction: ch.Direction.String()})
	}
	return out
}

// route reads a route, or says what is wrong with it.
func (rj routeJSON) route() (gateway.Route, error) {
	lt, err := gateway.ParseLongText(rj.LongText)
	if err != nil {
		return gateway.Route{}, err
	}
	r := gateway.Route{Chat: rj.Chat, LongText: lt}
	for i, ch := range rj.Channels {
		dir, err := gateway.ParseDirection(ch.Direction)
		if err != nil {
			return gateway.Route{}, fmt.Errorf("channels[%d]: %w", i, err)
		}
		r.Channels = append(r.Channels, gateway.RouteChannel{Channel: bridges.ChannelID(ch.Channel), Direction: dir})
	}
	return r, nil
}

// routesHandler serves /v1/routes for gw, behind the bearer token.
func routesHandler(gw *gateway.Gateway, token string) http.Handler {
	sum := sha256.Sum256([]byte(token))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/routes", func(w http.ResponseWriter, r *http.Request) {
		out := []routeJSON{}
		for _, rt := range gw.Routes() {
			out = append(out, routeToJSON(rt))
		}
		writeRouteJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("POST /v1/routes", func(w http.ResponseWriter, r *http.Request) {
		var rj routeJSON
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRouteBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rj); err != nil {
			routeError(w, http.StatusBadRequest, fmt.Errorf("read the route: %w", err))
			return
		}
		rt, err := rj.route()
		if err != nil {
			routeError(w, http.StatusBadRequest, err)
			return
		}
		if err := gw.AddRoute(r.Context(), rt); err != nil {
			routeError(w, routeStatus(err), err)
			return
		}
		writeRouteJSON(w, http.StatusCreated, routeToJSON(rt))
	})
	mux.HandleFunc("DELETE /v1/routes/{chat}", func(w http.ResponseWriter, r *http.Request) {
		if err := gw.RemoveRoute(r.Context(), r.PathValue("chat")); err != nil {
			routeError(w, routeStatus(err), err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		gs := sha256.Sum256([]byte(got))
		if !ok || token == "" || subtle.ConstantTimeCompare(gs[:], sum[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="statusgate"`)
			routeError(w, http.StatusUnauthorized, errors.New("a bearer token (http.token_file) is required"))
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// routeStatus is the HTTP status of a route change's error.
func routeStatus(err error) int {
	switch {
	case errors.Is(err, gateway.ErrInvalidRoute):
		return http.StatusBadRequest
	case errors.Is(err, records.ErrRouteExists), errors.Is(err, records.ErrChannelTaken):
		return http.StatusConflict
	case errors.Is(err, records.ErrNoRoute):
		return http.StatusNotFound
	case errors.Is(err, gateway.ErrNotRunning):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func routeError(w http.ResponseWriter, status int, err error) {
	writeRouteJSON(w, status, map[string]string{"error": err.Error()})
}

func writeRouteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

const routesUsage = `usage: bridge routes [-config FILE] list
       bridge routes [-config FILE] add [-long-text split|truncate] CHAT CHANNEL[=in|=out]...
       bridge routes [-config FILE] remove CHAT

Lists or changes the route table of the running gateway, through its admin server
(http.listen, token in http.token_file): a change is persisted and applied at once, and
a route added stays after a restart. CHAT is the Status public chat; a CHANNEL is
"network:local" as its connector names it (api:status), both ways unless =in (from the
channel only) or =out (to it only). Routes of the configuration file are loaded again at
every start. Exits 0 on success, 1 when the gateway refuses (with its reason), 3 on a
configuration problem.

flags:
`

// runRoutes is `bridge routes`. It returns the exit code.
func runRoutes(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("routes", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), routesUsage)
		fs.PrintDefaults()
	}
	cfgPath := fs.String("config", "", "configuration file (default: the embedded config.example.yaml)")
	longText := fs.String("long-text", "", "add: split (default) or truncate a text longer than a destination takes")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	// Flags may follow the verb: "routes add -long-text truncate dev api:dev".
	rest := fs.Args()
	if len(rest) > 0 {
		if err := fs.Parse(rest[1:]); err != nil {
			return exitUsage
		}
		rest = append([]string{rest[0]}, fs.Args()...)
	}
	if len(rest) == 0 {
		fs.Usage()
		return exitUsage
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, "bridge routes:", err)
		return exitConfig
	}
	if cfg.HTTP.Listen == "" {
		fmt.Fprintln(stderr, "bridge routes: http.listen is not set: the route table is served by the admin server")
		return exitConfig
	}
	token, err := loadToken(cfg.HTTP.TokenFile)
	if err != nil {
		fmt.Fprintln(stderr, "bridge routes: http.token_file:", err)
		return exitConfig
	}
	base := "http://" + cfg.HTTP.Listen + "/v1/routes"
	var method, target string
	var body io.Reader
	switch verb := rest[0]; {
	case verb == "list" && len(rest) == 1:
		method, target = http.MethodGet, base
	case verb == "add" && len(rest) >= 2:
		rj := routeJSON{Chat: rest[1], LongText: *longText, Channels: []channelJSON{}}
		for _, a := range rest[2:] {
			ch, dir, _ := strings.Cut(a, "=")
			rj.Channels = append(rj.Channels, channelJSON{Channel: ch, Direction: dir})
		}
		b, _ := json.Marshal(rj)
		method, target, body = http.MethodPost, base, strings.NewReader(string(b))
	case verb == "remove" && len(rest) == 2:
		method, target = http.MethodDelete, base+"/"+url.PathEscape(rest[1])
	default:
		fs.Usage()
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		fmt.Fprintln(stderr, "bridge routes:", err)
		return exitFail
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "bridge routes: is the gateway running?", err)
		return exitFail
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 {
		var e struct{ Error string }
		if json.Unmarshal(reply, &e) == nil && e.Error != "" {
			fmt.Fprintf(stderr, "bridge routes: %s: %s\n", resp.Status, e.Error)
		} else {
			fmt.Fprintf(stderr, "bridge routes: %s\n", resp.Status)
		}
		return exitFail
	}
	if method == http.MethodGet {
		var routes []routeJSON
		if err := json.Unmarshal(reply, &routes); err != nil {
			fmt.Fprintln(stderr, "bridge routes:", err)
			return exitFail
		}
		for _, r := range routes {
			var chs []string
			for _, ch := range r.Channels {
				s := ch.Channel
				if ch.Direction != "both" && ch.Direction != "" {
					s += "=" + ch.Direction
				}
				chs = append(chs, s)
			}
			line := r.Chat + "\t" + strings.Join(chs, " ")
			if r.LongText != "" && r.LongText != "split" {
				line += "\tlong_text=" + r.LongText
			}
			fmt.Fprintln(stdout, line)
		}
		return exitOK
	}
	fmt.Fprintf(stdout, "%s %s: ok\n", rest[0], rest[1])
	return exitOK
}
