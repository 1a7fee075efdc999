package erpapp

import (
	"fmt"

	"github.com/erpgate/erpgate/internal/cursor"
)

// CursorCodec signs and verifies the pagination cursors (`?cursor=`,
// `pagination.next_cursor`) under a key derived from the master key
// (authsvc `master_key`, ERP_MASTER_KEY), which every instance of a fleet
// shares, so any instance continues another's cursor. With no master key
// configured the key is the Lasting's ephemeral one: cursors survive a
// reload but not a restart, and one instance's are refused by another.
func (a *App) CursorCodec() (*cursor.Codec, error) {
	mk := a.authCfg.MasterKey
	if len(mk) == 0 {
		var err error
		if mk, err = a.lasting.ephemeralMasterKey(a.logger); err != nil {
			return nil, err
		}
	}
	c, err := cursor.New(cursor.DeriveKey(mk))
	if err != nil {
		return nil, fmt.Errorf("erp: cursors: %w", err)
	}
	return c, nil
}
