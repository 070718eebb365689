package checkout

import "slices"

// The Mokka Online API methods the gateway relays (SPEC §7.1), as the path
// below the base URL. Tablets call POST /mokka/{method}.
const (
	MethodRegistration = "factoring/v1/limit/auth"
	MethodCheckout     = "factoring/v1/precheck/auth"
	MethodFinish       = "factoring/v1/precheck/finish"
	MethodLimit        = "api/external/v1/client/limit"
	MethodStatus       = "factoring/v1/status"
	MethodSchedule     = "factoring/v1/schedule"
	MethodChange       = "factoring/v1/precheck/change"
	MethodCancel       = "factoring/v1/precheck/cancel"
	MethodReturn       = "factoring/v1/return"
)

// Methods lists every relayed method.
var Methods = []string{
	MethodRegistration, MethodCheckout, MethodFinish, MethodLimit, MethodStatus,
	MethodSchedule, MethodChange, MethodCancel, MethodReturn,
}

// IsMethod reports whether m is one of Methods.
func IsMethod(m string) bool { return slices.Contains(Methods, m) }

// Mokka response codes (the seed's "Possible error codes" table). The
// gateway answers with the same codes when it refuses a request itself, so
// a tablet handles one set of codes whoever refused.
const (
	CodeOK                  = 0
	CodeJSON                = 10
	CodeOrderIDMissing      = 20
	CodeOrderIDFormat       = 21
	CodeOrderExists         = 22
	CodeOrderExpired        = 23
	CodeOrderNotFound       = 24
	CodeAmountFormat        = 30
	CodePrepaymentFormat    = 31
	CodeAmountDiffers       = 32
	CodeAmountOutsideLimits = 33
	CodeTermWrong           = 34
	CodePrepaymentWrong     = 35
	CodeCallbackURLMissing  = 40
	CodeRedirectURLMissing  = 41
	CodeStoreIDMissing      = 50
	CodeStoreNotFound       = 51
	CodeSignatureMissing    = 60
	CodeSignatureWrong      = 61
	CodeFileError           = 62
	CodePhoneDifferent      = 70
	CodeNotEnoughLimit      = 71
	CodeCannotFinish        = 80
	CodeCannotCancel        = 81
	CodeCannotChange        = 82
	CodeCartMissing         = 90
	CodeServer              = 100
	CodeTimeFormat          = 110
	CodeNotFound            = 404
	// CodeUnauthorized is the gateway's own: no or a wrong tablet token.
	CodeUnauthorized = 401
	// CodeTooManyAttempts is the gateway's own: too many failed token
	// attempts from the client's address; wait Retry-After seconds.
	CodeTooManyAttempts = 429
)

var messages = map[int]string{
	CodeOK:                  "Payload valid",
	CodeJSON:                "JSON decode error",
	CodeOrderIDMissing:      "order_id missing",
	CodeOrderIDFormat:       "Wrong order_id format",
	CodeOrderExists:         "Order exists",
	CodeOrderExpired:        "Order expired",
	CodeOrderNotFound:       "Order with specified ID not found",
	CodeAmountFormat:        "Wrong order amount format",
	CodePrepaymentFormat:    "Wrong order prepayment amount format",
	CodeAmountDiffers:       "Order amount is different from the amount specified before",
	CodeAmountOutsideLimits: "Order amount is outside of tariff limits",
	CodeTermWrong:           "Order term value is wrong",
	CodePrepaymentWrong:     "Order prepayment amount is wrong",
	CodeCallbackURLMissing:  "Order callback_url missing",
	CodeRedirectURLMissing:  "Order redirect_url missing",
	CodeStoreIDMissing:      "Store ID is missing",
	CodeStoreNotFound:       "Store not found",
	CodeSignatureMissing:    "Signature missing",
	CodeSignatureWrong:      "Signature wrong",
	CodeFileError:           "Error saving file",
	CodePhoneDifferent:      "Phone number is different",
	CodeNotEnoughLimit:      "Client has not enough limit",
	CodeCannotFinish:        "Unable to finish – order is already finished / canceled",
	CodeCannotCancel:        "Unable to cancel – order is already finished / canceled",
	CodeCannotChange:        "Unable to change – order is already finished / canceled",
	CodeCartMissing:         "Cart items are missing",
	CodeServer:              "At the moment, the server cannot process your request",
	CodeTimeFormat:          "Invalid time format value",
	CodeNotFound:            "Not found",
	CodeUnauthorized:        "Unauthorized",
	CodeTooManyAttempts:     "Too many failed attempts",
}

// Message is the seed's message for a Mokka code ("" if unknown).
func Message(code int) string { return messages[code] }
