package console

import (
	"net"
	"net/http"
	"strings"
)

// hostAllowed reports whether a request's Host names the console: a
// loopback name, an address the connection was accepted on, or a host
// given with [WithAllowedHosts]. A page served under any other name may
// be an attacker's domain rebound to this address, where the browser's
// same-origin checks (and CrossOriginProtection's) pass.
func (o *options) hostAllowed(r *http.Request) bool {
	name, port := splitHost(r.Host)
	if name == "" {
		return false
	}
	switch name {
	case "localhost", "127.0.0.1", "::1":
		// The names a browser on the console's own machine uses, any port.
		return true
	}
	if ip := net.ParseIP(name); ip != nil {
		if a, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok && a.IP.Equal(ip) {
			return true
		}
	}
	for _, h := range o.hosts {
		hn, hp := splitHost(h)
		if hn == name && (hp == "" || hp == port) {
			return true
		}
	}
	return false
}

// splitHost splits "host[:port]" ("[v6][:port]" too) into a lower-case
// host name and a port, "" when there is none.
func splitHost(hostport string) (host, port string) {
	hostport = strings.ToLower(hostport)
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		return h, p
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]"), ""
}

// checkHost refuses requests whose Host is not the console's.
func (s *server) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.opts.hostAllowed(r) {
			http.Error(w, "console: host "+r.Host+" is not this console's: start it with --allow-host "+r.Host+" to serve it under that name", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}
