package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"strings"
)

// State tells clients whether to send an instance new work.
type State int

const (
	// Serving is an instance that takes new work: the default.
	Serving State = iota
	// Draining is an instance that finishes the work it has but should be
	// sent no more, for example because it is about to exit.
	Draining
)

// String returns "serving" or "draining".
func (s State) String() string {
	if s == Draining {
		return "draining"
	}
	return "serving"
}

// Instance is one registered instance of a service. It is stored under the
// key Service + "/" + ID, as etcd's naming/endpoints stores an endpoint
// under its target.
type Instance struct {
	// Service is the common prefix of the service's instances, without a
	// trailing "/", for example "/services/hello". Required.
	Service string
	// ID tells the instance apart from the others of its service; two
	// processes must not register the same one. The default is Addr.
	ID string
	// Addr is where clients reach the instance, for example "10.0.0.7:8080".
	// Required.
	Addr string
	// Metadata is free-form information for clients (zone, version). It is
	// etcd's Endpoint.Metadata: an instance registered by etcd's
	// endpoints.Manager with metadata that is not a JSON object of strings
	// reads as nil Metadata.
	Metadata map[string]string
	// Weight is a relative share of the work for clients that balance by
	// weight; 0 means unset, which clients treat as 1. It must not be
	// negative.
	Weight int
	// State is Serving or Draining.
	State State
}

// Key returns the instance's key in etcd: Service + "/" + ID.
func (in Instance) Key() string { return in.Service + "/" + in.ID }

// normalize fills the defaults and panics on bad input, as [Register]
// documents.
func (in Instance) normalize() Instance {
	in.Service = strings.TrimSuffix(in.Service, "/")
	switch {
	case in.Service == "":
		panic("registry: empty Service")
	case in.Addr == "":
		panic("registry: empty Addr")
	case in.Weight < 0:
		panic("registry: negative Weight")
	}
	if in.ID == "" {
		in.ID = in.Addr
	}
	in.Metadata = maps.Clone(in.Metadata)
	return in
}

// equal reports whether a and b would look the same to a client.
func (in Instance) equal(o Instance) bool {
	return in.Service == o.Service && in.ID == o.ID && in.Addr == o.Addr &&
		in.Weight == o.Weight && in.State == o.State && maps.Equal(in.Metadata, o.Metadata)
}

// value is what is stored under an instance's key: a superset of etcd's
// naming/endpoints/internal.Update, whose Op 0 is Add, so that etcd's
// endpoints.Manager and resolver read it as theirs.
type value struct {
	Op       uint8             `json:"Op"`
	Addr     string            `json:"Addr"`
	Metadata map[string]string `json:"Metadata"`
	Weight   int               `json:"Weight,omitempty"`
	State    string            `json:"State,omitempty"`
}

// encode returns the value stored for in.
func (in Instance) encode() string {
	v := value{Addr: in.Addr, Metadata: in.Metadata, Weight: in.Weight}
	if in.State == Draining {
		v.State = Draining.String()
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic("registry: " + err.Error()) // strings and ints always marshal
	}
	return string(b)
}

// errBadValue is why a value under a service's prefix is not an instance.
var errBadValue = errors.New("registry: not an instance")

// decode reads the value stored under service + "/" + id: coordkit's or
// etcd's endpoints.Manager's.
func decode(service, id string, b []byte) (Instance, error) {
	var v struct {
		Op       uint8
		Addr     string
		Metadata json.RawMessage
		Weight   int
		State    string
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return Instance{}, err
	}
	if v.Op != 0 || v.Addr == "" || v.Weight < 0 {
		return Instance{}, errBadValue
	}
	in := Instance{Service: service, ID: id, Addr: v.Addr, Weight: v.Weight}
	switch v.State {
	case "", "serving":
	case "draining":
		in.State = Draining
	default:
		return Instance{}, errBadValue
	}
	if len(v.Metadata) > 0 && !bytes.Equal(v.Metadata, []byte("null")) {
		var md map[string]string
		if json.Unmarshal(v.Metadata, &md) == nil && len(md) > 0 {
			in.Metadata = md
		}
	}
	return in, nil
}
