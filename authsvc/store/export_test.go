package store

import "io/fs"

// MigrationCount is the number of embedded migrations.
func MigrationCount() int {
	files, _ := fs.Glob(migrations, "migrations/*.sql")
	return len(files)
}

// TamperAudit lets the contract suite edit (edit != nil) or delete the
// memory store's record seq the way an attacker with write access to the
// database would, to show that VerifyAudit notices.
func (m *Memory) TamperAudit(seq int64, edit func(*Event)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.audit {
		if m.audit[i].Seq != seq {
			continue
		}
		if edit == nil {
			m.audit = append(m.audit[:i], m.audit[i+1:]...)
			return
		}
		edit(&m.audit[i])
		return
	}
}
