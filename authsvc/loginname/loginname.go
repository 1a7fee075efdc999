// Package loginname turns what a person types as their login (an email
// address) into the one canonical name an account is stored and found under,
// and into the key that keeps two accounts from looking alike.
// It owns that rule and no state; the service and the store both import
// it, so it must import nothing of ours and no Caddy.
//
// The rules:
//
//   - Invisible characters (Unicode's Default_Ignorable_Code_Point: zero-width
//     space and joiners, soft hyphen, bidi controls, variation selectors, …)
//     are removed first, as IDNA ignores them in domain names: they cannot
//     tell two names apart on screen, so they do not tell them apart here.
//   - The local part (before the last @) is enforced with PRECIS
//     UsernameCaseMapped (RFC 8265): full- and half-width forms folded,
//     lower-cased, NFC, the bidi rule; spaces, controls, symbols and
//     compatibility characters (ligatures such as ﬁ, circled digits, ℌ) are
//     refused rather than guessed at. Removing the invisible characters is the
//     profile's one additional mapping: on every name without them the result
//     is exactly UsernameCaseMapped's.
//   - The domain goes through IDNA (UTS #46 mapping, IDNA2008 validity, the
//     bidi rule, DNS lengths, STD3 letters-digits-hyphen) and is kept in its
//     Unicode form: `ACME.TEST`, `acme.test` and an A-label (`xn--…`) of the
//     same domain are one domain.
//   - Skeleton is the UTS #39 confusable skeleton of the canonical name,
//     lower-cased (names are case-insensitive, so `b0b` — skeleton `bOb` — is
//     a look-alike of `bob`). Two names with one skeleton may belong to one
//     account only: the stores keep it unique. It is a key for comparison,
//     never shown and never used to find an account at login: a login reaches
//     the account of its canonical name or none.
//
// The confusable table is go.mau.fi/util/confusable (Unicode 17 data,
// maintained); it is applied after the invisible characters are gone, so the
// skeleton is the one UTS #39 (revision 15.1 on) defines.
package loginname

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.mau.fi/util/confusable"
	"golang.org/x/net/idna"
	"golang.org/x/text/runes"
	"golang.org/x/text/secure/bidirule"
	"golang.org/x/text/secure/precis"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
	"golang.org/x/text/width"
)

// Limits, in bytes of UTF-8: RFC 5321's local part and path, and a bound on
// the input so that a hostile one costs no more than a long real one.
const (
	MaxLocalLen = 64
	MaxLen      = 254
	maxInputLen = 1024
)

// Name is a normalised login name.
type Name struct {
	// Email is the canonical name: the PRECIS local part, @, the domain in
	// IDNA's Unicode form. Accounts are stored and looked up by it.
	Email string
	// Skeleton is the look-alike key of Email (see the package doc).
	Skeleton string
}

// Error says why a name is refused, in words for the person who typed it.
// It depends on the name alone, never on which accounts exist.
type Error struct {
	Reason string
}

func (e *Error) Error() string { return e.Reason }

func refuse(format string, args ...any) error {
	return &Error{Reason: fmt.Sprintf(format, args...)}
}

// Ignorable reports whether r is a Default_Ignorable_Code_Point, derived as
// Unicode's DerivedCoreProperties.txt does it: Other_Default_Ignorable_Code_Point,
// Cf and Variation_Selector, less White_Space, the interlinear annotation
// and Egyptian format controls, and the prepended concatenation marks.
func Ignorable(r rune) bool {
	switch {
	case r < 0xAD:
		return false
	case unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r), unicode.Is(unicode.Variation_Selector, r):
		return true
	case !unicode.Is(unicode.Cf, r):
		return false
	case unicode.Is(unicode.White_Space, r), unicode.Is(unicode.Prepended_Concatenation_Mark, r),
		0xFFF9 <= r && r <= 0xFFFB, 0x13430 <= r && r <= 0x1343F:
		return false
	}
	return true
}

