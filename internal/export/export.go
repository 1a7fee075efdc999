// Package export is the Caddy-free core of erp_bulk's streamed export: it
// writes the records of a collection, one page at a time, as NDJSON or CSV,
// holding no more than the page it is given. It owns the two formats; of
// ours it imports nothing.
//
// NDJSON is one record (the backend's JSON object, as it came) per line.
// CSV (RFC 4180, CRLF line ends, fields quoted when they hold a comma, a
// quote, CR or LF) has a header line made of the first record's keys in the
// order the backend sent them; every later record is written in those
// columns: a key the first record lacked is left out, a missing one is an
// empty field. Strings are written as their text; numbers, true and false
// as their JSON literal; null as an empty field; objects and arrays as their
// JSON text.
package export

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"sync/atomic"
	"unicode/utf8"
)

// Formats are the export formats and their media types.
var Formats = map[string]string{
	"ndjson": "application/x-ndjson",
	"csv":    "text/csv; charset=utf-8",
}

// Writer writes pages of records in one format.
type Writer interface {
	// WritePage writes every record of page, a JSON array of objects, and
	// returns how many it wrote.
	WritePage(page []byte) (int, error)
	// Flush sends what is buffered to the underlying writer.
	Flush() error
}

// New returns the Writer of format ("ndjson" or "csv") over w; nil for an
// unknown format.
func New(format string, w io.Writer) Writer {
	switch format {
	case "ndjson":
		return &ndjson{w: bufio.NewWriterSize(w, 32<<10)}
	case "csv":
		cw := csv.NewWriter(w)
		cw.UseCRLF = true // RFC 4180
		return &csvWriter{w: cw}
	}
	return nil
}

// ErrNotArray is returned for a page that is not a JSON array of objects.
var ErrNotArray = errors.New("export: the page is not a JSON array of objects")

// eachRecord calls fn with every element of the JSON array page, which must
// be objects.
func eachRecord(page []byte, fn func(rec json.RawMessage) error) (int, error) {
	page = bytes.TrimSpace(page)
	if len(page) == 0 || bytes.Equal(page, []byte("null")) {
		return 0, nil
	}
	dec := json.NewDecoder(bytes.NewReader(page))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('[') {
		return 0, ErrNotArray
	}
	n := 0
	for dec.More() {
		var rec json.RawMessage
		if err := dec.Decode(&rec); err != nil {
			return n, err
		}
		if len(rec) == 0 || rec[0] != '{' {
			return n, ErrNotArray
		}
		if err := fn(rec); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

type ndjson struct{ w *bufio.Writer }

func (n *ndjson) WritePage(page []byte) (int, error) {
	return eachRecord(page, func(rec json.RawMessage) error {
		// the decoder hands back the element's bytes: compact them so a
		// record never spans lines
		if bytes.ContainsAny(rec, "\r\n") {
			var b bytes.Buffer
			if err := json.Compact(&b, rec); err != nil {
				return err
			}
			rec = b.Bytes()
		}
		if _, err := n.w.Write(rec); err != nil {
			return err
		}
		return n.w.WriteByte('\n')
	})
}

func (n *ndjson) Flush() error { return n.w.Flush() }

type csvWriter struct {
	w      *csv.Writer
	header []string
	index  map[string]int
	row    []string
}

func (c *csvWriter) WritePage(page []byte) (int, error) {
	return eachRecord(page, func(rec json.RawMessage) error {
		first := c.header == nil
		if first {
			c.index = map[string]int{}
		}
		for i := range c.row {
			c.row[i] = ""
		}
		err := eachMember(rec, func(key string, raw []byte) {
			if first {
				if _, dup := c.index[key]; !dup {
					c.index[key] = len(c.header)
					c.header = append(c.header, key)
					c.row = append(c.row, "")
				}
			}
			if i, ok := c.index[key]; ok {
				c.row[i] = field(raw)
			}
		})
		if err != nil {
			return err
		}
		if first {
			if c.header == nil {
				c.header = []string{}
			}
			if err := c.w.Write(c.header); err != nil {
				return err
			}
		}
		return c.w.Write(c.row)
	})
}

func (c *csvWriter) Flush() error {
	c.w.Flush()
	return c.w.Error()
}

// field is a JSON value as CSV text.
func field(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		if len(raw) >= 2 && bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
			return string(raw[1 : len(raw)-1])
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	case 'n':
		return ""
	case '{', '[':
		var buf bytes.Buffer
		if json.Compact(&buf, raw) == nil {
			return buf.String()
		}
	}
	return string(raw)
}

// Progress counts what an export wrote, for whoever started it (an export
// job re-entering the server reads it while the export runs).
type Progress struct {
	Rows atomic.Int64
	// Aborted is set when the export was cut after it started (the
	// client sees a transfer without its end).
	Aborted atomic.Bool
}

type progressKey struct{}

// WithProgress returns ctx carrying p: an export served under it adds every
// page's records to p.Rows.
func WithProgress(ctx context.Context, p *Progress) context.Context {
	return context.WithValue(ctx, progressKey{}, p)
}

// ProgressFrom is the Progress ctx carries, or nil.
func ProgressFrom(ctx context.Context) *Progress {
	p, _ := ctx.Value(progressKey{}).(*Progress)
	return p
}
