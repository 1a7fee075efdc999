package loginname_test

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/text/secure/precis"

	"github.com/erpgate/erpgate/authsvc/loginname"
)

const alice = "alice@acme.test"

func TestNormalize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		email    string // canonical name; empty: refused
		lookLike string // a name whose skeleton must equal this one's
		differ   string // a name whose skeleton must differ
	}{
		{name: "ascii", in: alice, email: alice},
		{name: "upper case", in: "ALICE@ACME.TEST", email: alice},
		{name: "spaces around", in: "  Alice@Acme.Test\t", email: alice},
		{name: "fullwidth letter is the same name", in: "ａlice@acme.test", email: alice},
		{name: "fullwidth everything", in: "ＡＬＩＣＥ＠ａｃｍｅ．ｔｅｓｔ", email: alice},
		{name: "zero-width space is ignored", in: "ali\u200bce@acme.test", email: alice},
		{name: "soft hyphen, joiners, BOM, bidi override ignored", in: "\ufeffal\u00adi\u200dc\u200ce\u202e@acme.test", email: alice},
		{name: "variation selector ignored", in: "alice\ufe0f@acme.test", email: alice},
		{name: "Cyrillic i is another name that looks alike", in: "alіce@acme.test", email: "alіce@acme.test", lookLike: alice},
		{name: "all-Cyrillic look-alike", in: "аlісе@acme.test", email: "аlісе@acme.test", lookLike: alice},
		{name: "mixed Latin and Greek", in: "αlice@acme.test", email: "αlice@acme.test", lookLike: alice},
		{name: "Cyrillic in the domain", in: "alice@аcme.test", email: "alice@аcme.test", lookLike: alice},
		{name: "Cyrillic domain as A-label", in: "alice@xn--cme-5cd.test", email: "alice@аcme.test", lookLike: alice},
		{name: "rn looks like m", in: "rnallory@acme.test", email: "rnallory@acme.test", lookLike: "mallory@acme.test"},
		{name: "digit one looks like l", in: "a1ice@acme.test", email: "a1ice@acme.test", lookLike: alice},
		{name: "digit zero looks like o, whatever the case", in: "b0b@acme.test", email: "b0b@acme.test", lookLike: "bob@acme.test"},
		{name: "different names differ", in: "alicia@acme.test", email: "alicia@acme.test", differ: alice},
		{name: "same local part in another domain differs", in: "alice@globex.test", email: "alice@globex.test", differ: alice},
		{name: "IDNA domain: Unicode", in: "jörg@bücher.example", email: "jörg@bücher.example"},
		{name: "IDNA domain: upper-case Unicode", in: "JÖRG@BÜCHER.EXAMPLE", email: "jörg@bücher.example"},
		{name: "IDNA domain: A-label", in: "jörg@xn--bcher-kva.example", email: "jörg@bücher.example"},
		{name: "IDNA domain: upper-case A-label", in: "JÖRG@XN--BCHER-KVA.EXAMPLE", email: "jörg@bücher.example"},
		{name: "combining acute composes (NFC)", in: "jo\u0301se@acme.test", email: "jóse@acme.test"},
		{name: "precomposed and decomposed are one name", in: "jóse@acme.test", email: "jóse@acme.test"},
		{name: "Kelvin sign is k", in: "\u212aaren@acme.test", email: "karen@acme.test"},
		{name: "German sharp s kept", in: "straße@acme.test", email: "straße@acme.test", differ: "strasse@acme.test"},
		{name: "final sigma not special", in: "ΣΟΦΙΑΣ@acme.test", email: "σοφιασ@acme.test"},
		{name: "halfwidth katakana folds", in: "ﾊﾅ@acme.test", email: "ハナ@acme.test"},
		{name: "plus tag is part of the name", in: "alice+ops@acme.test", email: "alice+ops@acme.test", differ: alice},
		{name: "right-to-left name", in: "علي@acme.test", email: "علي@acme.test"},
		{name: "dotted capital I", in: "İrem@acme.test", email: "i̇rem@acme.test"},

		{name: "empty", in: ""},
		{name: "blank", in: " \t "},
		{name: "only invisible", in: "\u200b\u200b"},
		{name: "no @", in: "alice.acme.test"},
		{name: "empty local part", in: "@acme.test"},
		{name: "invisible local part", in: "\u200b@acme.test"},
		{name: "empty domain", in: "alice@"},
		{name: "two @", in: "a@b@acme.test"},
		{name: "space inside", in: "al ice@acme.test"},
		{name: "no-break space inside", in: "al\u00a0ice@acme.test"},
		{name: "NUL", in: "alice\x00@acme.test"},
		{name: "control character", in: "alice\u0007@acme.test"},
		{name: "next line", in: "alice\u0085@acme.test"},
		{name: "ligature fi", in: "ﬁona@acme.test"},
		{name: "ligature ae is a letter, kept", in: "æsir@acme.test", email: "æsir@acme.test"},
		{name: "circled digit", in: "①@acme.test"},
		{name: "fraktur H", in: "ℌans@acme.test"},
		{name: "square kg", in: "㎏@acme.test"},
		{name: "dz digraph", in: "ǅemal@acme.test"},
		{name: "leading combining mark", in: "\u0301alice@acme.test"},
		{name: "mixed bidi", in: "aعلي@acme.test"},
		{name: "private use", in: "ali\ue000ce@acme.test"},
		{name: "unassigned", in: "ali\u0378ce@acme.test"},
		{name: "invalid UTF-8", in: "ali\xffce@acme.test"},
		{name: "local part too long", in: strings.Repeat("a", 65) + "@acme.test"},
		{name: "address too long", in: strings.Repeat("a", 64) + "@" + strings.Repeat("b", 60) + "." + strings.Repeat("c", 60) + "." + strings.Repeat("d", 60) + ".eeeee.test"},
		{name: "domain with empty label", in: "alice@acme..test"},
		{name: "domain with trailing dot", in: "alice@acme.test."},
		{name: "domain with trailing ideographic dot", in: "alice@acme.test。"},
		{name: "domain label starts with hyphen", in: "alice@-acme.test"},
		{name: "domain with underscore", in: "alice@ac_me.test"},
		{name: "domain literal", in: "alice@[127.0.0.1]"},
		{name: "domain with space", in: "alice@ac me.test"},
		{name: "domain label too long", in: "alice@" + strings.Repeat("a", 64) + ".test"},
		{name: "bad A-label", in: "alice@xn--a.test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n, err := loginname.Normalize(tc.in)
			if tc.email == "" {
				var le *loginname.Error
				if err == nil || !errors.As(err, &le) || le.Reason == "" {
					t.Fatalf("Normalize(%q) = %+v, %v; want a refusal", tc.in, n, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Normalize(%q): %v", tc.in, err)
			}
			if n.Email != tc.email {
				t.Fatalf("Normalize(%q).Email = %q, want %q", tc.in, n.Email, tc.email)
			}
			again, err := loginname.Normalize(n.Email)
			if err != nil || again != n {
				t.Fatalf("not idempotent: Normalize(%q) = %+v, %v; want %+v", n.Email, again, err, n)
			}
			if n.Skeleton == "" || !strings.Contains(n.Skeleton, "@") {
				t.Fatalf("skeleton %q", n.Skeleton)
			}
			if tc.lookLike != "" {
				other, err := loginname.Normalize(tc.lookLike)
				if err != nil || other.Email == n.Email || other.Skeleton != n.Skeleton {
					t.Fatalf("%q and %q: skeletons %q and %q (%v); want one skeleton for two names", n.Email, other.Email, n.Skeleton, other.Skeleton, err)
				}
			}
			if tc.differ != "" {
				other, err := loginname.Normalize(tc.differ)
				if err != nil || other.Skeleton == n.Skeleton {
					t.Fatalf("%q and %q have one skeleton %q (%v)", n.Email, other.Email, n.Skeleton, err)
				}
			}
		})
	}
}

