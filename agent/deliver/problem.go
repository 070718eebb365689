package deliver

import "github.com/pwbi/edge-agent/agent/deliver/sink"

// maxProblem bounds the Problems the loop writes itself.
const maxProblem = 400

// The loop's own problems (message ids of internal/i18n's health
// catalogue; the English sentence opens with what failed, Error ends it).
const (
	// codeBufferRead: "cannot read the local buffer: …".
	codeBufferRead = "HealthBufferRead"
	// codeBufferDeadLetter: "cannot set a rejected record aside in the
	// local buffer: …".
	codeBufferDeadLetter = "HealthSinkBufferDeadLetter"
	// codeBufferAck: "cannot mark delivered records in the local buffer:
	// …".
	codeBufferAck = "HealthSinkBufferAck"
	// codeDeliveryFailed: "delivery failed: …", for a sink that gave no
	// Problem.
	codeDeliveryFailed = "HealthSinkDeliveryFailed"
	// codeRefusedAlike: "every record is refused alike: …", for a sink
	// that gave no UniformProblem.
	codeRefusedAlike = "HealthSinkRefusedAlike"
)

// loopProblem is one of the loop's own problems, saying err.
func loopProblem(code string, err error) sink.Message {
	return sink.Say(code, map[string]any{"Error": err.Error()}).Fit(maxProblem, "Error")
}
