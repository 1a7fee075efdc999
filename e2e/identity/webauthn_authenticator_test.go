package identity_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// waAuthenticator is a software WebAuthn authenticator: one ECDSA P-256
// credential, "none" attestation, a signature counter. It answers the
// options the service gives (the `publicKey` member) with the
// PublicKeyCredential JSON a browser would send, and can be told to lie:
// another origin, another RP id, a counter that goes back.
type waAuthenticator struct {
	key        *ecdsa.PrivateKey
	credID     []byte
	userHandle []byte
	rpID       string
	origin     string
	count      uint32
	uv         bool // user verification performed
}

func waNewAuthenticator(t *testing.T, rpID, origin string) *waAuthenticator {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 32)
	_, _ = rand.Read(id)
	return &waAuthenticator{key: key, credID: id, rpID: rpID, origin: origin, uv: true}
}

// waTamper changes what the authenticator (or the client) puts in one answer.
type waTamper struct {
	origin    string // clientDataJSON.origin
	rpID      string // the RP id hashed into authenticatorData
	challenge string // clientDataJSON.challenge
	typ       string // clientDataJSON.type
	badSig    bool   // sign something else
}

type waPublicKey struct {
	Challenge string `json:"challenge"`
	RPID      string `json:"rpId"`
	RP        struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"rp"`
	User struct {
		ID          string `json:"id"`
		Name        string `json:"name"`
		DisplayName string `json:"displayName"`
	} `json:"user"`
	AllowCredentials   []waDescriptor `json:"allowCredentials"`
	ExcludeCredentials []waDescriptor `json:"excludeCredentials"`
	UserVerification   string         `json:"userVerification"`
	Attestation        string         `json:"attestation"`
	Timeout            int            `json:"timeout"`
	AuthSelection      struct {
		ResidentKey      string `json:"residentKey"`
		UserVerification string `json:"userVerification"`
	} `json:"authenticatorSelection"`
}

type waDescriptor struct {
	Type       string   `json:"type"`
	ID         string   `json:"id"`
	Transports []string `json:"transports"`
}

func waB64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func waUnB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("not base64url: %q", s)
	}
	return b
}

func (a *waAuthenticator) clientData(typ, challenge string, tm waTamper) []byte {
	if tm.typ != "" {
		typ = tm.typ
	}
	if tm.challenge != "" {
		challenge = tm.challenge
	}
	origin := a.origin
	if tm.origin != "" {
		origin = tm.origin
	}
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": origin, "crossOrigin": false})
	return b
}

// authData is rpIdHash | flags | signCount (| attested credential data).
func (a *waAuthenticator) authData(t *testing.T, tm waTamper, attested bool) []byte {
	t.Helper()
	rpID := a.rpID
	if tm.rpID != "" {
		rpID = tm.rpID
	}
	h := sha256.Sum256([]byte(rpID))
	flags := byte(0x01) // UP
	if a.uv {
		flags |= 0x04
	}
	if attested {
		flags |= 0x40
	}
	out := append([]byte{}, h[:]...)
	out = append(out, flags)
	out = binary.BigEndian.AppendUint32(out, a.count)
	if attested {
		out = append(out, make([]byte, 16)...) // AAGUID: zero, as "none" attestation has it
		out = binary.BigEndian.AppendUint16(out, uint16(len(a.credID)))
		out = append(out, a.credID...)
		x, y := make([]byte, 32), make([]byte, 32)
		a.key.PublicKey.X.FillBytes(x)
		a.key.PublicKey.Y.FillBytes(y)
		cose, err := cbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: x, -3: y})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, cose...)
	}
	return out
}

// create answers navigator.credentials.create({publicKey: pk}).
func (a *waAuthenticator) create(t *testing.T, pk waPublicKey, tm waTamper) map[string]any {
	t.Helper()
	a.userHandle = waUnB64(t, pk.User.ID)
	cd := a.clientData("webauthn.create", pk.Challenge, tm)
	att, err := cbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": a.authData(t, tm, true)})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{
		"id": waB64(a.credID), "rawId": waB64(a.credID), "type": "public-key", "authenticatorAttachment": "platform",
		"response": map[string]any{
			"clientDataJSON": waB64(cd), "attestationObject": waB64(att), "transports": []string{"internal", "hybrid"},
		},
		"clientExtensionResults": map[string]any{},
	}
}

// get answers navigator.credentials.get({publicKey: pk}): the counter
// goes up by one first.
func (a *waAuthenticator) get(t *testing.T, pk waPublicKey, tm waTamper) map[string]any {
	t.Helper()
	a.count++
	cd := a.clientData("webauthn.get", pk.Challenge, tm)
	ad := a.authData(t, tm, false)
	h := sha256.Sum256(cd)
	msg := append(append([]byte{}, ad...), h[:]...)
	if tm.badSig {
		msg = append(msg, 0)
	}
	digest := sha256.Sum256(msg)
	sig, err := ecdsa.SignASN1(rand.Reader, a.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	resp := map[string]any{"clientDataJSON": waB64(cd), "authenticatorData": waB64(ad), "signature": waB64(sig)}
	if a.userHandle != nil {
		resp["userHandle"] = waB64(a.userHandle)
	}
	return map[string]any{
		"id": waB64(a.credID), "rawId": waB64(a.credID), "type": "public-key", "authenticatorAttachment": "platform",
		"response": resp, "clientExtensionResults": map[string]any{},
	}
}
