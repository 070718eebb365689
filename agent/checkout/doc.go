// Package checkout is the Mokka checkout gateway for the shop's tablets
// (SPEC §7): tablets call it on checkout.listen with a bearer token; it
// validates each request before anything leaves the shop, signs the exact
// bytes it sends with the store's secret key, forwards them to the Mokka
// Online API and relays Mokka's answer. It verifies Mokka's callbacks
// (each one recorded once: a repeat changes nothing), tracks every order it
// relayed in the store (state machine, confirmed with Status calls that are
// rate limited per order) and buffers each state change as a mokka_order
// record for the upstream.
//
// The gateway listens on the shop's LAN, so every request is treated as
// hostile: bodies are capped, the listener has read and write deadlines,
// tokens and signatures are compared in constant time, and nothing a
// customer typed (phone, e-mail, names, birth date) is stored or logged.
//
// It imports the store and nothing else of the agent; agent/ wires it.
// All exported methods of Gateway are safe for concurrent use.
package checkout
