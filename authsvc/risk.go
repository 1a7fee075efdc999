package authsvc

// Risk-based step-up. Owned by the devices and risk work (issue #17).

// assessRisk scores a login whose first factor was proved.
func (s *Service) assessRisk(c *call, a loginAttempt) (riskAssessment, error) {
	return riskAssessment{}, nil
}
