package authsvc

import "strings"

// Device names a session's device from its User-Agent ("Firefox on Linux",
// "curl", "unknown"): enough for a person to recognise their sessions.
func Device(ua string) string {
	if strings.TrimSpace(ua) == "" {
		return "unknown"
	}
	l := strings.ToLower(ua)
	browser := ""
	for _, b := range []struct{ needle, name string }{
		{"edg/", "Edge"}, {"opr/", "Opera"}, {"firefox/", "Firefox"}, {"chrome/", "Chrome"}, {"safari/", "Safari"},
		{"curl/", "curl"}, {"wget/", "Wget"}, {"go-http-client", "Go HTTP client"}, {"python-requests", "Python requests"},
		{"okhttp", "OkHttp"}, {"postman", "Postman"},
	} {
		if strings.Contains(l, b.needle) {
			browser = b.name
			break
		}
	}
	os := ""
	for _, o := range []struct{ needle, name string }{
		{"iphone", "iOS"}, {"ipad", "iPadOS"}, {"android", "Android"}, {"windows", "Windows"},
		{"mac os x", "macOS"}, {"macintosh", "macOS"}, {"cros", "ChromeOS"}, {"linux", "Linux"},
	} {
		if strings.Contains(l, o.needle) {
			os = o.name
			break
		}
	}
	switch {
	case browser != "" && os != "":
		return browser + " on " + os
	case browser != "":
		return browser
	case os != "":
		return os
	}
	name, _, _ := strings.Cut(ua, "/")
	return truncate(strings.TrimSpace(name), 64)
}
