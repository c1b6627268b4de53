package grpcresolver

import (
	"encoding/json"
	"fmt"

	"github.com/coordkit/coordkit/registry"
	"google.golang.org/grpc/resolver"
)

// Info is what the resolver attaches to each address: an instance's ID,
// weight and metadata. It is comparable, as gRPC's attributes require:
// the metadata is held in a canonical encoding (sorted keys), so two Infos
// of the same instance are == exactly when nothing a client sees changed.
type Info struct {
	// ID is the instance's ID within its service.
	ID string
	// Weight is the instance's weight; 0 means unset.
	Weight int
	// metadata is the canonical JSON encoding of the metadata, "" for none.
	metadata string
}

// infoKey is the attribute key of an [Info].
type infoKey struct{}

// newInfo returns in's Info.
func newInfo(in registry.Instance) Info {
	i := Info{ID: in.ID, Weight: in.Weight}
	if len(in.Metadata) > 0 {
		b, err := json.Marshal(in.Metadata) // map keys are marshalled sorted
		if err != nil {
			panic("grpcresolver: " + err.Error()) // strings always marshal
		}
		i.metadata = string(b)
	}
	return i
}

// Metadata returns a new copy of the instance's metadata, nil if it has
// none.
func (i Info) Metadata() map[string]string {
	if i.metadata == "" {
		return nil
	}
	var md map[string]string
	if err := json.Unmarshal([]byte(i.metadata), &md); err != nil {
		panic("grpcresolver: " + err.Error()) // newInfo wrote it
	}
	return md
}

// InfoOf returns the Info the resolver attached to addr, and false if addr
// did not come from this package's resolver.
func InfoOf(addr resolver.Address) (Info, bool) {
	i, ok := addr.BalancerAttributes.Value(infoKey{}).(Info)
	return i, ok
}

// String returns the Info as gRPC prints attributes: ID, weight and
// metadata.
func (i Info) String() string {
	return fmt.Sprintf("{ID:%s Weight:%d Metadata:%s}", i.ID, i.Weight, i.metadata)
}
