package natssink

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/pwbi/edge-agent/internal/jsonstr"
	"github.com/pwbi/edge-agent/store"
)

// Headers of every message besides Nats-Msg-Id.
const (
	HeaderKey     = "Pwbi-Key"
	HeaderSeq     = "Pwbi-Seq"
	HeaderVersion = "Pwbi-Version"
	// HeaderMaxSeq is set only on a record stored out of order (a gap
	// repaired, see the package doc): the highest seq of the agent the
	// stream held before it.
	HeaderMaxSeq = "Pwbi-Max-Seq"
)

// JetStream headers, as the server spells them.
const (
	hdrMsgID           = "Nats-Msg-Id"
	hdrExpectedStream  = "Nats-Expected-Stream"
	hdrExpectedSubjSeq = "Nats-Expected-Last-Subject-Sequence"
	hdrExpectedSubj    = "Nats-Expected-Last-Subject-Sequence-Subject"
	hdrBatchID         = "Nats-Batch-Id"
	hdrBatchSeq        = "Nats-Batch-Sequence"
	hdrBatchCommit     = "Nats-Batch-Commit"
)

// Token escapes s into one subject token. Letters, digits, '-' and '_' are
// kept; every other byte (a dot, a space, '*', '>', '%', non-ASCII) becomes
// %XX with upper-case hex, like a URL. The empty id becomes "_" and the id
// "_" becomes "%5F", so distinct ids always give distinct tokens and
// ordinary ids ("outlet_456", "biz-1") appear unchanged.
func Token(s string) string {
	if s == "" {
		return "_"
	}
	if s == "_" {
		return "%5F"
	}
	plain := true
	for i := 0; i < len(s) && plain; i++ {
		plain = tokenSafe(s[i])
	}
	if plain {
		return s
	}
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if tokenSafe(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0x0f])
	}
	return b.String()
}

func tokenSafe(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// AgentFilter is the subject filter of every message of an agent:
// {prefix}.{agent}.>.
func AgentFilter(prefix, agentID string) string {
	return prefix + "." + Token(agentID) + ".>"
}

// Subject is the subject of r published by agentID:
// {prefix}.{agent_id}.{kind}.{business_id}.{outlet_id}, every token escaped
// with [Token]. Business and outlet come from a Moka key
// ("moka/{business_id}/{outlet_id}/..."); a record whose key has none (a
// Mokka order) has "_" for both.
func Subject(prefix, agentID string, r store.Record) string {
	biz, outlet := keyScope(r.Key)
	var b strings.Builder
	b.Grow(len(prefix) + len(agentID) + len(r.Kind) + len(biz) + len(outlet) + 8)
	b.WriteString(prefix)
	for _, t := range [...]string{agentID, r.Kind, biz, outlet} {
		b.WriteByte('.')
		b.WriteString(Token(t))
	}
	return b.String()
}

// keyScope returns the business and outlet ids of a Moka record key
// ("moka/{business_id}/{outlet_id}/...", each segment path-escaped, see
// unified.Key), or two empty strings for any other key.
func keyScope(key string) (biz, outlet string) {
	rest, ok := strings.CutPrefix(key, "moka/")
	if !ok {
		return "", ""
	}
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) < 3 {
		return "", ""
	}
	return unescapeSegment(parts[0]), unescapeSegment(parts[1])
}

func unescapeSegment(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s // not escaped by us: keep it, Token makes it safe
}

// MsgID is the Nats-Msg-Id of record seq of agentID.
func MsgID(agentID string, seq uint64) string {
	return agentID + ":" + strconv.FormatUint(seq, 10)
}

// headerValue makes s safe as a header value: control characters (a CR or
// LF would end the header) are written %XX. Record keys never hold any
// (unified.Key path-escapes its ids), so a key arrives unchanged.
func headerValue(s string) string {
	clean := true
	for i := 0; i < len(s) && clean; i++ {
		c := s[i]
		clean = c >= ' ' && c != 0x7f
	}
	if clean {
		return s
	}
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= ' ' && c != 0x7f {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0x0f])
	}
	return b.String()
}

