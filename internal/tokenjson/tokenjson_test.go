package tokenjson

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

// claims has a field of every supported type.
type claims struct {
	Iss   string          `json:"iss"`
	Sub   string          `json:"sub"`
	Aud   Audience        `json:"aud"`
	Exp   *float64        `json:"exp"`
	Iat   int64           `json:"iat"`
	Nbf   *int64          `json:"nbf"`
	Cid   string          `json:"cid"`
	Roles []string        `json:"roles"`
	Adm   bool            `json:"adm"`
	Ok    *bool           `json:"ok"`
	Name  *string         `json:"name"`
	Score float64         `json:"score"`
	Crit  Raw             `json:"crit"`
	Cnf   json.RawMessage `json:"cnf,omitempty"`
	Skip  string          `json:"-"`
	priv  string          //nolint:unused // unexported fields are not members
}

var claimsSchema = MustCompile[claims]()

func decode(s string) (claims, error) {
	var c claims
	err := claimsSchema.Decode([]byte(s), &c)
	return c, err
}

func TestDecodeAccepts(t *testing.T) {
	t.Parallel()
	c, err := decode(` {"iss":"https://i.test","sub":"u\u00e9\ud83d\ude00","aud":["a","b"],"exp":1.7e9,"iat":-0,"nbf":42,` +
		`"cid":"acme","roles":[],"adm":true,"ok":false,"name":"n","score":-1.5e-3,"crit":{"x":[1,{"y":null}]},"cnf":null,` +
		`"other":{"nested":[true,false,null,"s",0.5]},"Other2":1,"\u00e9t\u00e9":"","":0} `)
	if err != nil {
		t.Fatal(err)
	}
	if c.Iss != "https://i.test" || c.Sub != "ué😀" || !reflect.DeepEqual(c.Aud, Audience{"a", "b"}) || *c.Exp != 1.7e9 ||
		c.Iat != 0 || *c.Nbf != 42 || c.Cid != "acme" || c.Roles == nil || len(c.Roles) != 0 || !c.Adm || *c.Ok ||
		*c.Name != "n" || c.Score != -1.5e-3 || string(c.Crit) != `{"x":[1,{"y":null}]}` || string(c.Cnf) != "null" {
		t.Fatalf("%+v", c)
	}
	c, err = decode(`{"aud":"one","roles":null,"exp":null,"nbf":null,"ok":null,"name":null,"aud2":[]}`)
	if err != nil || !reflect.DeepEqual(c.Aud, Audience{"one"}) || c.Roles != nil || c.Exp != nil || c.Nbf != nil || c.Ok != nil || c.Name != nil {
		t.Fatalf("%+v %v", c, err)
	}
	if !c.Aud.Contains("one") || c.Aud.Contains("on") {
		t.Fatal("Contains")
	}
	c, err = decode(`{"iat":-9223372036854775808,"score":1E+2}`)
	if err != nil || c.Iat != math.MinInt64 || c.Score != 100 {
		t.Fatalf("%+v %v", c, err)
	}
	if _, err := decode(`{}`); err != nil {
		t.Fatal(err)
	}
	if _, err := decode("\t{ }\r\n"); err != nil {
		t.Fatal(err)
	}
}

