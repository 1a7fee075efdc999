//go:build race

package logins

// raceBuilt: the tests run with -race, and so does the gateway (make test
// builds both so; stacktest builds the binary to match).
const raceBuilt = true
