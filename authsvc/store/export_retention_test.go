package store

// TamperCheckpoint lets the retention contract edit the memory store's
// checkpoint as an attacker with write access to the database would.
func (m *Memory) TamperCheckpoint(edit func(*AuditCheckpoint)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.auditCut != nil {
		edit(m.auditCut)
	}
}

// TamperErased edits the first pseudonymised record of the memory trail.
func (m *Memory) TamperErased(edit func(*Event)) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.audit {
		if m.audit[i].Erasure != nil {
			edit(&m.audit[i])
			return true
		}
	}
	return false
}
