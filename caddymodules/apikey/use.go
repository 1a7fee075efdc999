package apikey

import (
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/events"
	"github.com/erpgate/erpgate/internal/secmon"
)

// noteUse publishes erp.auth.api_key.used when the key is used from a
// network (/24, /64) this instance has not seen it use in the last 30
// days (erpapp.Lasting.APIKeyNetworks, bounded), for the security
// monitor's api_key_new_network rule: at most one event per key, network
// and instance a month, never one per request. A request pays a map
// lookup under a mutex; nothing when the event engine is not running.
func (p *Provider) noteUse(r *http.Request, id Identity) {
	eng, err := p.st.lasting.Events()
	if err != nil {
		return
	}
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	if !p.st.lasting.APIKeyNetworks().First(id.KeyID, ip, time.Now()) {
		return
	}
	reqID, _ := caddyhttp.GetVar(r.Context(), contract.VarRequestID).(string)
	ua := r.UserAgent()
	if len(ua) > 512 {
		ua = ua[:512]
	}
	ev, err := events.New(events.EdgeSource(p.st.lasting.Instance()), secmon.TypeAPIKeyUsed, id.CompanyID, id.KeyID,
		secmon.AuthData{ActorID: "apikey:" + id.KeyID, SubjectID: id.KeyID, IP: ip, UserAgent: ua, RequestID: reqID})
	if err != nil {
		return
	}
	eng.Publish(ev)
}
