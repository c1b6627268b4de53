package console

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

//go:embed web
var web embed.FS

// requestTimeout bounds the etcd requests of one page or action.
const requestTimeout = 10 * time.Second

// server is the console behind [Handler].
type server struct {
	cli  *clientv3.Client
	opts options
	csrf string // a per-handler token every POST must carry
	tmpl func() (*template.Template, error)
	hub  *hub
	mux  *http.ServeMux
}

// Handler returns the console for the etcd client cli, which it borrows:
// the caller closes it after the server stops. Its pages are "/" (every
// prefix), "/config?name=NAME" (one configuration's history and diffs)
// and the endpoints they use, whose links are all relative; mount it
// under a path with [http.StripPrefix]. It answers only requests whose Host names it (see
// [WithAllowedHosts]). It is safe for concurrent use. Watches it starts
// for open pages end when those pages' requests end: an open page's event
// stream lasts until its request's context ends, so a server that shuts
// down gracefully should give its requests a context it cancels then
// ([http.Server.BaseContext]), as "lockctl console" does.
func Handler(cli *clientv3.Client, opts ...Option) http.Handler {
	s := &server{cli: cli, hub: &hub{cli: cli, feeds: map[string]*feed{}}, mux: http.NewServeMux()}
	for _, o := range opts {
		o.apply(&s.opts)
	}
	s.opts.normalise()
	var b [16]byte
	_, _ = rand.Read(b[:])
	s.csrf = hex.EncodeToString(b[:])
	s.tmpl = sync.OnceValues(func() (*template.Template, error) {
		return template.New("").Funcs(template.FuncMap{"join": strings.Join, "root": func() string { return "./" }}).ParseFS(web, "web/*.html")
	})
	static, _ := fs.Sub(web, "web")
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /{$}", s.index)
	s.mux.HandleFunc("GET /fragment", s.fragment)
	s.mux.HandleFunc("GET /events", s.events)
	s.mux.HandleFunc("GET /config", s.configPage)
	s.mux.HandleFunc("POST /release", s.release)
	s.mux.HandleFunc("POST /config/rollback", s.rollback)
	s.mux.HandleFunc("POST /config/publish", s.publish)
	return s.checkHost(http.NewCrossOriginProtection().Handler(s.mux))
}

// render writes the template name. Every URL in the pages is relative to
// their <base>, the console's root seen from r's path, so that the console
// works mounted under any path.
func (s *server) render(w http.ResponseWriter, r *http.Request, code int, name string, data any) {
	t, err := s.tmpl()
	if err == nil {
		t, err = t.Clone()
	}
	if err != nil {
		http.Error(w, "console: templates: "+err.Error(), http.StatusInternalServerError)
		return
	}
	root := "./"
	if depth := strings.Count(strings.TrimPrefix(r.URL.Path, "/"), "/"); depth > 0 {
		root = strings.Repeat("../", depth)
	}
	t.Funcs(template.FuncMap{"root": func() string { return root }})
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	if err := t.ExecuteTemplate(w, name, data); err != nil {
		fmt.Fprintf(w, "<p class=error>console: %s</p>", template.HTMLEscapeString(err.Error()))
	}
}

// under reports whether key lies under one of the prefixes shown: the
// console reads and acts nowhere else.
func (s *server) under(key string) bool {
	for _, p := range s.opts.prefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

func (s *server) known(prefix string) bool {
	for _, p := range s.opts.prefixes {
		if p == prefix {
			return true
		}
	}
	return false
}

func (s *server) index(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	var views []prefixView
	for _, p := range s.opts.prefixes {
		v := readPrefix(ctx, s.cli, p)
		v.Write, v.CSRF = s.opts.write, s.csrf
		views = append(views, v)
	}
	s.render(w, r, http.StatusOK, "index", map[string]any{"Views": views, "Write": s.opts.write, "CSRF": s.csrf})
}

func (s *server) fragment(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Query().Get("prefix")
	if !s.known(p) {
		http.Error(w, "console: not a prefix this console shows", http.StatusNotFound)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	v := readPrefix(ctx, s.cli, p)
	v.Write, v.CSRF = s.opts.write, s.csrf
	s.render(w, r, http.StatusOK, "prefix", v)
}

// events streams "change" events, whose data is the prefix that changed
// (or a config page's name), until the client goes away or a watch
// ends for good (the client closed), when the browser reconnects.
func (s *server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "console: streaming unsupported", http.StatusInternalServerError)
		return
	}
	prefixes := s.opts.prefixes
	name := r.URL.Query().Get("config")
	if strings.ContainsAny(name, "\r\n") {
		// The name goes back in an event's data line, which a line break
		// would end.
		http.Error(w, "console: a configuration name has no line breaks", http.StatusBadRequest)
		return
	}
	if name != "" && s.under(name) {
		prefixes = []string{name + "/"}
	}
	changed := make(chan string)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(r.Context())
	for _, p := range prefixes {
		ch, f, stop := s.hub.subscribe(ctx, p)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-f.done:
					// A refused prefix stays quiet (the page shows the
					// refusal); any other end closes the stream, and the
					// browser's reconnect follows the prefix anew.
					if !f.refused() {
						cancel()
					}
					return
				case <-ch:
				}
				select {
				case <-ctx.Done():
					return
				case changed <- p:
				}
			}
		}()
	}
	defer wg.Wait()
	defer cancel()
	// "open" is sent once every watch is in place: a page that fetches
	// again on open misses nothing.
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": open\n\n")
	fl.Flush()
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-changed:
			fmt.Fprintf(w, "event: change\ndata: %s\n\n", p)
			fl.Flush()
		}
	}
}
