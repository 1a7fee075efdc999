package sms_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/erpgate/erpgate/internal/sms"
)

func TestNew(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"https://AC1:tok-s3cret@sms.example/Messages.json",               // no from
		"https://AC1:tok-s3cret@sms.example/Messages.json?from=15550100", // not E.164
		"ftp://AC1:tok-s3cret@sms.example/?from=%2B15550100",
		"https://AC1:tok-s3cret@/x?from=%2B15550100",
		"%%https://AC1:tok-s3cret@",
	} {
		_, err := sms.New(raw)
		if err == nil {
			t.Errorf("New(%q) accepted", raw)
		} else if strings.Contains(err.Error(), "tok-s3cret") {
			t.Errorf("the error shows the token: %v", err)
		}
	}
	for n, want := range map[string]bool{"+14155550123": true, "+4930123456": true, "14155550123": false, "+0123456789": false, "+1415555012345678": false, "+1 415": false, "+1415555\n0123": false} {
		if sms.ValidNumber(n) != want {
			t.Errorf("ValidNumber(%q) != %v", n, want)
		}
	}
}

func TestSend(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []*http.Request
	var forms []url.Values
	status := http.StatusCreated
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		mu.Lock()
		got, forms = append(got, r), append(forms, r.PostForm)
		st := status
		mu.Unlock()
		w.WriteHeader(st)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL + "/2010-04-01/Accounts/AC1/Messages.json")
	u.User = url.UserPassword("AC1", "tok-s3cret")
	u.RawQuery = "from=%2B15550100000&region=eu"
	s, err := sms.New(u.String())
	if err != nil {
		t.Fatal(err)
	}
	if s.From() != "+15550100000" || strings.Contains(s.Provider(), "tok-s3cret") {
		t.Fatalf("from %q, provider %q", s.From(), s.Provider())
	}
	if err := s.Send(context.Background(), "+14155550123", "Your code is 123456"); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), "+1415\r\n", "x"); err == nil {
		t.Fatal("sent to a malformed number")
	}
	mu.Lock()
	r, f := got[0], forms[0]
	status = http.StatusUnauthorized
	mu.Unlock()
	user, pass, ok := r.BasicAuth()
	if r.Method != http.MethodPost || r.URL.Path != "/2010-04-01/Accounts/AC1/Messages.json" || r.URL.Query().Get("from") != "" ||
		r.URL.Query().Get("region") != "eu" || !ok || user != "AC1" || pass != "tok-s3cret" {
		t.Fatalf("request %s %s, auth %v %q", r.Method, r.URL, ok, user)
	}
	if f.Get("To") != "+14155550123" || f.Get("From") != "+15550100000" || f.Get("Body") != "Your code is 123456" {
		t.Fatalf("form %v", f)
	}
	err = s.Send(context.Background(), "+14155550123", "x")
	if err == nil || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "tok-s3cret") {
		t.Fatalf("a 401 answer: %v", err)
	}
}