// appendPayload appends the record's JSON to b:
// {"kind","key","seq","version","data"}.
func appendPayload(b []byte, r store.Record) []byte {
	b = append(b, `{"kind":`...)
	b = jsonstr.Append(b, r.Kind)
	b = append(b, `,"key":`...)
	b = jsonstr.Append(b, r.Key)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = append(b, `,"version":`...)
	b = jsonstr.Append(b, r.Version)
	b = append(b, `,"data":`...)
	if len(strings.TrimSpace(string(r.Data))) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, r.Data...) // the store's canonical JSON, as is
	}
	return append(b, '}')
}

// message builds the message of r, in a fresh nats.Msg. maxSeq > 0 marks a
// record published below the agent's highest stored seq (HeaderMaxSeq).
func message(cfg Config, r store.Record, maxSeq uint64) *nats.Msg {
	var b msgBuilder
	m := b.build(cfg, r, maxSeq)
	return &nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data}
}

// msgBuilder builds messages into the same nats.Msg, header map and buffer
// again and again: nats.go copies a message into its write buffer before
// PublishMsg returns, so one is enough for a batch, and the client's share
// of the machine goes to the servers instead of the allocator.
type msgBuilder struct {
	msg     nats.Msg
	vals    [7][1]string // backing arrays of the header values
	payload []byte
	// The subject of the last record, for the next one of the same kind
	// and key scope (most of a batch: one outlet's sales).
	lastKind, lastScope, lastSubject string
}

// build fills the builder's message with r; it stays valid until the next
// build.
func (b *msgBuilder) build(cfg Config, r store.Record, maxSeq uint64) *nats.Msg {
	m := &b.msg
	if m.Header == nil {
		m.Header = make(nats.Header, 10)
	} else {
		clear(m.Header)
	}
	set := func(i int, k, v string) {
		b.vals[i][0] = v
		m.Header[k] = b.vals[i][:]
	}
	set(0, hdrMsgID, headerValue(MsgID(cfg.AgentID, r.Seq)))
	set(1, hdrExpectedStream, cfg.Stream)
	set(2, HeaderKey, headerValue(r.Key))
	set(3, HeaderSeq, strconv.FormatUint(r.Seq, 10))
	set(4, HeaderVersion, headerValue(r.Version))
	if maxSeq > 0 {
		set(5, HeaderMaxSeq, strconv.FormatUint(maxSeq, 10))
	}
	scope := keyScopePrefix(r.Key)
	if r.Kind != b.lastKind || scope != b.lastScope || b.lastSubject == "" {
		b.lastKind, b.lastScope = r.Kind, scope
		b.lastSubject = Subject(cfg.SubjectPrefix, cfg.AgentID, r)
	}
	m.Subject, m.Reply = b.lastSubject, ""
	b.payload = appendPayload(b.payload[:0], r)
	m.Data = b.payload
	return m
}

// keyScopePrefix is the part of a key the subject depends on:
// "moka/{business}/{outlet}/" or, for any other key, "".
func keyScopePrefix(key string) string {
	rest, ok := strings.CutPrefix(key, "moka/")
	if !ok {
		return ""
	}
	i := strings.IndexByte(rest, '/')
	if i < 0 {
		return ""
	}
	j := strings.IndexByte(rest[i+1:], '/')
	if j < 0 {
		return ""
	}
	return key[:len("moka/")+i+1+j+1]
}

// expectTail makes m conditional on the agent's last message being at
// stream sequence last (0: the agent has no message in the stream).
func expectTail(m *nats.Msg, filter string, last uint64) {
	m.Header[hdrExpectedSubjSeq] = []string{strconv.FormatUint(last, 10)}
	m.Header[hdrExpectedSubj] = []string{filter}
}
