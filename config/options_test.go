package config_test

import (
	"testing"
	"time"

	"github.com/coordkit/coordkit/config"
	"github.com/stretchr/testify/require"
)

// Options panic on bad input, as constructors do.
func TestOptionsPanicOnBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opt  func()
	}{
		{"retention 0", func() { config.WithRetention(0) }},
		{"check interval 0", func() { config.WithCheckInterval(0) }},
		{"start timeout 0", func() { config.WithStartTimeout(0) }},
		{"start timeout negative", func() { config.WithStartTimeout(-time.Second) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Panics(t, tt.opt)
		})
	}
}
