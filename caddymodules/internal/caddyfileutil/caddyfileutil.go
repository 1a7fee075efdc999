// Package caddyfileutil holds the Caddyfile parsing rules every erpgate
// directive shares: no stray arguments, and each subdirective at most once
// unless it is meant to repeat. It is Caddy glue for the modules under
// caddymodules/, owns no state and imports nothing of ours.
package caddyfileutil

import "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

// NoArgs consumes the directive's name and refuses arguments after it.
func NoArgs(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// EachSubdirective calls fn with the name of every subdirective of the block
// at nesting (fn reads its arguments from d), refusing a repeated one unless
// repeatable names it.
func EachSubdirective(d *caddyfile.Dispenser, nesting int, repeatable map[string]bool, fn func(name string) error) error {
	seen := map[string]bool{}
	for d.NextBlock(nesting) {
		name := d.Val()
		if seen[name] && !repeatable[name] {
			return d.Errf("duplicate subdirective %q", name)
		}
		seen[name] = true
		if err := fn(name); err != nil {
			return err
		}
	}
	return nil
}

// Settings parses a directive with no arguments and an optional block of
// `name value` settings, each at most once: fn gets each setting's name
// and its one value (and answers an unknown name with an error).
func Settings(d *caddyfile.Dispenser, fn func(name, value string) error) error {
	if err := NoArgs(d); err != nil {
		return err
	}
	return EachSubdirective(d, 0, nil, func(name string) error {
		args := d.RemainingArgs()
		if len(args) != 1 {
			return d.ArgErr()
		}
		return fn(name, args[0])
	})
}