var (
	removeIgnorable = runes.Remove(runes.Predicate(Ignorable))

	// local is UsernameCaseMapped with the invisible characters mapped to
	// nothing (RFC 8264's additional mapping rule) and an empty result refused.
	local = precis.NewIdentifier(
		precis.FoldWidth,
		precis.AdditionalMapping(func() transform.Transformer { return removeIgnorable }),
		precis.LowerCase(),
		precis.Norm(norm.NFC),
		precis.BidiRule,
		precis.DisallowEmpty,
	)

	domain = idna.New(
		idna.MapForLookup(),
		idna.Transitional(false),
		idna.BidiRule(),
		idna.VerifyDNSLength(true),
		idna.StrictDomainName(true),
	)
)

// Normalize checks raw and returns its canonical name and skeleton; a name
// refused gets an *Error. Normalize(n.Email) is n again.
func Normalize(raw string) (Name, error) {
	if len(raw) > maxInputLen {
		return Name{}, refuse("the email address is longer than %d bytes", MaxLen)
	}
	if !utf8.ValidString(raw) {
		return Name{}, refuse("the email address is not valid UTF-8")
	}
	s := strings.TrimSpace(raw)
	if s == "" {
		return Name{}, refuse("an email address is required")
	}
	// Full-width forms are one with their ASCII counterparts (PRECIS and
	// IDNA both fold them): folded first, ＠ separates as @ does.
	s, _, _ = transform.String(transform.Chain(removeIgnorable, width.Fold), s)
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return Name{}, refuse("an email address needs an @ between its local part and its domain")
	}
	lp, dp := s[:at], s[at+1:]
	if strings.TrimFunc(lp, unicode.IsSpace) == "" {
		return Name{}, refuse("the part of the email address before @ is empty")
	}
	if strings.TrimFunc(dp, unicode.IsSpace) == "" {
		return Name{}, refuse("the domain of the email address (after @) is empty")
	}
	l, err := local.String(lp)
	if err != nil {
		return Name{}, localError(lp, err)
	}
	if strings.ContainsRune(l, '@') {
		return Name{}, refuse("the email address has more than one @")
	}
	if len(l) > MaxLocalLen {
		return Name{}, refuse("the part of the email address before @ is longer than %d bytes", MaxLocalLen)
	}
	d, err := canonicalDomain(dp)
	if err != nil {
		return Name{}, err
	}
	email := l + "@" + d
	if len(email) > MaxLen {
		return Name{}, refuse("the email address is longer than %d bytes", MaxLen)
	}
	return Name{Email: email, Skeleton: Skeleton(email)}, nil
}

// localError names what PRECIS refused in the local part lp.
func localError(lp string, err error) error {
	if errors.Is(err, bidirule.ErrInvalid) {
		return refuse("the part of the email address before @ mixes right-to-left and left-to-right text in a way the bidi rule (RFC 5893) forbids")
	}
	for _, r := range lp {
		if Ignorable(r) {
			continue
		}
		if _, e := precis.UsernameCaseMapped.String(string(r)); e != nil && !errors.Is(e, bidirule.ErrInvalid) && r != '@' {
			return refuse("the part of the email address before @ has a character a login name can't have: U+%04X", r)
		}
	}
	return refuse("the part of the email address before @ is not a valid login name (PRECIS UsernameCaseMapped, RFC 8265)")
}

// canonicalDomain is dp's Unicode form after IDNA, or an *Error.
func canonicalDomain(dp string) (string, error) {
	if strings.HasSuffix(dp, ".") || strings.HasSuffix(dp, "。") || strings.HasSuffix(dp, "．") || strings.HasSuffix(dp, "｡") {
		return "", refuse("the domain of the email address ends with a dot")
	}
	a, err := domain.ToASCII(dp)
	if err != nil {
		return "", refuse("the domain of the email address is not a valid domain name (IDNA)")
	}
	u, err := domain.ToUnicode(a)
	if err != nil {
		return "", refuse("the domain of the email address is not a valid domain name (IDNA)")
	}
	return u, nil
}

// Skeleton is the look-alike key of a canonical name: the UTS #39 skeleton,
// lower-cased, in NFD.
func Skeleton(email string) string {
	return norm.NFD.String(strings.ToLower(confusable.Skeleton(email)))
}
