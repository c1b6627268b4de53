package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// healthCheck is register's --health-cmd or --health-url: one check,
// bounded by timeout.
type healthCheck struct {
	cmd     string   // run by /bin/sh -c; healthy when it exits 0
	url     string   // fetched with GET; healthy on a 2xx answer
	env     []string // the command's environment (no credentials)
	timeout time.Duration
}

// check runs the check once and returns nil when it passed, or why not.
func (h *healthCheck) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	if h.url != "" {
		return h.get(ctx)
	}
	var out bytes.Buffer
	c := exec.CommandContext(ctx, "/bin/sh", "-c", h.cmd)
	c.Env = h.env
	c.Stdout, c.Stderr = &out, &out
	// A group of its own, killed whole on timeout: a check that started
	// children must not leave them behind.
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = time.Second
	err := c.Run()
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("--health-cmd did not finish within --health-timeout %v", h.timeout)
	}
	msg := strings.TrimSpace(out.String())
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	if msg != "" {
		return fmt.Errorf("--health-cmd: %w: %s", err, msg)
	}
	return fmt.Errorf("--health-cmd: %w", err)
}

func (h *healthCheck) get(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("--health-url: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("--health-url %s answered %s", h.url, resp.Status)
	}
	return nil
}

// loop checks every interval until ctx ends, and sends each result
// on results (nil: healthy). It returns when ctx ends; the caller owns it
// and waits for it.
func (h *healthCheck) loop(ctx context.Context, interval time.Duration, results chan<- error) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := h.check(ctx)
		if ctx.Err() != nil {
			return
		}
		select {
		case results <- err:
		case <-ctx.Done():
			return
		}
		t.Reset(interval)
	}
}
