package gw

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Route sends the requests that match Method and Path to Service.
type Route struct {
	// Method is an HTTP method, or "" or "*" for any.
	Method string `json:"method,omitempty"`
	// Path is a pattern of "/"-separated segments: a fixed segment matches
	// itself, ":name" matches any one non-empty segment, and a last "*"
	// matches the rest of the path, possibly empty.
	Path string `json:"path"`
	// Service is the registry service the requests go to.
	Service string `json:"service"`
}

// segment kinds, in order of precedence: at the first segment where two
// matching routes differ, the lower kind wins.
const (
	fixed = iota
	param
	wildcard
)

type segment struct {
	kind int
	text string // the fixed text, or the parameter's name
}

type compiled struct {
	Route
	segs []segment
}

// Table is a set of routes, ready to match requests. It is immutable and
// safe for concurrent use.
type Table struct{ routes []compiled }

// ParseTable decodes a JSON array of routes, as stored in the config
// value, and checks it.
func ParseTable(data []byte) (*Table, error) {
	var routes []Route
	if err := json.Unmarshal(data, &routes); err != nil {
		return nil, err
	}
	return NewTable(routes)
}

// NewTable checks routes and returns their table: every route needs a
// path starting with "/", a service, parameters with names, "*" only
// last, and no two routes may match the same requests.
func NewTable(routes []Route) (*Table, error) {
	t := &Table{}
	seen := map[string]bool{}
	for _, r := range routes {
		if r.Method == "*" {
			r.Method = ""
		}
		segs, err := compile(r.Path)
		if err == nil && r.Service == "" {
			err = errors.New("no service")
		}
		if err != nil {
			return nil, fmt.Errorf("route %q: %w", strings.TrimSpace(r.Method+" "+r.Path), err)
		}
		shape := r.Method + " " + shapeOf(segs)
		if seen[shape] {
			return nil, fmt.Errorf("route %q: another route matches the same requests", strings.TrimSpace(r.Method+" "+r.Path))
		}
		seen[shape] = true
		t.routes = append(t.routes, compiled{r, segs})
	}
	return t, nil
}

func compile(path string) ([]segment, error) {
	if !strings.HasPrefix(path, "/") {
		return nil, errors.New("path does not start with /")
	}
	parts := strings.Split(path[1:], "/")
	segs := make([]segment, len(parts))
	for i, p := range parts {
		switch {
		case p == "*":
			if i != len(parts)-1 {
				return nil, errors.New("* is not the last segment")
			}
			segs[i] = segment{wildcard, "*"}
		case strings.HasPrefix(p, ":"):
			if len(p) == 1 {
				return nil, errors.New("a parameter has no name")
			}
			segs[i] = segment{param, p[1:]}
		default:
			segs[i] = segment{fixed, p}
		}
	}
	return segs, nil
}

// shapeOf is what two patterns that match the same paths have in common.
func shapeOf(segs []segment) string {
	var sb strings.Builder
	for _, s := range segs {
		switch s.kind {
		case fixed:
			sb.WriteString("/" + s.text)
		case param:
			sb.WriteString("/:")
		default:
			sb.WriteString("/*")
		}
	}
	return sb.String()
}

// Match returns the route for a request and the values of its parameters
// ("*" for the wildcard's), or false if none matches. Of the routes that
// match, the most specific wins: at the first segment where they differ,
// fixed beats a parameter, which beats the wildcard; a route for the
// request's method beats one for any method.
func (t *Table) Match(method, path string) (Route, map[string]string, bool) {
	if !strings.HasPrefix(path, "/") {
		return Route{}, nil, false
	}
	parts := strings.Split(path[1:], "/")
	var best *compiled
	for i := range t.routes {
		r := &t.routes[i]
		if (r.Method == "" || r.Method == method) && matches(r.segs, parts) && (best == nil || beats(r, best)) {
			best = r
		}
	}
	if best == nil {
		return Route{}, nil, false
	}
	params := map[string]string{}
	for i, s := range best.segs {
		switch s.kind {
		case param:
			params[s.text] = parts[i]
		case wildcard:
			params["*"] = strings.Join(parts[i:], "/")
		}
	}
	return best.Route, params, true
}

func matches(segs []segment, parts []string) bool {
	for i, s := range segs {
		if s.kind == wildcard {
			return true
		}
		if i >= len(parts) || s.kind == fixed && parts[i] != s.text || s.kind == param && parts[i] == "" {
			return false
		}
	}
	return len(segs) == len(parts)
}

// beats reports whether a is more specific than b; both match a request.
func beats(a, b *compiled) bool {
	for i := 0; i < len(a.segs) && i < len(b.segs); i++ {
		if a.segs[i].kind != b.segs[i].kind {
			return a.segs[i].kind < b.segs[i].kind
		}
	}
	if len(a.segs) != len(b.segs) {
		// The shorter one matched every segment, so the longer one ends in
		// a wildcard that matched nothing: the shorter one is exact.
		return len(a.segs) < len(b.segs)
	}
	return a.Method != "" && b.Method == ""
}
