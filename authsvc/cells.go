package authsvc

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"

	"go.uber.org/zap"

	"github.com/erpgate/erpgate/authsvc/store"
)

// Company cells: a platform admin assigns each company the cell (a named
// group of upstreams of the backends' versions, `cell NAME URL…` in the
// erp block) that serves its requests. The edge sends the company's new
// requests to the new cell as soon as it hears of the change (at once in
// this process, within seconds at every other instance); requests in
// flight finish where they are.
var cellRoutes = map[string]handlerFunc{
	"GET /api/v1/admin/companies/{id}/cell":    (*Service).handleAdminGetCell,
	"PUT /api/v1/admin/companies/{id}/cell":    (*Service).handleAdminPutCell,
	"DELETE /api/v1/admin/companies/{id}/cell": (*Service).handleAdminDeleteCell,
}

// CellHooks is what the service asks and tells the edge about cells.
type CellHooks interface {
	// KnownCells lists the cell names the edge's backend versions define
	// (sorted); an assignment to another name is refused.
	KnownCells() []string
	// CellChanged is called after a company's cell was stored ('' when it
	// was cleared), so the edge applies and announces it.
	CellChanged(ctx context.Context, companyID, cell string)
}

// cellNameRe is a cell name: what `cell NAME` accepts in the erp block.
var cellNameRe = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

type cellView struct {
	CompanyID string `json:"company_id"`
	// Cell is '' when the company has none: the versions' default upstreams serve it.
	Cell string `json:"cell"`
	// Previous is the cell the change replaced (PUT and DELETE only).
	Previous *string `json:"previous,omitempty"`
}

func (s *Service) handleAdminGetCell(c *call) (int, any, error) {
	if _, err := s.platformAdmin(c); err != nil {
		return 0, nil, err
	}
	cell, err := s.store.CompanyCell(c.ctx, c.param)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil, errNotFound("no such company")
	}
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, cellView{CompanyID: c.param, Cell: cell}, nil
}

func (s *Service) handleAdminPutCell(c *call) (int, any, error) {
	if _, err := s.platformAdmin(c); err != nil {
		return 0, nil, err
	}
	var in struct {
		Cell string `json:"cell"`
	}
	if err := decode(c, &in, false); err != nil {
		return 0, nil, err
	}
	if in.Cell == "" {
		return 0, nil, invalid("cell", "cell is required (DELETE the cell to send the company to the default upstreams)")
	}
	if !cellNameRe.MatchString(in.Cell) {
		return 0, nil, invalid("cell", "cell is a name: a lower-case letter, then letters, digits, - and _, at most 63")
	}
	if s.cells != nil {
		known := s.cells.KnownCells()
		found := false
		for _, k := range known {
			if k == in.Cell {
				found = true
				break
			}
		}
		if !found {
			msg := "no backend version has a cell of this name"
			if len(known) > 0 {
				msg += "; known cells: " + strings.Join(known, ", ")
			}
			return 0, nil, invalid("cell", msg)
		}
	}
	return s.setCell(c, in.Cell)
}

func (s *Service) handleAdminDeleteCell(c *call) (int, any, error) {
	if _, err := s.platformAdmin(c); err != nil {
		return 0, nil, err
	}
	return s.setCell(c, "")
}

func (s *Service) setCell(c *call, cell string) (int, any, error) {
	ev := s.adminEvent(c, store.EventCompanyCellChanged, c.param, c.param, map[string]string{"cell": cell})
	prev, err := s.store.SetCompanyCell(c.ctx, c.param, cell, ev)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil, errNotFound("no such company")
	}
	if err != nil {
		return 0, nil, err
	}
	if s.cells != nil {
		s.cells.CellChanged(c.ctx, c.param, cell)
	}
	s.logger.Info("company cell changed", zap.String("company_id", c.param), zap.String("cell", cell), zap.String("previous", prev))
	return http.StatusOK, cellView{CompanyID: c.param, Cell: cell, Previous: &prev}, nil
}
