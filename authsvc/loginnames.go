package authsvc

import (
	"errors"

	"github.com/erpgate/erpgate/authsvc/loginname"
)

// loginName normalises the email a caller gave in field (package
// loginname); a refusal is a validation error that says what is wrong with
// the name, never whether an account has it.
func loginName(field, raw string) (loginname.Name, error) {
	n, err := loginname.Normalize(raw)
	var le *loginname.Error
	if errors.As(err, &le) {
		return loginname.Name{}, invalid(field, le.Reason)
	}
	return n, err
}
