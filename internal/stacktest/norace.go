//go:build !race

package stacktest

const raceEnabled = false
