package dialects

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"

	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/envelope"
)

// UpstreamCode keeps a backend's error code when it looks like one of ours
// (UPPER_SNAKE, at most 64 bytes); otherwise the code comes from the status
// and the backend's code goes into the context as upstream_code, so nothing
// the backend said is lost and our codes stay a closed, documented set.
func UpstreamCode(code string, status int) (string, map[string]any) {
	if code == "" {
		return contract.CodeForStatus(status), nil
	}
	if isUpperSnake(code) {
		return code, nil
	}
	return contract.CodeForStatus(status), map[string]any{"upstream_code": code}
}

func isUpperSnake(s string) bool {
	if len(s) > 64 || s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'A' || c > 'Z') && c != '_' && (c < '0' || c > '9') {
			return false
		}
	}
	return s[0] >= 'A' && s[0] <= 'Z'
}

// StripAnnotations removes the members whose name contains '@' (OData
// instance and property annotations such as "@odata.etag" or
// "Name@odata.type") from a JSON object, or from every object of a JSON
// array; members keep their order. Other JSON is returned as is.
func StripAnnotations(b []byte) ([]byte, error) {
	b = bytes.TrimSpace(b)
	if bytes.IndexByte(b, '@') < 0 || len(b) == 0 {
		return b, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	out := make([]byte, 0, len(b))
	switch b[0] {
	case '{':
		return appendStrippedObject(out, dec)
	case '[':
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
		out = append(out, '[')
		first := true
		for dec.More() {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil, err
			}
			if !first {
				out = append(out, ',')
			}
			first = false
			if len(raw) > 0 && raw[0] == '{' && bytes.IndexByte(raw, '@') >= 0 {
				var err error
				out, err = appendStrippedObject(out, json.NewDecoder(bytes.NewReader(raw)))
				if err != nil {
					return nil, err
				}
				continue
			}
			out = append(out, raw...)
		}
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
		return append(out, ']'), nil
	}
	return b, nil
}

func appendStrippedObject(out []byte, dec *json.Decoder) ([]byte, error) {
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	out = append(out, '{')
	first := true
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		if strings.IndexByte(key, '@') >= 0 {
			continue
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		out = envelope.AppendString(out, key)
		out = append(out, ':')
		out = append(out, raw...)
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF && err != nil {
		return nil, err
	}
	return append(out, '}'), nil
}