// TestDecodeRefuses is every refusal of the package documentation.
func TestDecodeRefuses(t *testing.T) {
	t.Parallel()
	deep := strings.Repeat(`{"a":`, MaxDepth+1) + "1" + strings.Repeat("}", MaxDepth+1)
	deepArr := `{"a":` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + `}`
	many := func(n int) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(`"m` + strings.Repeat("x", i) + `":1`)
		}
		return b.String() + "}"
	}
	manyElems := `{"roles":[` + strings.TrimSuffix(strings.Repeat(`"r",`, MaxMembers+1), ",") + `]}`
	cases := []struct {
		name, in string
		want     error
	}{
		// case variants of known members: names are case-sensitive
		{"cid and CID", `{"cid":"acme","CID":"globex"}`, ErrCaseVariant},
		{"CID alone", `{"CID":"globex"}`, ErrCaseVariant},
		{"CID before cid", `{"CID":"globex","cid":"acme"}`, ErrCaseVariant},
		{"Exp for exp", `{"Exp":1}`, ErrCaseVariant},
		{"escaped upper case", `{"\u0043ID":"globex"}`, ErrCaseVariant},
		{"long s folds to s", `{"ſub":"u"}`, ErrCaseVariant},
		{"kelvin sign folds to k", `{"nbf":1,"ok":true,"o\u212a":true}`, ErrCaseVariant},
		// duplicates, in any case
		{"cid twice", `{"cid":"acme","cid":"globex"}`, ErrDuplicate},
		{"sub twice", `{"sub":"a","iss":"i","sub":"b"}`, ErrDuplicate},
		{"escaped duplicate", `{"cid":"acme","c\u0069d":"globex"}`, ErrDuplicate},
		{"unknown twice", `{"x":1,"x":2}`, ErrDuplicate},
		{"unknown in two cases", `{"foo":1,"FOO":2}`, ErrDuplicate},
		{"unknown, unicode fold", `{"ſ":1,"S":2}`, ErrDuplicate},
		{"nested duplicate", `{"crit":{"a":1,"a":2}}`, ErrDuplicate},
		{"nested case duplicate", `{"x":[{"Ab":1,"aB":2}]}`, ErrDuplicate},
		// invalid UTF-8 and Unicode escapes
		{"invalid UTF-8 in value", "{\"sub\":\"a\xffb\"}", ErrUTF8},
		{"invalid UTF-8 in unknown value", "{\"x\":[\"\xc3\"]}", ErrUTF8},
		{"invalid UTF-8 in name", "{\"\xe9\":1}", ErrUTF8},
		{"UTF-8 encoded surrogate", "{\"sub\":\"\xed\xa0\x80\"}", ErrUTF8},
		{"overlong encoding", "{\"sub\":\"\xc0\xaf\"}", ErrUTF8},
		{"lone high surrogate", `{"sub":"\ud800"}`, ErrUTF8},
		{"lone high surrogate then text", `{"sub":"\ud800abcdef"}`, ErrUTF8},
		{"high then high", `{"sub":"\ud800\ud800"}`, ErrUTF8},
		{"lone low surrogate", `{"sub":"\udc00"}`, ErrUTF8},
		// wrong types
		{"number for string", `{"cid":123}`, ErrType},
		{"string for int", `{"iat":"123"}`, ErrType},
		{"string for float", `{"exp":"1"}`, ErrType},
		{"fraction for int", `{"iat":1.5}`, ErrType},
		{"exponent for int", `{"iat":1e3}`, ErrType},
		{"int overflow", `{"iat":9223372036854775808}`, ErrType},
		{"int underflow", `{"iat":-9223372036854775809}`, ErrType},
		{"huge int", `{"iat":99999999999999999999999}`, ErrType},
		{"float overflow", `{"exp":1e400}`, ErrType},
		{"object for array", `{"roles":{"0":"admin"}}`, ErrType},
		{"string for array", `{"roles":"admin"}`, ErrType},
		{"number in array", `{"roles":["a",1]}`, ErrType},
		{"null in array", `{"roles":[null]}`, ErrType},
		{"object for audience", `{"aud":{"a":1}}`, ErrType},
		{"number for audience", `{"aud":1}`, ErrType},
		{"array for string", `{"sub":["u"]}`, ErrType},
		{"object for string", `{"sub":{}}`, ErrType},
		{"bool for string", `{"sub":true}`, ErrType},
		{"null for string", `{"sub":null}`, ErrType},
		{"null for int", `{"iat":null}`, ErrType},
		{"null for bool", `{"adm":null}`, ErrType},
		{"string for bool", `{"adm":"true"}`, ErrType},
		{"number for bool", `{"adm":1}`, ErrType},
		{"number for *string", `{"name":1}`, ErrType},
		{"string for *int", `{"nbf":"1"}`, ErrType},
		// not one object
		{"empty", ``, ErrSyntax},
		{"whitespace", `  `, ErrSyntax},
		{"array", `[]`, ErrSyntax},
		{"string", `"x"`, ErrSyntax},
		{"null", `null`, ErrSyntax},
		{"trailing data", `{}x`, ErrSyntax},
		{"two objects", `{}{}`, ErrSyntax},
		{"trailing comma", `{"a":1,}`, ErrSyntax},
		{"missing colon", `{"a" 1}`, ErrSyntax},
		{"unquoted name", `{a:1}`, ErrSyntax},
		{"single quotes", `{'a':1}`, ErrSyntax},
		{"unterminated", `{"a":1`, ErrSyntax},
		{"unterminated string", `{"a":"x}`, ErrSyntax},
		{"control character", "{\"a\":\"x\ny\"}", ErrSyntax},
		{"bad escape", `{"a":"\x"}`, ErrSyntax},
		{"short unicode escape", `{"a":"\u12"}`, ErrSyntax},
		{"leading zero", `{"a":01}`, ErrSyntax},
		{"plus sign", `{"a":+1}`, ErrSyntax},
		{"bare fraction", `{"a":.5}`, ErrSyntax},
		{"empty fraction", `{"a":1.}`, ErrSyntax},
		{"empty exponent", `{"a":1e}`, ErrSyntax},
		{"NaN", `{"a":NaN}`, ErrSyntax},
		{"bad literal", `{"a":tru}`, ErrSyntax},
		{"byte order mark", "\ufeff{}", ErrSyntax},
		{"nested trailing comma", `{"a":[1,]}`, ErrSyntax},
		{"comment", `{"a":1/*c*/}`, ErrSyntax},
		{"garbage for string", `{"sub":@}`, ErrSyntax},
		// bounds
		{"too long", `{"a":"` + strings.Repeat("x", MaxBytes) + `"}`, ErrLimit},
		{"too deep", deep, ErrLimit},
		{"too deep in arrays", deepArr, ErrLimit},
		{"too many members", many(MaxMembers + 1), ErrLimit},
		{"too many elements", manyElems, ErrLimit},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := decode(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode(%.60q) = %v, want %v", tc.in, err, tc.want)
			}
		})
	}
	// Just inside the bounds is accepted.
	for name, in := range map[string]string{
		"depth":    strings.Repeat(`{"a":`, MaxDepth) + "1" + strings.Repeat("}", MaxDepth),
		"members":  many(MaxMembers),
		"elements": `{"roles":[` + strings.TrimSuffix(strings.Repeat(`"r",`, MaxMembers), ",") + `]}`,
	} {
		if _, err := decode(in); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestEncodingJSONIsLenient shows the holes this package closes: what
// encoding/json takes from the refused documents above.
func TestEncodingJSONIsLenient(t *testing.T) {
	t.Parallel()
	var c claims
	if err := json.Unmarshal([]byte(`{"cid":"acme","CID":"globex"}`), &c); err != nil || c.Cid != "globex" {
		t.Fatalf("encoding/json: %q %v", c.Cid, err)
	}
	if err := json.Unmarshal([]byte("{\"sub\":\"a\xffb\"}"), &c); err != nil || c.Sub != "a\ufffdb" {
		t.Fatalf("encoding/json: %q %v", c.Sub, err)
	}
}

func TestCompile(t *testing.T) {
	t.Parallel()
	type noTag struct{ A string }
	type caseTwins struct {
		A string `json:"cid"`
		B string `json:"CID"`
	}
	type unsupported struct {
		A int `json:"a"`
	}
	type byteSlice struct {
		A []byte `json:"a"`
	}
	type nonASCII struct {
		A string `json:"é"`
	}
	type embedded struct {
		Inner
	}
	type withMethod struct {
		A upper `json:"a"`
	}
	for name, err := range map[string]error{
		"no tag":        compileErr[noTag](),
		"case twins":    compileErr[caseTwins](),
		"int":           compileErr[unsupported](),
		"[]byte":        compileErr[byteSlice](),
		"non-ASCII tag": compileErr[nonASCII](),
		"embedded":      compileErr[embedded](),
		"UnmarshalJSON": compileErr[withMethod](),
		"not a struct":  compileErr[string](),
	} {
		if err == nil {
			t.Errorf("%s: compiled", name)
		}
	}
}

// Inner is exported so that embedding it is an exported field.
type Inner struct {
	A string `json:"a"`
}

type upper string

func (u *upper) UnmarshalJSON(b []byte) error { *u = upper(strings.ToUpper(string(b))); return nil }

func compileErr[T any]() error {
	_, err := Compile[T]()
	return err
}

// jsonClaims is claims for encoding/json: the audience as RFC 7519 reads it.
type jsonClaims struct {
	Iss   string          `json:"iss"`
	Sub   string          `json:"sub"`
	Aud   jsonAudience    `json:"aud"`
	Exp   *float64        `json:"exp"`
	Iat   int64           `json:"iat"`
	Nbf   *int64          `json:"nbf"`
	Cid   string          `json:"cid"`
	Roles []string        `json:"roles"`
	Adm   bool            `json:"adm"`
	Ok    *bool           `json:"ok"`
	Name  *string         `json:"name"`
	Score float64         `json:"score"`
	Crit  json.RawMessage `json:"crit"`
	Cnf   json.RawMessage `json:"cnf,omitempty"`
}

type jsonAudience []string

func (a *jsonAudience) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		*a = nil
		return nil
	case b[0] == '"':
		var s string
		err := json.Unmarshal(b, &s)
		*a = jsonAudience{s}
		return err
	}
	var l []string
	err := json.Unmarshal(b, &l)
	*a = l
	return err
}

