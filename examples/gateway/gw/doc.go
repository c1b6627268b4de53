// Package gw is the API gateway of the gateway example, importable so that
// cmd/coordbench can measure it: a net/http reverse proxy that routes a
// request by method and path ([Table], published as a config value and
// reloaded live) to a service, and forwards it round-robin to one of the
// service's serving instances found in the registry.
package gw
