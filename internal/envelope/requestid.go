package envelope

import "github.com/google/uuid"

// RequestID returns the client's id when it is a valid UUID in the standard
// 36-character form (kept as sent), else a new UUIDv7.
func RequestID(client string) string {
	if len(client) == 36 {
		if u, err := uuid.Parse(client); err == nil && u != uuid.Nil {
			return client
		}
	}
	u, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return u.String()
}
