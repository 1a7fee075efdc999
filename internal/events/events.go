// Package events is erpgate's event layer core: the CloudEvents 1.0 event
// (structured JSON mode, the company in the `companyid` extension), the
// names of the JetStream stream and subjects that carry it, and the engine
// that publishes and reads them (engine.go: an embedded nats-server or an
// external NATS cluster).
//
// Subjects: `<prefix>.ev.<company>.<type>`, so a CloudEvent type's dots are
// subject tokens and a type pattern (`erp.invoices.*`) is a subject filter
// of one company. prefix and stream come from the erp app's key prefix
// (NamesFor), so deployments and tests sharing a NATS server don't meet.
//
// Owns: the event's shape and the subject scheme. Must not import Caddy or
// caddymodules.
package events

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
)

// SpecVersion is the CloudEvents version of every event.
const SpecVersion = "1.0"

// Sources of events (DESIGN.md, "Events").
const (
	SourceAuthsvc = "/erpgate/authsvc"
	sourceEdge    = "/erpgate/"
)

// EdgeSource is the source of events an edge instance publishes.
func EdgeSource(instance string) string { return sourceEdge + instance }

// Event is one CloudEvent in structured JSON mode.
type Event struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype,omitempty"`
	CompanyID       string          `json:"companyid,omitempty"`
	Data            json.RawMessage `json:"data,omitempty"`
}

// New is an event of typ with a new id (a UUIDv7) and the current time.
// data is marshalled to JSON (a json.RawMessage or []byte is taken as is;
// nil: no data).
func New(source, typ, company, subject string, data any) (*Event, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	ev := &Event{
		SpecVersion: SpecVersion, ID: id.String(), Source: source, Type: typ,
		Subject: subject, Time: time.Now().UTC(), CompanyID: company,
	}
	switch d := data.(type) {
	case nil:
	case json.RawMessage:
		ev.Data = d
	case []byte:
		ev.Data = d
	default:
		b, err := json.Marshal(d)
		if err != nil {
			return nil, err
		}
		ev.Data = b
	}
	if ev.Data != nil {
		ev.DataContentType = "application/json"
	}
	return ev, nil
}

// Validate checks what every published event must have.
func (e *Event) Validate() error {
	switch {
	case e.SpecVersion != SpecVersion:
		return errors.New("events: specversion must be 1.0")
	case e.ID == "" || len(e.ID) > 128:
		return errors.New("events: id must be 1 to 128 characters")
	case e.Source == "":
		return errors.New("events: source is required")
	case !ValidType(e.Type):
		return errors.New("events: type must be dot-separated tokens of letters, digits, '_' and '-'")
	case e.Data != nil && !json.Valid(e.Data):
		return errors.New("events: data must be JSON")
	}
	return nil
}

// Names are a deployment's stream and subject prefix on a NATS server.
type Names struct {
	Stream string // the JetStream stream holding every event
	Prefix string // subjects are Prefix + ".ev.<company>.<type>"
}

// NamesFor derives Names from the erp app's key prefix ("erpgate:" gives
// stream "erpgate_events" and subjects "erpgate.ev.…"): characters other
// than letters, digits, '_' and '-' are dropped.
func NamesFor(keyPrefix string) Names {
	var b strings.Builder
	for _, r := range keyPrefix {
		if r < 128 && isTokenChar(byte(r)) {
			b.WriteRune(r)
		}
	}
	p := b.String()
	if p == "" {
		p = "erpgate"
	}
	return Names{Stream: p + "_events", Prefix: p}
}

// CompanyToken is company as one subject token: itself when it is made of
// letters, digits, '_' and '-' (the demo's "acme"), else "x" and its hex;
// "_" for none (system events).
func CompanyToken(company string) string {
	if company == "" {
		return "_"
	}
	for i := 0; i < len(company); i++ {
		if !isTokenChar(company[i]) {
			return "x" + hex.EncodeToString([]byte(company))
		}
	}
	if company == "_" || company[0] == 'x' && len(company) > 1 && isHex(company[1:]) {
		return "x" + hex.EncodeToString([]byte(company)) // can't be mistaken for an encoded one
	}
	return company
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// Subject is where an event of company and typ is published.
func (n Names) Subject(company, typ string) string {
	return n.Prefix + ".ev." + CompanyToken(company) + "." + typ
}

// CompanyFilter is the subject filter of company's events matching the
// type pattern (see ValidPattern; "" or "*" is every type).
func (n Names) CompanyFilter(company, pattern string) string {
	return n.Prefix + ".ev." + CompanyToken(company) + "." + patternSubject(pattern)
}

// AllFilter is the subject filter of every company's events of pattern.
func (n Names) AllFilter(pattern string) string {
	return n.Prefix + ".ev.*." + patternSubject(pattern)
}

// StreamSubjects is the subject filter of the stream.
func (n Names) StreamSubjects() string { return n.Prefix + ".ev.>" }

func patternSubject(pattern string) string {
	if pattern == "" || pattern == "*" || pattern == ">" {
		return ">"
	}
	if s, ok := strings.CutSuffix(pattern, ".*"); ok {
		return s + ".>" // a trailing * is one or more tokens
	}
	return pattern
}

// ValidType: one or more dot-separated tokens of letters, digits, '_' and
// '-', at most 200 bytes.
func ValidType(t string) bool {
	if t == "" || len(t) > 200 {
		return false
	}
	for tok := range strings.SplitSeq(t, ".") {
		if tok == "" {
			return false
		}
		for i := 0; i < len(tok); i++ {
			if !isTokenChar(tok[i]) {
				return false
			}
		}
	}
	return true
}

// ValidPattern: a type where a token may be `*`: one token, or, as the
// last token, one or more (`erp.*` is every erp event, `erp.invoices.*`
// every invoice event, `erp.*.created` every creation); "*" alone is every
// type.
func ValidPattern(p string) bool {
	if p == "*" {
		return true
	}
	if p == "" || len(p) > 200 {
		return false
	}
	for tok := range strings.SplitSeq(p, ".") {
		if tok == "*" {
			continue
		}
		if !ValidType(tok) {
			return false
		}
	}
	return true
}

// Match reports whether typ matches pattern (see ValidPattern), as the
// subject filter of the pattern would.
func Match(pattern, typ string) bool {
	if pattern == "*" || pattern == "" {
		return true
	}
	for {
		ptok, prest, pmore := strings.Cut(pattern, ".")
		ttok, trest, tmore := strings.Cut(typ, ".")
		if ptok == "*" && !pmore {
			return ttok != "" // a trailing * is one or more tokens
		}
		if ptok != "*" && ptok != ttok {
			return false
		}
		if !pmore || !tmore {
			return pmore == tmore
		}
		pattern, typ = prest, trest
	}
}

func isTokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// ReadScope is the scope a caller needs to read events of typ: a business
// event `erp.<backend>.<action>` needs `<backend>:read`; every other event
// (erp.auth.*, erp.security.*, erp.webhooks.*, erp.admin.*) is the
// company's administration and needs `webhooks:read`, which company owners
// and admins hold.
func ReadScope(typ string) string {
	rest, ok := strings.CutPrefix(typ, "erp.")
	if !ok {
		return ScopeWebhooksRead
	}
	kind, _, _ := strings.Cut(rest, ".")
	switch kind {
	case "auth", "security", "webhooks", "admin", "system":
		return ScopeWebhooksRead
	}
	return kind + ":read"
}

// Scopes of the webhook API (DESIGN.md, "Events").
const (
	ScopeWebhooksRead  = "webhooks:read"
	ScopeWebhooksWrite = "webhooks:write"
)
