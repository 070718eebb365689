// Package checkout is the Mokka checkout gateway for the shop's tablets
// (SPEC §7): tablets call it on checkout.listen with a bearer token; it
// validates each request before anything leaves the shop, signs the exact
// bytes it sends with the store's secret key, forwards them to the Mokka
// Online API and relays Mokka's answer. It accepts what Mokka accepts (the
// value of an amount counts, not its spelling; see Validate) and forwards
// the tablet's bytes unchanged. It verifies Mokka's signed callbacks (each
// one recorded once: a repeat changes nothing) and takes unsigned ones,
// which Mokka may send, as hints to ask Status only; it tracks every order
// it relayed in the store (state machine, confirmed with Status calls that
// are rate limited per order) and buffers each state change as a
// mokka_order record for the upstream. Registration and Limit may go with
// a second credential pair (Config.Credentials).
//
// The gateway listens on the shop's LAN, so every request is treated as
// hostile: bodies are capped, the listener has read and write deadlines,
// tokens and signatures are compared in constant time, failed token
// attempts are limited per client address (authGuard), and nothing a
// customer typed (phone, e-mail, names, birth date) is stored or logged.
// TLS on the LAN, and the tablets' pairing code, are package pairing's;
// the agent wraps the listener it gives Serve.
//
// It imports the store and nothing else of the agent; agent/ wires it.
// All exported methods of Gateway are safe for concurrent use.
package checkout
