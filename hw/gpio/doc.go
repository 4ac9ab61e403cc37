// Package gpio drives the front-panel hardware of the appliance through
// periph.io: a lock-status LED and the GNSS receiver's reset line. Both are
// optional; cmd/ opens the pins named in the configuration (ByName) and maps
// the timing state to an LEDState:
//
//	LOCKED                      -> LEDOn
//	ACQUIRING, HOLDOVER         -> LEDBlink
//	FREERUN, UNSYNCHRONIZED     -> LEDOff
//
// The package takes pins as periph interfaces, so tests drive it with
// periph's gpiotest fakes, and it keeps time with the time package's timers
// only, so tests run it inside a testing/synctest bubble instead of sleeping.
// It imports nothing else from this module and never logs.
package gpio
