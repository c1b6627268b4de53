package gw

import (
	"maps"
	"testing"
)

func TestMatch(t *testing.T) {
	table, err := NewTable([]Route{
		{Method: "GET", Path: "/users/:id", Service: "users"},
		{Method: "GET", Path: "/users/me", Service: "account"},
		{Method: "GET", Path: "/users/:id/orders/:order", Service: "orders"},
		{Path: "/users/*", Service: "users-any"},
		{Path: "/users", Service: "users-list"},
		{Path: "/static/*", Service: "assets"},
		{Method: "GET", Path: "/static/*", Service: "assets-get"},
		{Path: "/", Service: "home"},
		{Path: "/*", Service: "fallback"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, method, path, service string
		params                      map[string]string
	}{
		{"fixed", "GET", "/", "home", map[string]string{}},
		{"param", "GET", "/users/7", "users", map[string]string{"id": "7"}},
		{"fixed beats param", "GET", "/users/me", "account", map[string]string{}},
		{"two params", "GET", "/users/7/orders/9", "orders", map[string]string{"id": "7", "order": "9"}},
		{"param beats wildcard", "GET", "/users/7", "users", map[string]string{"id": "7"}},
		{"wildcard for another method", "POST", "/users/7", "users-any", map[string]string{"*": "7"}},
		{"wildcard takes the rest", "GET", "/users/7/cart/1", "users-any", map[string]string{"*": "7/cart/1"}},
		{"wildcard matches empty", "GET", "/static", "assets-get", map[string]string{"*": ""}},
		{"exact beats an empty wildcard", "POST", "/users", "users-list", map[string]string{}},
		{"param needs a segment", "GET", "/users/", "users-any", map[string]string{"*": ""}},
		{"method beats any", "GET", "/static/a.css", "assets-get", map[string]string{"*": "a.css"}},
		{"any method", "PUT", "/static/a/b.css", "assets", map[string]string{"*": "a/b.css"}},
		{"fixed beats a wildcard at the root", "GET", "/static/x", "assets-get", map[string]string{"*": "x"}},
		{"fallback", "GET", "/nope/deeper", "fallback", map[string]string{"*": "nope/deeper"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, params, ok := table.Match(tt.method, tt.path)
			if !ok || r.Service != tt.service || !maps.Equal(params, tt.params) {
				t.Errorf("Match(%s %s) = %q %v %v, want %q %v", tt.method, tt.path, r.Service, params, ok, tt.service, tt.params)
			}
		})
	}
}

func TestNoMatch(t *testing.T) {
	table, err := NewTable([]Route{
		{Method: "GET", Path: "/users/:id", Service: "users"},
		{Method: "GET", Path: "/static/*", Service: "assets"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, method, path string }{
		{"other method", "POST", "/users/7"},
		{"too long", "GET", "/users/7/x"},
		{"too short", "GET", "/users"},
		{"empty param", "GET", "/users/"},
		{"other prefix", "GET", "/stat/x"},
		{"not a path", "GET", "users/7"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if r, _, ok := table.Match(tt.method, tt.path); ok {
				t.Errorf("Match(%s %s) = %q, want no route", tt.method, tt.path, r.Service)
			}
		})
	}
}

func TestNewTableRefuses(t *testing.T) {
	for _, tt := range []struct {
		name  string
		route Route
	}{
		{"relative path", Route{Path: "users", Service: "s"}},
		{"no service", Route{Path: "/users"}},
		{"unnamed param", Route{Path: "/users/:", Service: "s"}},
		{"wildcard not last", Route{Path: "/a/*/b", Service: "s"}},
		{"same shape", Route{Method: "GET", Path: "/users/:name", Service: "s"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewTable([]Route{{Method: "GET", Path: "/users/:id", Service: "users"}, tt.route}); err == nil {
				t.Errorf("NewTable(%+v) = nil error, want one", tt.route)
			}
		})
	}
	if _, err := ParseTable([]byte(`{"not":"a list"}`)); err == nil {
		t.Error("ParseTable(an object) = nil error, want one")
	}
}