// The local part is UsernameCaseMapped's result whenever the input has no
// invisible character: the one additional mapping changes nothing else.
func TestLocalPartIsUsernameCaseMapped(t *testing.T) {
	t.Parallel()
	for _, lp := range []string{"alice", "ALICE", "ａlice", "alіce", "Jo\u0301sé", "ΣΟΦΙΑΣ", "ﾊﾅ", "\u212aaren", "İrem", "علي", "æsir", "a.b-c_d+e"} {
		want, err := precis.UsernameCaseMapped.String(lp)
		if err != nil {
			t.Fatalf("UsernameCaseMapped(%q): %v", lp, err)
		}
		n, err := loginname.Normalize(lp + "@acme.test")
		if err != nil || n.Email != want+"@acme.test" {
			t.Errorf("Normalize(%q@acme.test) = %q, %v; UsernameCaseMapped gives %q", lp, n.Email, err, want)
		}
	}
	for _, lp := range []string{"al ice", "ﬁona", "①", "a\x00"} {
		if _, err := precis.UsernameCaseMapped.String(lp); err == nil {
			t.Fatalf("UsernameCaseMapped(%q) accepted it", lp)
		}
		if _, err := loginname.Normalize(lp + "@acme.test"); err == nil {
			t.Errorf("Normalize(%q@acme.test) accepted what UsernameCaseMapped refuses", lp)
		}
	}
}

