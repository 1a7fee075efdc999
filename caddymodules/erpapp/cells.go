package erpapp

import (
	"context"
	"fmt"
	"regexp"
	"slices"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	core "github.com/erpgate/erpgate/authsvc"
	"github.com/erpgate/erpgate/internal/celltable"
)

// Cells: a backend version may be served by several groups of upstreams,
// its cells (`cell eu http://…` in the version's block; JSON: the
// version's `cells`). Each company is assigned at most one cell (in the
// auth service's store, changed with PUT /api/v1/admin/companies/{id}/cell);
// `reverse_proxy { dynamic erp }` sends the company's requests to the
// upstreams of its cell, or to the version's default upstreams (its plain
// URLs) when it has none or the version does not have that cell. The
// assignments live in the Lasting's table (internal/celltable): a move
// applies to the next request, while requests in flight finish on the
// cell they were sent to.

// cellNameRe is a cell name; the auth service accepts the same.
var cellNameRe = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// provisionCells checks the version's cells and resolves their dial
// addresses (after the default upstreams: all share scheme and path).
func (v *Version) provisionCells(repl *caddy.Replacer) error {
	v.cellDials = nil
	if len(v.Cells) == 0 {
		return nil
	}
	v.cellDials = make(map[string][]string, len(v.Cells))
	for _, name := range sortedNames(v.Cells) {
		urls := v.Cells[name]
		if !cellNameRe.MatchString(name) {
			return fmt.Errorf("cell %q: a cell name is a lower-case letter, then letters, digits, - and _ (at most 63)", name)
		}
		if len(urls) == 0 {
			return fmt.Errorf("cell %q: at least one upstream URL is required", name)
		}
		dials := make([]string, 0, len(urls))
		for _, raw := range urls {
			d, err := v.dialOf(repl, raw)
			if err != nil {
				return fmt.Errorf("cell %q: %w", name, err)
			}
			dials = append(dials, d)
		}
		v.cellDials[name] = dials
	}
	return nil
}

// HasCells reports whether the version has cells (only then does the
// company matter for its upstreams).
func (v *Version) HasCells() bool { return len(v.cellDials) > 0 }

// DialsFor are the dial addresses serving a company of cell: the cell's
// when the version has it, else the default upstreams (empty when the
// version has none).
func (v *Version) DialsFor(cell string) []string {
	if cell != "" {
		if d, ok := v.cellDials[cell]; ok {
			return d
		}
	}
	return v.dials
}

// CellNames lists the cells the config's backend versions define, sorted.
func (a *App) CellNames() []string {
	var out []string
	for _, b := range a.Backends {
		if b == nil {
			continue
		}
		for _, v := range b.Versions {
			if v == nil {
				continue
			}
			for name := range v.Cells {
				if !slices.Contains(out, name) {
					out = append(out, name)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// Cells is the table of company cells shared by every config of this
// Lasting: `dynamic erp` reads it per request.
func (l *Lasting) Cells() *celltable.Table { return &l.cells }

// CompanyCell is company's cell at this instance ("" for none).
func (a *App) CompanyCell(company string) string { return a.lasting.cells.Of(company) }

// appCells are the auth service's CellHooks of a config: the cell names
// its backends define, and a change applied to this instance's table at
// once and announced to the others.
type appCells struct{ a *App }

func (c appCells) KnownCells() []string { return c.a.CellNames() }

func (c appCells) CellChanged(ctx context.Context, company, cell string) {
	l := c.a.lasting
	l.cells.Set(company, cell)
	if err := l.announce(ctx, fleetMessage{Kind: msgCell, Company: company, Cell: cell}); err != nil {
		c.a.logger.Warn("announcing a cell change failed; other instances apply it at their next poll", zap.Error(err))
	}
}

var _ core.CellHooks = appCells{}

// parseCell parses `cell <name> <url> [<url>…]` inside a version's block.
func parseCell(d *caddyfile.Dispenser, v *Version, backend, version string) error {
	args := d.RemainingArgs()
	if len(args) < 2 {
		return d.Errf("backend %s: version %s: cell needs a name and at least one upstream URL", backend, version)
	}
	if _, dup := v.Cells[args[0]]; dup {
		return d.Errf("backend %s: version %s: duplicate cell %q", backend, version, args[0])
	}
	if d.NextBlock(d.Nesting()) {
		return d.Errf("backend %s: version %s: cell takes no block", backend, version)
	}
	if v.Cells == nil {
		v.Cells = map[string][]string{}
	}
	v.Cells[args[0]] = args[1:]
	return nil
}
