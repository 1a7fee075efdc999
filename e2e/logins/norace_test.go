//go:build !race

package logins

const raceBuilt = false