func TestIgnorable(t *testing.T) {
	t.Parallel()
	// Default_Ignorable_Code_Point, from Unicode's DerivedCoreProperties.txt.
	for _, r := range []rune{0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180B, 0x180E, 0x180F,
		0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x202A, 0x202E, 0x2060, 0x2064, 0x2066, 0x206F, 0x3164,
		0xFE00, 0xFE0F, 0xFEFF, 0xFFA0, 0x1BCA0, 0x1BCA3, 0x1D173, 0x1D17A, 0xE0000, 0xE0001, 0xE0020, 0xE0100, 0xE0FFF} {
		if !loginname.Ignorable(r) {
			t.Errorf("U+%04X is default-ignorable", r)
		}
	}
	// Format characters that are not, and ordinary ones.
	for _, r := range []rune{'a', ' ', '@', 0x00A0, 0x0600, 0x0605, 0x06DD, 0x070F, 0x08E2, 0x110BD, 0xFFF9, 0xFFFB, 0x13430, 0x2028, 0x3000, 0xFFFD} {
		if loginname.Ignorable(r) {
			t.Errorf("U+%04X is not default-ignorable", r)
		}
	}
}

// The refusal depends on the name only, and names what is wrong.
func TestErrorsSayWhy(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"al ice@acme.test":  "U+0020",
		"ﬁona@acme.test":    "U+FB01",
		"@acme.test":        "before @ is empty",
		"alice@acme..test":  "not a valid domain",
		"alice.acme.test":   "needs an @",
		"aعلي@acme.test":    "bidi",
		"alice@acme.test.":  "ends with a dot",
		"a@b@acme.test":     "more than one @",
		"":                  "required",
		"alice@":            "domain of the email address (after @) is empty",
		"ali\u0007@x.test":  "U+0007",
		"ali\ue000@x.test":  "U+E000",
		"\u0301a@acme.test": "",
	} {
		_, err := loginname.Normalize(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Normalize(%q): %v; want it to say %q", in, err, want)
		}
	}
}

func BenchmarkNormalize(b *testing.B) {
	for _, in := range []string{"alice@acme.test", "ＡＬＩＣＥ@bücher.example"} {
		b.Run(in, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := loginname.Normalize(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A canonical name is a fixed point: the stores re-normalise what they are
// given and refuse anything else, so a name Normalize accepts must survive it.
func FuzzNormalizeIsIdempotent(f *testing.F) {
	for _, s := range []string{alice, "ＡＬＩＣＥ＠ａｃｍｅ．ｔｅｓｔ", "jo\u0301se@xn--bcher-kva.example", "ΣΟΦΙΑΣ@acme.test", "ali\u200bce@аcme.test", "علي@مثال.اختبار", "a@xn--zzz.test", "İ@ß.de"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		n, err := loginname.Normalize(in)
		if err != nil {
			var le *loginname.Error
			if !errors.As(err, &le) {
				t.Fatalf("Normalize(%q): %v is not an *Error", in, err)
			}
			return
		}
		again, err := loginname.Normalize(n.Email)
		if err != nil || again != n {
			t.Fatalf("Normalize(%q) = %+v; Normalize of that = %+v, %v", in, n, again, err)
		}
	})
}
