package authsvc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Fetching an identity provider's SAML metadata for an admin (POST
// /api/v1/admin/companies/{id}/sso with saml.metadata_url): an outbound
// request whose target a company admin chooses (SECURITY.md category 11).
// Loopback, private, link-local (the cloud metadata address) and reserved
// addresses are refused at connect time — the address the socket is about
// to connect to, so neither a DNS answer that changes between checks nor a
// redirect reaches them — unless Config.SSOAllowPrivate. Redirects are not
// followed; the answer is bounded in time and size.

const (
	samlFetchTimeout = 10 * time.Second
	samlMaxMetadata  = 512 << 10 // one IdP's metadata is a few KB; aggregates of federations are not supported
)

var errSAMLAddrBlocked = errors.New("address not allowed")

// samlFetchClient is the client of metadata fetches.
func samlFetchClient(allowPrivate bool) *http.Client {
	d := &net.Dialer{Timeout: samlFetchTimeout, Control: blockingControl(allowPrivate, errSAMLAddrBlocked)}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		TLSHandshakeTimeout:    samlFetchTimeout,
		ResponseHeaderTimeout:  samlFetchTimeout,
		MaxResponseHeaderBytes: 64 << 10,
		DisableKeepAlives:      true,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       samlFetchTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// fetchSAMLMetadata reads the IdP metadata at u. Its errors are fit for
// the admin who gave the URL (no address or body details).
func (s *Service) fetchSAMLMetadata(ctx context.Context, u *url.URL) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, samlFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, errors.New("the metadata URL is not valid")
	}
	req.Header.Set("Accept", "application/samlmetadata+xml, application/xml;q=0.9, text/xml;q=0.8")
	req.Header.Set("User-Agent", "erpgate-saml/1")
	client := samlFetchClient(s.cfg.SSOAllowPrivate)
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, errSAMLAddrBlocked) {
			return nil, errors.New("the metadata URL's host is not allowed (a private, loopback or link-local address)")
		}
		return nil, errors.New("the metadata URL could not be fetched")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the metadata URL answered HTTP %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, samlMaxMetadata+1))
	if err != nil {
		return nil, errors.New("the metadata URL could not be read")
	}
	if len(body) > samlMaxMetadata {
		return nil, fmt.Errorf("the metadata is larger than %d KB", samlMaxMetadata>>10)
	}
	return body, nil
}
