package console

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/coordkit/coordkit/config"
	"github.com/coordkit/coordkit/internal/holds"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// historyLength is how many versions the config page lists.
const historyLength = 50

// result is the page an action ends on.
type result struct {
	Title, Message string
	Failed         bool
	Back           string
}

// confirm is the page that asks before an action.
type confirm struct {
	Question string
	Action   string
	Fields   map[string]string
	CSRF     string
	Back     string
	Data     string // a value to publish, shown in full
}

// allowed checks a POST before it does anything: writes allowed, the
// handler's token, and a name under the prefixes shown (a configuration's
// name, if config).
func (s *server) allowed(w http.ResponseWriter, r *http.Request, name, back string, isConfig bool) bool {
	switch {
	case !s.opts.write:
		s.render(w, r, http.StatusForbidden, "result", result{Title: "Read-only", Failed: true, Back: back,
			Message: "this console is read-only: start it with --allow-write to act"})
	case subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(s.csrf)) != 1:
		s.render(w, r, http.StatusForbidden, "result", result{Title: "Refused", Failed: true, Back: back,
			Message: "the form does not carry this console's token: reload the page and try again"})
	case name == "" || !s.under(name):
		s.render(w, r, http.StatusNotFound, "result", result{Title: "Refused", Failed: true, Back: back,
			Message: fmt.Sprintf("%q is not under a prefix this console shows", name)})
	case isConfig && !configName(name):
		s.render(w, r, http.StatusNotFound, "result", result{Title: "Refused", Failed: true, Back: back,
			Message: fmt.Sprintf("%q cannot name a configuration: it ends in /", name)})
	default:
		return true
	}
	return false
}

func (s *server) failed(w http.ResponseWriter, r *http.Request, what, back string, err error) {
	code, msg := http.StatusBadGateway, fmt.Sprintf("%s: %v", what, err)
	switch {
	case isRefused(err):
		code, msg = http.StatusForbidden, fmt.Sprintf("%s: refused by etcd RBAC (permission denied for this user): %v", what, err)
	case errors.Is(err, holds.ErrNotHold), errors.Is(err, config.ErrInvalid), errors.Is(err, config.ErrNotFound), errors.Is(err, config.ErrConflict):
		code = http.StatusConflict
	}
	s.render(w, r, code, "result", result{Title: "Not done", Message: msg, Failed: true, Back: back})
}

// release breaks NAME's first hold by revoking its lease, by the rules of
// "lockctl release": only holds, and only a lease carrying holds only.
// The confirmation names the hold's token; the release is refused if
// another hold took its place meanwhile.
func (s *server) release(w http.ResponseWriter, r *http.Request) {
	name := r.PostFormValue("name")
	if !s.allowed(w, r, name, "./", false) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	es, err := holds.Entries(ctx, s.cli, name+"/")
	if err != nil {
		s.failed(w, r, "read "+name, "./", err)
		return
	}
	h, others := holds.First(es)
	switch {
	case h == nil && others > 0:
		s.failed(w, r, "release "+name, "./", fmt.Errorf("%w: %s is not a lock, semaphore, rwlock or election: its %d key(s) are not holds; nothing deleted", holds.ErrNotHold, name, others))
		return
	case h == nil:
		s.render(w, r, http.StatusOK, "result", result{Title: "Free", Message: name + " is free: nothing to release", Back: "./"})
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		s.render(w, r, http.StatusOK, "confirm", confirm{
			Question: fmt.Sprintf("Revoke lease %s of %s (token %d)? Its holder loses %s and everything else it holds on that lease.", h.Lease, h.Key, h.Token, name),
			Action:   "release", CSRF: s.csrf, Back: "./",
			Fields: map[string]string{"name": name, "token": strconv.FormatInt(h.Token, 10)},
		})
		return
	}
	if r.PostFormValue("token") != strconv.FormatInt(h.Token, 10) {
		s.failed(w, r, "release "+name, "./", fmt.Errorf("%w: the hold confirmed (token %s) is no longer the first: %s (token %d) is; nothing deleted", holds.ErrNotHold, r.PostFormValue("token"), h.Key, h.Token))
		return
	}
	var id int64
	fmt.Sscanf(h.Lease, "%x", &id)
	if err := holds.Revoke(ctx, s.cli, clientv3.LeaseID(id), h.Key); err != nil {
		s.failed(w, r, "release "+name, "./", err)
		return
	}
	s.render(w, r, http.StatusOK, "result", result{Title: "Released", Message: fmt.Sprintf("released %s (token %d)", h.Key, h.Token), Back: "./"})
}

