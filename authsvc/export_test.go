package authsvc

// TOTPMatch exposes totpMatch to the black-box tests, which check it
// against the RFC 6238 vectors and their own HOTP.
var TOTPMatch = totpMatch
