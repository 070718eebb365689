package httpsink

import "time"

// t0 is the fake clock's start: whole seconds, so HTTP-dates are exact.
var t0 = time.Date(2025, 12, 26, 3, 0, 0, 0, time.UTC)

const (
	testToken = "tok-SECRET-5f3a9c71"
	testAgent = "outlet-pc-01"
)