func (s *server) configOpts(r *http.Request) []config.Option {
	opts := []config.Option{config.WithAuthor("lockctl console"), config.WithComment(r.PostFormValue("comment"))}
	if s.opts.validate != nil {
		name := r.PostFormValue("name")
		opts = append(opts, config.WithValidator(func(data []byte) error { return s.opts.validate(name, data) }))
	}
	if v, err := strconv.ParseInt(r.PostFormValue("expect"), 10, 64); err == nil && v > 0 {
		opts = append(opts, config.WithExpectedVersion(v))
	}
	return opts
}

// rollback publishes an old version's data again as a new version, if the
// current version is still the one the page showed.
func (s *server) rollback(w http.ResponseWriter, r *http.Request) {
	name := r.PostFormValue("name")
	back := "config?name=" + url.QueryEscape(name)
	if !s.allowed(w, r, name, back, true) {
		return
	}
	version, err := strconv.ParseInt(r.PostFormValue("version"), 10, 64)
	if err != nil || version <= 0 {
		s.render(w, r, http.StatusBadRequest, "result", result{Title: "Not done", Failed: true, Back: back, Message: "no version to roll back to"})
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		s.render(w, r, http.StatusOK, "confirm", confirm{
			Question: fmt.Sprintf("Publish version %d of %s again as a new version (the current one is %s)?", version, name, r.PostFormValue("expect")),
			Action:   "config/rollback", CSRF: s.csrf, Back: back,
			Fields: map[string]string{"name": name, "version": strconv.FormatInt(version, 10), "expect": r.PostFormValue("expect")},
		})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	v, err := config.Rollback(ctx, s.cli, name, version, s.configOpts(r)...)
	if err != nil {
		s.failed(w, r, fmt.Sprintf("roll %s back to version %d", name, version), back, err)
		return
	}
	s.render(w, r, http.StatusOK, "result", result{Title: "Rolled back", Back: back,
		Message: fmt.Sprintf("published version %d of %s with the data of version %d", v, name, version)})
}

// publish publishes a new value, through the validator if one is set.
func (s *server) publish(w http.ResponseWriter, r *http.Request) {
	name := r.PostFormValue("name")
	back := "config?name=" + url.QueryEscape(name)
	if !s.allowed(w, r, name, back, true) {
		return
	}
	data := r.PostFormValue("data")
	if r.PostFormValue("confirm") != "yes" {
		s.render(w, r, http.StatusOK, "confirm", confirm{
			Question: fmt.Sprintf("Publish this value as the next version of %s (the current one is %s)?", name, r.PostFormValue("expect")),
			Action:   "config/publish", CSRF: s.csrf, Back: back, Data: data,
			Fields: map[string]string{"name": name, "data": data, "expect": r.PostFormValue("expect"), "comment": r.PostFormValue("comment")},
		})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	v, err := config.Publish(ctx, s.cli, name, []byte(data), s.configOpts(r)...)
	if err != nil {
		s.failed(w, r, "publish "+name, back, err)
		return
	}
	s.render(w, r, http.StatusOK, "result", result{Title: "Published", Back: back, Message: fmt.Sprintf("published version %d of %s", v, name)})
}

// configView is the config page: history, and a diff when asked.
type configView struct {
	Name     string
	Current  config.Value
	History  []config.Value
	From, To int64
	Diff     string
	Refused  string
	Err      string
	Write    bool
	CSRF     string
}

func (s *server) configPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name := q.Get("name")
	if !configName(name) || !s.under(name) {
		http.Error(w, "console: not a configuration under a prefix this console shows", http.StatusNotFound)
		return
	}
	v := configView{Name: name, Write: s.opts.write, CSRF: s.csrf}
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	hist, err := config.History(ctx, s.cli, name, historyLength)
	if err != nil {
		if isRefused(err) {
			v.Refused = fmt.Sprintf("etcd refused to read %q for this user (permission denied by etcd RBAC)", name+"/")
		} else {
			v.Err = err.Error()
		}
		s.render(w, r, http.StatusOK, "config", v)
		return
	}
	v.History = hist
	byVersion := map[int64]config.Value{}
	for _, h := range hist {
		byVersion[h.Version] = h
		if h.Version > v.Current.Version {
			v.Current = h
		}
	}
	v.From, _ = strconv.ParseInt(q.Get("from"), 10, 64)
	v.To, _ = strconv.ParseInt(q.Get("to"), 10, 64)
	if a, ok := byVersion[v.From]; ok {
		if b, ok := byVersion[v.To]; ok {
			v.Diff = config.Diff(a, b)
			if v.Diff == "" {
				v.Diff = "(no difference)"
			}
		}
	}
	s.render(w, r, http.StatusOK, "config", v)
}
