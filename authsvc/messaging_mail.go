package authsvc

import (
	"bytes"
	"fmt"
	"html/template"
	"time"

	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/internal/mail"
)

// The mails of the messaging work: plain text and HTML (escaped by
// html/template), no remote content.

var magicLinkHTML = template.Must(template.New("magic").Parse(`<!doctype html>
<html><body style="font-family:system-ui,sans-serif;line-height:1.5">
<p>Hello{{if .Name}} {{.Name}}{{end}},</p>
<p>Use this link to sign in to {{.Issuer}}. It works once, for {{.Minutes}} minutes.</p>
<p><a href="{{.Link}}">Sign in to {{.Issuer}}</a></p>
<p>If you did not ask for it, ignore this mail: nobody can sign in without the link.</p>
</body></html>`))

var codeHTML = template.Must(template.New("code").Parse(`<!doctype html>
<html><body style="font-family:system-ui,sans-serif;line-height:1.5">
<p>Hello{{if .Name}} {{.Name}}{{end}},</p>
<p>Your {{.Issuer}} verification code is</p>
<p style="font-size:1.6em;letter-spacing:.2em"><strong>{{.Code}}</strong></p>
<p>It works once, for {{.Minutes}} minutes. Never share it: {{.Issuer}} will never ask you for it.</p>
<p>If you did not try to sign in, change your password.</p>
</body></html>`))

type mailData struct {
	Name, Issuer, Link, Code string
	Minutes                  int
}

func render(t *template.Template, d mailData) string {
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return ""
	}
	return b.String()
}

func (s *Service) magicLinkMail(u store.User, link string) mail.Message {
	d := mailData{Name: u.Name, Issuer: s.cfg.Issuer, Link: link, Minutes: int(MagicLinkTTL / time.Minute)}
	return mail.Message{
		To:      u.Email,
		Subject: "Your sign-in link for " + s.cfg.Issuer,
		Text: fmt.Sprintf("Use this link to sign in to %s. It works once, for %d minutes:\n\n%s\n\nIf you did not ask for it, ignore this mail: nobody can sign in without the link.\n",
			s.cfg.Issuer, d.Minutes, link),
		HTML: render(magicLinkHTML, d),
	}
}

func (s *Service) codeMail(u store.User, code string) mail.Message {
	d := mailData{Name: u.Name, Issuer: s.cfg.Issuer, Code: code, Minutes: int(MessageCodeTTL / time.Minute)}
	return mail.Message{
		To:      u.Email,
		Subject: "Your " + s.cfg.Issuer + " verification code",
		Text: fmt.Sprintf("Your %s verification code is %s\n\nIt works once, for %d minutes. Never share it.\nIf you did not try to sign in, change your password.\n",
			s.cfg.Issuer, code, d.Minutes),
		HTML: render(codeHTML, d),
	}
}
