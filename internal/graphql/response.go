package graphql

import (
	"encoding/json"
	"strconv"
)

// AppendResponse writes a GraphQL answer,
// {"data":…,"errors":[…],"extensions":{"meta":…}}, to dst: data is left out
// when nil (a request error before execution), errors when there are none,
// extensions when meta is nil (meta is a raw JSON object, written as given).
// Each error is {"message","locations"?,"path"?,"extensions":{"code",
// "field"?,"context"?}}.
func AppendResponse(dst []byte, data []byte, errs []*Error, meta []byte) []byte {
	dst = append(dst, '{')
	sep := false
	comma := func() {
		if sep {
			dst = append(dst, ',')
		}
		sep = true
	}
	if data != nil {
		comma()
		dst = append(dst, `"data":`...)
		dst = append(dst, data...)
	}
	if len(errs) > 0 {
		comma()
		dst = append(dst, `"errors":[`...)
		for i, e := range errs {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendError(dst, e)
		}
		dst = append(dst, ']')
	}
	if meta != nil {
		comma()
		dst = append(dst, `"extensions":{"meta":`...)
		dst = append(dst, meta...)
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

func appendError(dst []byte, e *Error) []byte {
	dst = append(dst, `{"message":`...)
	dst = jsonString(dst, e.Message)
	if len(e.Locations) > 0 {
		dst = append(dst, `,"locations":[`...)
		for i, l := range e.Locations {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"line":`...)
			dst = strconv.AppendInt(dst, int64(l.Line), 10)
			dst = append(dst, `,"column":`...)
			dst = strconv.AppendInt(dst, int64(l.Column), 10)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	if len(e.Path) > 0 {
		dst = append(dst, `,"path":[`...)
		for i, p := range e.Path {
			if i > 0 {
				dst = append(dst, ',')
			}
			switch p := p.(type) {
			case int:
				dst = strconv.AppendInt(dst, int64(p), 10)
			case string:
				dst = jsonString(dst, p)
			default:
				dst = jsonString(dst, "?")
			}
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"extensions":{"code":`...)
	dst = jsonString(dst, e.Code)
	if e.Field != "" {
		dst = append(dst, `,"field":`...)
		dst = jsonString(dst, e.Field)
	}
	if len(e.Context) > 0 {
		if ctx, err := json.Marshal(e.Context); err == nil {
			dst = append(dst, `,"context":`...)
			dst = append(dst, ctx...)
		}
	}
	return append(dst, '}', '}')
}