var fuzzSeeds = []string{
	`{}`, ` {"iss":"i","sub":"s","aud":"a","exp":1.5,"iat":3,"nbf":4,"cid":"c","roles":["r"],"adm":true,"ok":null,"name":"n","score":2,"crit":[1],"cnf":{"jwk":{}}} `,
	`{"aud":["a","b"],"roles":[],"x":{"y":[1,2,{"z":"\u00e9"}]}}`, `{"cid":"a","CID":"b"}`, `{"cid":"a","cid":"b"}`,
	`{"sub":"\ud83d\ude00\n\t\"\\\/"}`, `{"cid":123}`, `{"Exp":1}`, `{"iat":-0,"exp":-0.0e+1}`, `{"crit": [ 1 , "x" ] }`,
	"{\"sub\":\"\xff\"}", `{"sub":"\ud800"}`, `{"ſub":1}`, `{"roles":null,"aud":null,"crit":null}`,
}

// FuzzDecode: on every input that both accept, Decode and encoding/json
// give the same claims; and Decode never takes what encoding/json refuses.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var got claims
		err := claimsSchema.Decode(b, &got)
		var want jsonClaims
		jerr := json.Unmarshal(b, &want)
		if err != nil {
			return
		}
		if jerr != nil {
			t.Fatalf("Decode(%q) accepted what encoding/json refuses: %v", b, jerr)
		}
		same := got.Iss == want.Iss && got.Sub == want.Sub && reflect.DeepEqual([]string(got.Aud), []string(want.Aud)) &&
			reflect.DeepEqual(got.Exp, want.Exp) && got.Iat == want.Iat && reflect.DeepEqual(got.Nbf, want.Nbf) &&
			got.Cid == want.Cid && reflect.DeepEqual(got.Roles, want.Roles) && got.Adm == want.Adm &&
			reflect.DeepEqual(got.Ok, want.Ok) && reflect.DeepEqual(got.Name, want.Name) && got.Score == want.Score &&
			reflect.DeepEqual([]byte(got.Crit), []byte(want.Crit)) && reflect.DeepEqual([]byte(got.Cnf), []byte(want.Cnf))
		if !same {
			t.Fatalf("Decode(%q) = %+v, encoding/json says %+v", b, got, want)
		}
	})
}

func TestSeedsAgree(t *testing.T) {
	t.Parallel()
	accepted := 0
	for _, s := range fuzzSeeds {
		if _, err := decode(s); err == nil {
			accepted++
		}
	}
	if accepted < 5 {
		t.Fatalf("only %d seeds accepted: the fuzz target compares too little", accepted)
	}
}
