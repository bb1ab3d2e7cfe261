// Package memsizeui is a no-op stand-in for github.com/fjl/memsize/memsizeui,
// providing just the API that go-ethereum v1.9.20's internal/debug uses.
package memsizeui

import "net/http"

// Handler is a disabled memory-size report page.
type Handler struct{}

// Add ignores the root; the stub records nothing.
func (h *Handler) Add(name string, v interface{}) {}

// ServeHTTP always answers 501: memory reports are disabled in this build.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "memsize disabled", http.StatusNotImplemented)
}
