//go:build !race

package router_test

// raceEnabled is set when the race detector is on.
const raceEnabled = false
